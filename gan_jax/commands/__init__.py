"""Subcommands of `gan-jax`; each module has `add_arguments(parser)` and `run(args) -> int`."""

import argparse
import dataclasses

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


def apply_overrides(config, items: list[str]):
    """`config` (a frozen dataclass) with each --set FIELD=VALUE applied; FIELD may be a dotted
    path into nested sections, e.g. model.batch_size=32 or data.image_shape=(28,28,1). A value
    is read as the field's current type (a tuple also as comma-separated words,
    data.malignant=tumour,cancer); "None", or any Python literal or text for a field that is None."""
    for item in items:
        path, sep, text = item.partition("=")
        *sections, field = path.split(".")
        chain = [config]
        for name in [*sections, field]:
            if not sep or not dataclasses.is_dataclass(chain[-1]) or not hasattr(chain[-1], name):
                raise ValueError(f"--set {item!r}: expected FIELD=VALUE with FIELD a config field")
            chain.append(getattr(chain[-1], name))
        try:
            value = _override_value(chain[-2], field, text)
        except ValueError as e:  # name the whole dotted field, as the user typed it
            raise ValueError(str(e).replace(f"'{field}={text}'", repr(item), 1)) from None
        for parent, name in zip(reversed(chain[:-1]), reversed([*sections, field])):
            value = dataclasses.replace(parent, **{name: value})
        config = value
    return config


def _override_value(section, field: str, text: str):
    import ast

    current = getattr(section, field)
    if text == "None":
        return None
    try:
        literal = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        literal = text
    if current is None:
        return tuple(literal) if isinstance(literal, list) else literal
    if isinstance(current, tuple) and isinstance(literal, str):
        return tuple(word.strip() for word in text.split(","))
    return _parse_override(section, f"{field}={text}")[1]
