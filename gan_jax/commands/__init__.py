"""Subcommands of `gan-jax`; each module has `add_arguments(parser)` and `run(args) -> int`."""

import argparse

from gan_jax.config import Config, load_experiment


def add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
    """--experiment, --quick, --data, --seed and --set, shared by commands that run a config."""
    parser.add_argument(
        "--experiment", "-e", default="paper", help="experiment name (experiments/<name>.py) or a .py file"
    )
    parser.add_argument("--quick", action="store_true", help="tiny variant for smoke runs")
    parser.add_argument("--data", help="data URI (default: the bundled WDBC copy)")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any config field, e.g. --set latent_dim=8",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    config = load_experiment(args.experiment, quick=args.quick)
    changes = dict(_parse_override(config, item) for item in args.set)
    if args.data is not None:
        changes["data"] = args.data
    if args.seed is not None:
        changes["seed"] = args.seed
    return config.replace(**changes)


def _parse_override(config: Config, item: str) -> tuple[str, object]:
    import ast

    field, sep, text = item.partition("=")
    if not sep or not hasattr(config, field):
        raise ValueError(f"--set {item!r}: expected FIELD=VALUE with FIELD a config field")
    current = getattr(config, field)
    if isinstance(current, str) or current is None:
        return field, None if text == "None" else text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(f"--set {item!r}: {text!r} is not a valid {type(current).__name__}") from None
    if isinstance(current, tuple):
        value = tuple(value) if isinstance(value, list | tuple) else (value,)
    elif isinstance(current, bool) != isinstance(value, bool) or not isinstance(
        value, type(current) | (float if isinstance(current, float) else type(current))
    ):
        if not (isinstance(current, float) and isinstance(value, int)):
            raise ValueError(f"--set {item!r}: expected a {type(current).__name__}")
        value = float(value)
    return field, value
