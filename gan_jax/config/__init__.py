"""Experiment configuration: one frozen `Config` with a section per concern (data, model,
schedule, cv, synth: `gan_jax.config.sections`), so configs are data, never code paths. An
image experiment is a Config whose model section is a `ConvConfig`; a table experiment's is an
`MLPConfig`. Per-run, compile-time and bookkeeping settings are told apart by type, and
`Config.structure()` (the compile key) is derived from the types.

An experiment is a file `experiments/<name>.py` (found from the working directory or the
repository root) or any `.py` file whose `get_config(arg)` returns a config; it is loaded by
path, not installed. `get_config("quick")` is its tiny variant for smoke runs and tests (the
`--quick` flag). `load_experiment("paper")`, `load_experiment("ablations:no_gan")`,
`load_experiment("path/to/file.py", quick=True)` find it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from typing import Any

from gan_jax.config import legacy
from gan_jax.config.sections import (
    GEN_LOSSES,
    MODELS,
    SCALERS,
    SYNTH_MODELS,
    Bookkeeping,
    BookkeepingData,
    ConvConfig,
    CVConfig,
    DataConfig,
    MLPConfig,
    PerRun,
    PerRunData,
    ScheduleConfig,
    SynthConfig,
    replace_path,
    run_data_fields,
    structure_of,
)
from gan_jax.training.augment import AugmentConfig

__all__ = [
    "CONFIG_VERSION",
    "IMAGES",
    "GEN_LOSSES",
    "SCALERS",
    "SYNTH_MODELS",
    "Bookkeeping",
    "BookkeepingData",
    "CVConfig",
    "Config",
    "ConvConfig",
    "DataConfig",
    "MLPConfig",
    "PerRun",
    "PerRunData",
    "ScheduleConfig",
    "SynthConfig",
    "differences",
    "load_experiment",
    "quick_variant",
    "replace_path",
    "run_data_fields",
    "split_quick",
    "structure_of",
]

# The layout of `Config.to_dict()`: 2 = sections, each a nested dict, the model's with its
# "kind". Version 1 (one flat dict, or an image study's own) is read by `legacy`.
CONFIG_VERSION = 2
KIND = "kind"


@dataclasses.dataclass(frozen=True)
class Config:
    """One experiment: its sections, each where a reader would look for a setting."""

    name: Bookkeeping[str] = "paper"
    data: DataConfig = DataConfig()
    model: MLPConfig | ConvConfig = MLPConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    cv: CVConfig = CVConfig()
    synth: SynthConfig = SynthConfig()
    n_samples: Bookkeeping[int] = 32  # image studies: generator samples drawn in image_samples.png

    def __post_init__(self):
        expected = {"data": DataConfig, "model": (MLPConfig, ConvConfig), "schedule": ScheduleConfig}
        expected |= {"cv": CVConfig, "synth": SynthConfig}
        for name, kind in expected.items():
            if not isinstance(getattr(self, name), kind):
                wanted = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
                raise ValueError(
                    f"config {self.name!r}: section {name} is a {type(getattr(self, name)).__name__}, "
                    f"expected a {wanted}"
                )
        if isinstance(self.model, ConvConfig):
            h, w, _ = self.model.image_shape
            if not (h == w and h % self.data.pool == 0):
                raise ValueError(
                    f"config {self.name!r}: images must be square, side divisible by "
                    f"data.pool={self.data.pool}"
                )

    @property
    def n_runs(self) -> int:
        return self.cv.n_folds * self.cv.n_repeats

    @property
    def total_steps(self) -> int:
        return self.ae_phase_steps + self.schedule.gan_steps

    @property
    def ae_phase_steps(self) -> int:
        return self.schedule.ae_steps if self.model.use_autoencoder else 0

    @property
    def size(self) -> int:
        """The side of an image model's square images."""
        return self.model.image_shape[0]

    def structure(self) -> Config:
        """This config with every `PerRun` or `Bookkeeping` setting at its default, in every
        section (`structure_of`): the key of compiled programs."""
        return structure_of(self)

    def replace(self, **changes: Any) -> Config:
        """This config with sections (or `name`) replaced; a key may be a dotted path into a
        section, `config.replace(**{"schedule.gan_steps": 30})` (`replace_path`)."""
        fields = [f.name for f in dataclasses.fields(self)]
        updated = {}
        for path, value in changes.items():  # one `dataclasses.replace`: checks see the whole change
            head, _, rest = path.partition(".")
            if head not in fields:
                raise ValueError(f"unknown config field {path!r}; known sections and fields: {fields}")
            section = updated.get(head, getattr(self, head))
            updated[head] = replace_path(section, rest, value, f"{head}.") if rest else value
        return dataclasses.replace(self, **updated)

    def to_dict(self) -> dict[str, Any]:
        """Layout `CONFIG_VERSION` 2: {"config_version": 2, "name": ..., section: {field: ...}},
        the model section with its "kind" ("mlp" or "conv")."""
        d = dataclasses.asdict(self)
        d["model"] = {KIND: self.model.KIND, **d["model"]}
        return {"config_version": CONFIG_VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """A config from `to_dict()`'s form (layout 2), or from layout 1 as results JSON,
        checkpoints and bundles stored it before sections (no "config_version" key, or 1: one
        flat dict, or an image study's dict).

        Raises:
          ValueError: another layout version, or unknown fields or sections (both named).
        """
        d = dict(d)
        version = d.pop("config_version", 1)
        if version == 1:
            if legacy.is_image_study(d):
                return IMAGES.replace(**_values(legacy.image_study_paths(d)))
            if legacy.is_image_model(d):
                return IMAGES.replace(**_values(legacy.image_model_paths(d)))
            return cls().replace(**_values(legacy.flat_paths(d)))
        if version != CONFIG_VERSION:
            raise ValueError(
                f"config layout version {version!r} is not readable here (this gan_jax reads "
                f"version {CONFIG_VERSION}, sections, and version 1, one flat dict)"
            )
        model = dict(d.pop("model", {}))
        kind = model.pop(KIND, MLPConfig.KIND)
        if kind not in MODELS:
            raise ValueError(f"config model kind {kind!r}: expected one of {sorted(MODELS)}")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown config field {unknown[0]!r} (config layout 2); known: {fields}")
        paths = {f"model.{k}": v for k, v in model.items()}
        for name, value in d.items():
            paths |= (
                {f"{name}.{k}": v for k, v in value.items()} if isinstance(value, dict) else {name: value}
            )
        return cls(model=MODELS[kind]()).replace(**_values(paths))


def differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """ "path: old -> new" for every setting two stored configs (`to_dict()` forms, any readable
    layout) differ in, by dotted path; [] when they are the same config.

    Raises:
      ValueError: a dict that is not a readable config (`Config.from_dict`).
    """
    a, b = (_flat(_json_form(Config.from_dict(d).to_dict())) for d in (before, now))
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _json_form(d: dict[str, Any]) -> dict[str, Any]:
    """`d` as JSON reads it back (tuples → lists), for comparing with stored dicts."""
    return json.loads(json.dumps(d))


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


def _values(paths: dict[str, Any]) -> dict[str, Any]:
    """JSON values → config values: lists → tuples, an augmentation dict → `AugmentConfig`."""

    def value(path, v):
        if path == "model.augment" and isinstance(v, dict):
            known = [f.name for f in dataclasses.fields(AugmentConfig)]
            unknown = sorted(set(v) - set(known))
            if unknown:
                raise ValueError(f"unknown AugmentConfig fields {unknown}; known: {known}")
            return AugmentConfig(**{k: _tuple(x) for k, x in v.items()})
        return _tuple(v)

    return {p: value(p, v) for p, v in paths.items()}


def _tuple(v):
    return tuple(_tuple(x) for x in v) if isinstance(v, list) else v


# The image path's defaults: the SYNTHETIC nuclei demo set, conv models at 64×64, a schedule
# for conv models, 2 × 5-fold; image experiments start from it.
IMAGES = Config(
    name="images",
    data=DataConfig(uri="nuclei", scaler="zscore"),
    model=ConvConfig(),
    schedule=ScheduleConfig(ae_steps=50, gan_steps=200, log_every=50, ae_lr=1e-3, d_lr=2e-4, g_lr=2e-4),
    cv=CVConfig(n_folds=5, n_repeats=2),
)


def quick_variant(config: Config) -> Config:
    """A tiny version of `config` for smoke runs and tests: 2 folds × 2 repeats and few steps
    (an image config: ≤ 256 images, 2 folds × 1 repeat, fewer steps: a conv step costs more).
    Experiments return it from `get_config("quick")`."""
    s = config.schedule
    if isinstance(config.model, ConvConfig):
        return config.replace(
            data=config.data.replace(n_images=min(config.data.n_images or 256, 256)),
            cv=config.cv.replace(n_folds=2, n_repeats=1),
            schedule=s.replace(ae_steps=min(s.ae_steps, 5), gan_steps=min(s.gan_steps, 10), log_every=5),
            n_samples=8,
        )
    return config.replace(
        cv=config.cv.replace(n_folds=2, n_repeats=2),
        schedule=s.replace(ae_steps=min(s.ae_steps, 20), gan_steps=min(s.gan_steps, 30), log_every=10),
        synth=config.synth.replace(steps=min(config.synth.steps, 40)),
    )


# --- experiments: files loaded by path ----------------------------------------------------------

EXPERIMENTS_DIR = "experiments"
QUICK = "quick"


def experiments_dirs() -> list[str]:
    """Where experiment names are looked up, in order: ./experiments, then the repository's
    experiments/ (beside the gan_jax package of a source checkout)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return list(dict.fromkeys(os.path.abspath(os.path.join(d, EXPERIMENTS_DIR)) for d in (os.getcwd(), repo)))


def experiment_path(name_or_path: str) -> str:
    """The file of experiment `name` (experiments/<name>.py) or the .py path itself.

    Raises:
      FileNotFoundError: a .py path that does not exist.
      ValueError: no experiments/<name>.py in any of `experiments_dirs()` (they are named).
    """
    if name_or_path.endswith(".py") or os.sep in name_or_path:
        if not os.path.isfile(name_or_path):
            raise FileNotFoundError(f"experiment file {name_or_path!r} not found")
        return name_or_path
    for d in experiments_dirs():
        path = os.path.join(d, f"{name_or_path}.py")
        if os.path.isfile(path):
            return path
    raise ValueError(
        f"unknown experiment {name_or_path!r}: no {name_or_path}.py in {' or '.join(experiments_dirs())} "
        "(or pass a path to a .py file)"
    )


def load_module(name_or_path: str):
    """The module of an experiment (`experiment_path`), executed from its file: experiments are
    not installed, and the library never imports them by package name."""
    path = experiment_path(name_or_path)
    stem = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"gan_jax_experiment_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_quick(arg: str) -> tuple[str, bool]:
    """get_config's argument "variant[,quick]" → (variant, quick)."""
    parts = [p for p in arg.split(",") if p]
    return ",".join(p for p in parts if p != QUICK), QUICK in parts


def load_experiment(spec: str, quick: bool = False, kind: type = None) -> Any:
    """What an experiment's `get_config(arg)` returns: "name", "path/to/file.py", or with an
    argument "name:variant" (→ get_config("variant")); `quick` adds "quick" to the argument
    (→ get_config("quick") or get_config("variant,quick")).

    Args:
      kind: the config type expected (default `Config`; a study may define its own).
    Raises:
      ValueError: no such experiment, no get_config, or a config of another type.
    """
    kind = kind or Config
    name, _, arg = spec.partition(":") if not spec.endswith(".py") else (spec, "", "")
    module = load_module(name)
    if not callable(getattr(module, "get_config", None)):
        raise ValueError(f"experiment {name!r} has no get_config() function")
    arg = ",".join(p for p in (arg, QUICK if quick else "") if p)
    config = module.get_config(arg) if arg else module.get_config()
    if not isinstance(config, kind):
        raise ValueError(
            f"experiment {spec!r}: get_config() returned {type(config).__name__}, not a {kind.__name__}"
        )
    return config
