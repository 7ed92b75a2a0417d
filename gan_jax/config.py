"""Experiment configuration: frozen dataclasses, so configs are data, never code paths.

A setting's role is told by its type: `PerRun[float]` settings are per-run data in the fused
trainer (arrays: learning rates, weights, seed, labelled fraction), `Bookkeeping[...]` settings
change no computation (names, data URI, folds, logging); every other setting shapes the compiled
program. `structure()` (the compile key) is derived from these types, never from a field list.

An experiment is a file `experiments/<name>.py` (found from the working directory or the
repository root) or any `.py` file whose `get_config(arg)` returns a config; it is loaded by
path, not installed. `get_config("quick")` is its tiny variant for smoke runs and tests (the
`--quick` flag). `load_experiment("paper")`, `load_experiment("ablations:no_gan")`,
`load_experiment("path/to/file.py", quick=True)` find it.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os
import typing
from typing import Annotated, Any, TypeVar

T = TypeVar("T")


class PerRunData:
    """Marker of a setting that is per-run data (an array) in the fused trainer."""


class BookkeepingData:
    """Marker of a setting that changes no compiled program (names, data URI, folds, logging)."""


PerRun = Annotated[T, PerRunData]
Bookkeeping = Annotated[T, BookkeepingData]

# Preprocessing of the table rows: eq. 1 (min-max) or eq. 2 (z-score); `gan_jax.models.preprocess`.
SCALERS = ("minmax", "zscore")
GEN_LOSSES = ("feature_matching", "eq7")
# Class-conditional generator of synthetic rows (`gan_jax.training.synth`): none, a conditional
# GAN (Mirza & Osindero 2014) or an auxiliary-classifier GAN (Odena et al. 2017).
SYNTH_MODELS = ("none", "cgan", "acgan")
# The layout of `Config.to_dict()`: 1 = one flat dict (what results JSON, checkpoints and
# bundles store). `from_dict` reads it and refuses any other.
CONFIG_VERSION = 1


@functools.cache
def run_data_fields(cls: type) -> tuple[str, ...]:
    """The fields of a config dataclass marked `PerRun` or `Bookkeeping` (by their type)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    marked = lambda h: any(m in (PerRunData, BookkeepingData) for m in getattr(h, "__metadata__", ()))
    return tuple(f.name for f in dataclasses.fields(cls) if marked(hints[f.name]))


def structure_of(config: T) -> T:
    """`config` with every per-run or bookkeeping setting at its default: the key of compiled
    programs, so runs that differ only in those settings share one compilation."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    return dataclasses.replace(config, **{n: fields[n].default for n in run_data_fields(type(config))})


@dataclasses.dataclass(frozen=True)
class Config:
    name: Bookkeeping[str] = "paper"
    data: Bookkeeping[str | None] = None  # data URI; None = the bundled WDBC copy
    # Preprocessing (eq. 1 "minmax" or eq. 2 "zscore"), fitted on each training fold only.
    scaler: str = "minmax"
    # Autoencoder (eq. 4); its latent codes are the classifier's features.
    use_autoencoder: bool = True
    latent_dim: int = 16
    ae_hidden: tuple[int, ...] = (64,)
    ae_steps: int = 400
    ae_lr: PerRun[float] = 3e-3
    # Semi-supervised GAN: K-class discriminator-classifier + generator (eqs. 5-8).
    use_gan: bool = True  # False: the same classifier trained supervised only
    disc_hidden: tuple[int, ...] = (64, 32)
    gen_hidden: tuple[int, ...] = (64,)
    noise_dim: int = 16
    gen_loss: str = "feature_matching"  # or "eq7"
    # Share of each training fold whose labels the classifier may read, drawn stratified per
    # run (`evaluate.labeled_masks`); the other training rows are unlabelled data. At 1.0 the
    # "semi-supervised" GAN has every label: its real/fake term is then only a regulariser.
    labeled_fraction: PerRun[float] = 1.0
    unsupervised_weight: PerRun[float] = 1.0
    gan_steps: int = 600
    d_lr: PerRun[float] = 1e-3
    g_lr: PerRun[float] = 1e-3
    batch_size: int = 64
    # Evaluation: repeated stratified k-fold; every (fold, repeat) is one run.
    n_folds: Bookkeeping[int] = 10
    n_repeats: Bookkeeping[int] = 10
    seed: PerRun[int] = 0
    log_every: Bookkeeping[int] = 200  # steps between host syncs (metrics, NaN check, checkpoints)
    # Synthetic rows (`gan_jax.studies.synth`): a class-conditional GAN in scaled feature space, trained
    # by its own fused call on each run's training rows; "none" leaves every other path as it was.
    synth_model: str = "none"
    synth_scaler: str = "zscore"  # fitted on log1p(x) of the run's training rows (if synth_log1p)
    synth_log1p: bool = True  # WDBC features are non-negative and right-skewed
    # > 0: each feature mapped to normal scores through this many quantiles of the run's training
    # rows (sklearn's QuantileTransformer, normal output) in place of log1p + synth_scaler: skewed
    # and zero-heavy features become Gaussian, so the generator need not learn their shape.
    synth_quantiles: int = 0
    synth_gen_hidden: tuple[int, ...] = (128, 128)
    synth_disc_hidden: tuple[int, ...] = (128, 128)
    synth_noise_dim: int = 32
    synth_steps: int = 2000
    synth_batch_size: int = 64
    synth_g_lr: PerRun[float] = 2e-4
    synth_d_lr: PerRun[float] = 2e-4

    def __post_init__(self):
        checks = [
            (self.scaler in SCALERS, f"scaler must be one of {SCALERS}"),
            (self.gen_loss in GEN_LOSSES, f"gen_loss must be one of {GEN_LOSSES}"),
            (self.latent_dim > 0 and self.noise_dim > 0, "latent_dim and noise_dim must be > 0"),
            (self.ae_steps >= 0 and self.gan_steps > 0, "need ae_steps >= 0 and gan_steps > 0"),
            (self.batch_size > 0 and self.log_every > 0, "batch_size, log_every must be > 0"),
            (self.n_folds >= 2 and self.n_repeats >= 1, "need n_folds >= 2 and n_repeats >= 1"),
            (0.0 < self.labeled_fraction <= 1.0, "labeled_fraction must be in (0, 1]"),
            (self.synth_model in SYNTH_MODELS, f"synth_model must be one of {SYNTH_MODELS}"),
            (self.synth_scaler in SCALERS, f"synth_scaler must be one of {SCALERS}"),
            (
                self.synth_steps > 0 and self.synth_batch_size > 0 and self.synth_noise_dim > 0,
                "synth_steps, synth_batch_size and synth_noise_dim must be > 0",
            ),
            (
                self.synth_quantiles == 0 or self.synth_quantiles >= 2,
                f"synth_quantiles must be 0 (off) or >= 2, got {self.synth_quantiles}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"config {self.name!r}: {message}")

    @property
    def n_runs(self) -> int:
        return self.n_folds * self.n_repeats

    @property
    def total_steps(self) -> int:
        return self.ae_phase_steps + self.gan_steps

    @property
    def ae_phase_steps(self) -> int:
        return self.ae_steps if self.use_autoencoder else 0

    def structure(self) -> Config:
        """This config with every `PerRun` or `Bookkeeping` setting at its default
        (`structure_of`): the key of compiled programs."""
        return structure_of(self)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """A config from `to_dict()`'s form, as results JSON, checkpoints and bundles store it
        (layout `config_version` 1, the default when the key is absent: one flat dict).

        Raises:
          ValueError: another layout version, or unknown fields (both named).
        """
        d = dict(d)
        version = d.pop("config_version", 1)
        if version != CONFIG_VERSION:
            raise ValueError(
                f"config layout version {version!r} is not readable here (this gan_jax reads "
                f"version {CONFIG_VERSION}: one flat dict of Config fields)"
            )
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; known: {sorted(fields)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def quick_variant(config: Config) -> Config:
    """A tiny version of `config` for smoke runs and tests: 2 folds × 2 repeats, few steps.
    Experiments return it from `get_config("quick")`."""
    return config.replace(
        n_folds=2,
        n_repeats=2,
        ae_steps=min(config.ae_steps, 20),
        gan_steps=min(config.gan_steps, 30),
        log_every=10,
        synth_steps=min(config.synth_steps, 40),
    )


# --- experiments: files loaded by path ----------------------------------------------------------

EXPERIMENTS_DIR = "experiments"
QUICK = "quick"


def experiments_dirs() -> list[str]:
    """Where experiment names are looked up, in order: ./experiments, then the repository's
    experiments/ (beside the gan_jax package of a source checkout)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def load_experiment(spec: str, quick: bool = False, kind: type | None = None):
    """What an experiment's `get_config(arg)` returns: "name", "path/to/file.py", or with an
    argument "name:variant" (→ get_config("variant")); `quick` adds "quick" to the argument
    (→ get_config("quick") or get_config("variant,quick")).

    Args:
      kind: the config type expected (default `Config`).
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
