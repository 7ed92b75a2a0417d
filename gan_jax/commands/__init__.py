"""Subcommands of `gan-jax`; each module has `add_arguments(parser)` and `run(args) -> int`."""

import argparse
import dataclasses

from gan_jax.config import Config, MLPConfig, legacy, load_experiment


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
        help="override a config field, dotted into its sections, e.g. --set model.latent_dim=8",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The table experiment's config with --quick, --data, --seed and --set applied.

    Raises:
      ValueError: an image experiment (its model section a ConvConfig): `gan-jax image-study` runs it.
    """
    config = load_experiment(args.experiment, quick=args.quick)
    if not isinstance(config.model, MLPConfig):
        raise ValueError(
            f"experiment {args.experiment!r} is an image experiment (model {config.model.KIND!r}); "
            "run it with gan-jax image-study"
        )
    return with_data_and_seed(apply_overrides(config, args.set), args.data, args.seed)


def with_data_and_seed(config: Config, data: str | None, seed: int | None) -> Config:
    """`config` with --data (data.uri) and --seed (cv.seed), where given."""
    changes = {"data.uri": data, "cv.seed": seed}
    return config.replace(**{path: value for path, value in changes.items() if value is not None})


def _parse_override(section, item: str) -> tuple[str, object]:
    """FIELD=VALUE of one field of `section` (a config section) → (FIELD, value of its type)."""
    import ast

    field, sep, text = item.partition("=")
    if not sep or not hasattr(section, field):
        raise ValueError(f"--set {item!r}: expected FIELD=VALUE with FIELD a config field")
    current = getattr(section, field)
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


def apply_overrides(config: Config, items: list[str]) -> Config:
    """`config` with each --set FIELD=VALUE applied; FIELD is a dotted path into the config's
    sections, e.g. schedule.gan_steps=300 or data.image_shape=(28,28,1), or a name from before
    sections (gan_steps, synth_steps, model.batch_size: `legacy.OLD_PATHS`). A value
    is read as the field's current type (a tuple also as comma-separated words,
    data.malignant=tumour,cancer); "None", or any Python literal or text for a field that is None."""
    for item in items:
        path, sep, text = item.partition("=")
        path = legacy.OLD_PATHS.get(path, path)
        item = f"{path}={text}"
        *sections, field = path.split(".")
        chain = [config]
        for name in [*sections, field]:
            if not sep or not dataclasses.is_dataclass(chain[-1]) or not hasattr(chain[-1], name):
                raise ValueError(
                    f"--set {item!r}: expected FIELD=VALUE with FIELD a config field, dotted into its "
                    f"sections ({', '.join(sections_of(config))}), e.g. schedule.gan_steps=300"
                )
            chain.append(getattr(chain[-1], name))
        try:
            value = _override_value(chain[-2], field, text)
        except ValueError as e:  # name the whole dotted field, as the user typed it
            raise ValueError(str(e).replace(f"'{field}={text}'", repr(item), 1)) from None
        for parent, name in zip(reversed(chain[:-1]), reversed([*sections, field])):
            value = dataclasses.replace(parent, **{name: value})
        config = value
    return config


def sections_of(config: Config) -> list[str]:
    return [f.name for f in dataclasses.fields(config)]


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
