"""`gan-jax synth-report`: fidelity, utility and privacy of a synthetic CSV written by
`gan-jax synth`, measured on the real rows its generator never saw (named in its sidecar);
writes <out>/synth_report.json, .md and figures."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--synthetic", required=True, metavar="URI", help="a CSV written by gan-jax synth")
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
