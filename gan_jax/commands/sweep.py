"""`gan-jax sweep`: a grid or random search over the numeric hyperparameters, every setting ×
fold trained in one compiled call, optionally nested (inner folds choose, outer folds measure).

  gan-jax sweep -e paper --param d_lr=1e-4,3e-4,1e-3 --param g_lr=1e-4,1e-3 --out runs/sweep
  gan-jax sweep -e paper --random 1000 --param d_lr=1e-4:1e-2:log --param seed=0,1,2
  gan-jax sweep -e paper --param d_lr=3e-4,1e-3,3e-3 --nested --inner-folds 3 --baselines

Writes <out>/sweep.json (per-setting CV metrics on the test folds: a comparison, not a tuned
result) or, with --nested, <out>/nested.json (outer-fold metrics of the settings chosen on
inner folds, with the chosen setting per outer fold). With several processes
(gan_jax.training.distributed) every process trains its share of the runs and only process 0 writes.
"""

from __future__ import annotations

import argparse
import json
import time

from gan_jax.commands import add_experiment_arguments, config_from_args
from gan_jax.training import distributed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_arguments(parser)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="a searched hyperparameter (ae_lr, d_lr, g_lr, unsupervised_weight, the "
        "ssl_extras weights, labeled_fraction, seed): V1,V2,... (choices), LOW:HIGH or "
        "LOW:HIGH:log (ranges, random search only)",
    )
    parser.add_argument("--random", type=int, metavar="N", help="random search of N settings (default: grid)")
    parser.add_argument("--search-seed", type=int, default=0, help="seed of the random search")
    parser.add_argument(
        "--nested", action="store_true", help="nested CV: inner folds choose, outer folds measure"
    )
    parser.add_argument("--inner-folds", type=int, default=3, help="inner folds per outer fold (default 3)")
    parser.add_argument(
        "--select-metric", default="roc_auc", help="inner-fold metric that chooses (default roc_auc)"
    )
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="with --nested: also tune LR and SVM by GridSearchCV on the same inner folds",
    )
    parser.add_argument("--out", help="results folder URI (default: runs/<experiment>-sweep)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    distributed.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    distributed.initialize_from_args(args)  # before JAX touches a device
    from gan_jax.artifacts import storage
    from gan_jax.data import load_dataset
    from gan_jax.evaluation import evaluate, nested, sweep

    config = config_from_args(args)
    space = sweep.parse_space(args.param)
    settings = (
        sweep.random_search(config, space, args.random, args.search_seed)
        if args.random is not None
        else sweep.grid(config, space)
    )
    data = load_dataset(config.data.uri)
    outer = evaluate.cv_folds(data.y, config.cv.n_folds, config.cv.n_repeats, config.cv.seed)
    progress = not args.no_progress
    t0 = time.perf_counter()
    if args.nested:
        result = nested.nested_cv(
            config, data.x, data.y, settings, outer, args.inner_folds, args.select_metric, progress=progress
        )
        if args.baselines:
            result["baselines"] = nested.tuned_baselines(
                config, data.x, data.y, outer, args.inner_folds, args.select_metric
            )
    else:
        result = sweep.run_sweep(config, data.x, data.y, settings, outer, progress=progress)
    result.update(_provenance(args, config, len(settings), outer, time.perf_counter() - t0))
    if distributed.is_main_process():
        out = (args.out or f"runs/{config.name}-sweep").rstrip("/")
        uri = f"{out}/{'nested' if args.nested else 'sweep'}.json"
        storage.write_text(uri, json.dumps(result, indent=1))
        print(_table(result, args.nested))
        print(
            f"{result['n_runs_per_call']} runs per call, {result['wall_s']:.1f} s; "
            f"results: {storage.redact(uri)}"
        )
    return 0


def _provenance(args, config, n_settings: int, outer, wall_s: float) -> dict:
    import jax

    from gan_jax import runtime

    n_masks = len(outer) * (args.inner_folds if args.nested else 1)
    return {
        "command": "gan-jax sweep",
        "search": {"params": args.param, "random": args.random, "search_seed": args.search_seed},
        "experiment": config.name,
        "config": config.to_dict(),
        "n_settings": n_settings,
        "n_runs_per_call": n_settings * n_masks,
        "wall_s": wall_s,
        "processes": jax.process_count(),
        "device": runtime.device_description(),
        "versions": runtime.library_versions(),
    }


def _table(result: dict, nested: bool) -> str:
    if nested:
        s = result["outer_summary"]
        lines = [
            f"nested CV, {result['n_outer']} outer × {result['n_inner']} inner folds, "
            f"chosen by inner {result['select_metric']}:"
        ]
        lines += [
            f"  outer {c['outer_run']}: setting {c['setting_index']} {c['setting']}" for c in result["chosen"]
        ]
        pct = lambda v: f"{100 * v['mean']:6.2f} % [{100 * v['ci95_low']:.2f}, {100 * v['ci95_high']:.2f}]"
        lines += [f"  {k:<12} {pct(v)}" for k, v in s.items()]
        return "\n".join(lines)
    lines = ["setting  accuracy (95% CI)            roc_auc   values"]
    for i, r in enumerate(result["settings"]):
        a, auc = r["summary"]["accuracy"], r["summary"]["roc_auc"]
        lines.append(
            f"{i:>7}  {100 * a['mean']:6.2f} [{100 * a['ci95_low']:.2f}, {100 * a['ci95_high']:.2f}]"
            f"  {100 * auc['mean']:6.2f}   {r['setting']}"
        )
    return "\n".join(lines)
