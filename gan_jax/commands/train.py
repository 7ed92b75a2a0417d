"""`gan-jax train`: cross-validate an experiment, print the metrics table, write results.json."""

from __future__ import annotations

import argparse

from gan_jax.commands import add_experiment_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_arguments(parser)
    parser.add_argument("--out", help="results folder URI (default: runs/<experiment>)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from gan_jax.experiment import format_summary, train_and_evaluate

    config = config_from_args(args)
    out = args.out or f"runs/{config.name}"
    results = train_and_evaluate(config, out, progress=not args.no_progress)
    print(format_summary(results))
    print(f"trained in {results['train_seconds']:.1f} s; results: {out}/results.json")
    return 0
