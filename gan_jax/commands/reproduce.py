"""`gan-jax reproduce`: the whole study (ablations + baselines, Figure 3, label scarcity) into results/."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="results", help="output folder URI (default: results)")
    parser.add_argument(
        "--experiment",
        "-e",
        default="ablations",
        help="study definition: experiments/<name>.py with get_variants, BASELINES, "
        "PAPER_CLAIMS, LABEL_FRACTIONS (default: ablations)",
    )
    parser.add_argument(
        "--skip-label-study",
        action="store_true",
        help="only the ablations and baselines, not the label-scarcity study",
    )
    parser.add_argument(
        "--skip-augmentation-study",
        action="store_true",
        help="not the synthetic-augmentation study (augmentation.json), the slowest part",
    )
    parser.add_argument("--quick", action="store_true", help="2×2-fold, few steps: a smoke run")
    parser.add_argument("--seed", type=int, help="override the study seed")
    parser.add_argument("--folds", type=int, help="k of the k-fold CV (default 10)")
    parser.add_argument("--repeats", type=int, help="CV repeats (default 10)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="redraw figures and README.md from <out>/study.json, no training",
    )


def run(args: argparse.Namespace) -> int:
    from gan_jax.config import load_experiment, load_module
    from gan_jax.studies.formats import PAPER
    from gan_jax.studies.study import load_study, run_study, write_outputs

    if args.report_only:
        write_outputs(load_study(args.out), args.out)
        print(f"redrew {args.out}/README.md and figures from {args.out}/study.json")
        return 0
    spec = load_module(args.experiment)
    changes = {"cv.seed": args.seed, "cv.n_folds": args.folds, "cv.n_repeats": args.repeats}
    base = load_experiment(args.experiment, quick=args.quick).replace(
        **{k: v for k, v in changes.items() if v is not None}
    )
    fractions = () if args.skip_label_study else spec.LABEL_FRACTIONS
    if args.quick and fractions:
        fractions = (min(fractions), max(fractions))
    study = run_study(
        spec.get_variants(base),
        args.out,
        baseline_names=spec.BASELINES,
        paper_claims=spec.PAPER_CLAIMS,
        label_fractions=fractions,
        quick=args.quick,
        progress=not args.no_progress,
    )
    if not args.skip_augmentation_study:
        from gan_jax.studies.augmentation_study import run_augmentation_study

        run_augmentation_study(args.out, quick=args.quick)
        write_outputs(study, args.out)  # results/README.md picks up the augmentation verdict
    ours = study["models"][PAPER]["summary"]
    print(
        f"paper pipeline: accuracy {100 * ours['accuracy']['mean']:.2f} %, "
        f"F1 {100 * ours['f1']['mean']:.2f} %, ROC-AUC {100 * ours['roc_auc']['mean']:.2f} %"
    )
    print(
        f"whole reproduction: {study['wall_seconds']:.0f} s; wrote {args.out}/README.md, study.json, "
        "study_runs.csv, figure3_metrics.png, confusion_matrix.png"
        + ("" if args.skip_label_study else ", label_study.json, figure_labels.png")
    )
    return 0
