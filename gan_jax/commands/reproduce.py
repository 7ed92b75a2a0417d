"""`gan-jax reproduce`: the whole study (ablations + baselines, Figure 3) into results/."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="results", help="output folder URI (default: results)")
    parser.add_argument("--quick", action="store_true", help="2×2-fold, few steps: a smoke run")
    parser.add_argument("--seed", type=int, help="override the study seed")
    parser.add_argument("--folds", type=int, help="k of the k-fold CV (default 10)")
    parser.add_argument("--repeats", type=int, help="CV repeats (default 10)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--report-only", action="store_true",
                        help="redraw figures and README.md from <out>/study.json, no training")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from experiments.paper import get_config
    from gan_jax.study import PAPER, load_study, run_study, write_outputs

    if args.report_only:
        write_outputs(load_study(args.out), args.out)
        print(f"redrew {args.out}/README.md and figures from {args.out}/study.json")
        return 0
    changes = {"seed": args.seed, "n_folds": args.folds, "n_repeats": args.repeats}
    base = get_config().replace(**{k: v for k, v in changes.items() if v is not None})
    study = run_study(base, args.out, quick=args.quick, progress=not args.no_progress)
    ours = study["models"][PAPER]["summary"]
    print(f"paper pipeline: accuracy {100 * ours['accuracy']['mean']:.2f} %, "
          f"F1 {100 * ours['f1']['mean']:.2f} %, ROC-AUC {100 * ours['roc_auc']['mean']:.2f} %")  # fmt: skip
    print(
        f"wrote {args.out}/README.md, study.json, study_runs.csv, figure3_metrics.png, confusion_matrix.png"
    )
    return 0
