"""`gan-jax synth-report`: fidelity, utility and privacy of synthetic rows, measured on real rows
their generator never saw. Either one CSV written by `gan-jax synth` (its sidecar names the
held-out rows), or `--runs K`: the experiment's generator trained on its first K CV runs, one
report per run, means with intervals over runs and a verdict per goal (`--compare` adds other
generator configs on the same runs). Writes <out>/<name>.json and .md (and figures for a CSV)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--synthetic", metavar="URI", help="a CSV written by gan-jax synth")
    parser.add_argument("--runs", type=int, metavar="K", help="report over the first K CV runs instead")
    parser.add_argument("--experiment", default="synth", help="with --runs: the generator's experiment")
    parser.add_argument(
        "--compare", action="append", default=[], metavar="EXPERIMENT", help="with --runs: another generator"
    )
    parser.add_argument("--out", default="results", help="folder URI for the report (default results)")
    parser.add_argument("--name", default="synth_report", help="file name stem (default synth_report)")
    parser.add_argument(
        "--no-ours", action="store_true", help="utility of logistic regression only (skip our classifier)"
    )
    parser.add_argument("--s3-endpoint", metavar="URL", help="S3-compatible endpoint, e.g. http://minio:9000")


def run(args: argparse.Namespace) -> int:
    from gan_jax.artifacts import records, storage
    from gan_jax.studies import synth_report

    storage.set_s3_endpoint(args.s3_endpoint)
    if (args.synthetic is None) == (args.runs is None):
        raise ValueError("give exactly one of --synthetic URI or --runs K")
    if args.runs is not None:
        return _run_over_runs(args)
    rec = records.run_record()
    rep, real, syn = synth_report.report_for_file(args.synthetic, our_classifier=not args.no_ours)
    rep = {**records.finish_record(rec), **rep}
    synth_report.write(rep, args.out, args.name, real=real, synthetic=syn)
    f, p = rep["fidelity"], rep["privacy"]
    print(
        f"KSComplement {f['ks_complement_mean']:.3f}, detection AUC {f['detection_auc']:.3f}, "
        f"membership-inference AUC {p['membership_inference_auc']:.3f}; "
        f"report: {storage.redact(storage.join(args.out, args.name))}.md"
    )
    return 0


def _run_over_runs(args: argparse.Namespace) -> int:
    from gan_jax.artifacts import storage
    from gan_jax.studies import synth_runs

    compare = "".join(f" --compare {c}" for c in args.compare)
    command = f"gan-jax synth-report --runs {args.runs} --experiment {args.experiment}{compare} "
    command += f"--out {args.out} --name {args.name}"
    rec = synth_runs.run_over_runs(args.experiment, args.compare, args.runs, command=command)
    synth_runs.write(rec, args.out, args.name)
    for v in next(iter(rec["generators"].values()))["verdicts"]:
        print(synth_runs.verdict_line(v))
    print(f"report: {storage.redact(storage.join(args.out, args.name))}.md")
    return 0
