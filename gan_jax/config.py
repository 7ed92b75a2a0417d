"""Experiment configuration: a frozen dataclass, so configs are data, never code paths.

An experiment is a file in `experiments/` whose `get_config()` returns a `Config`;
`load_experiment("paper")` or `load_experiment("path/to/file.py")` finds it.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from typing import Any

GEN_LOSSES = ("feature_matching", "eq7")
# Class-conditional generator of synthetic rows (`train.train_synth_runs`): none, a conditional
# GAN (Mirza & Osindero 2014) or an auxiliary-classifier GAN (Odena et al. 2017).
SYNTH_MODELS = ("none", "cgan", "acgan")


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "paper"
    data: str | None = None  # data URI; None = the bundled WDBC copy
    # Preprocessing (eq. 1 "minmax" or eq. 2 "zscore"), fitted on each training fold only.
    scaler: str = "minmax"
    # Autoencoder (eq. 4); its latent codes are the classifier's features.
    use_autoencoder: bool = True
    latent_dim: int = 16
    ae_hidden: tuple[int, ...] = (64,)
    ae_steps: int = 400
    ae_lr: float = 3e-3
    # Semi-supervised GAN: K-class discriminator-classifier + generator (eqs. 5-8).
    use_gan: bool = True  # False: the same classifier trained supervised only
    disc_hidden: tuple[int, ...] = (64, 32)
    gen_hidden: tuple[int, ...] = (64,)
    noise_dim: int = 16
    gen_loss: str = "feature_matching"  # or "eq7"
    # Share of each training fold whose labels the classifier may read, drawn stratified per
    # run (`evaluate.labeled_masks`); the other training rows are unlabelled data. At 1.0 the
    # "semi-supervised" GAN has every label: its real/fake term is then only a regulariser.
    labeled_fraction: float = 1.0
    unsupervised_weight: float = 1.0
    gan_steps: int = 600
    d_lr: float = 1e-3
    g_lr: float = 1e-3
    batch_size: int = 64
    # Evaluation: repeated stratified k-fold; every (fold, repeat) is one run.
    n_folds: int = 10
    n_repeats: int = 10
    seed: int = 0
    log_every: int = 200  # steps between host syncs (metrics, NaN check, checkpoints)
    # Synthetic rows (`gan_jax.studies.synth`): a class-conditional GAN in scaled feature space, trained
    # by its own fused call on each run's training rows; "none" leaves every other path as it was.
    synth_model: str = "none"
    synth_scaler: str = "zscore"  # fitted on log1p(x) of the run's training rows (if synth_log1p)
    synth_log1p: bool = True  # WDBC features are non-negative and right-skewed
    synth_gen_hidden: tuple[int, ...] = (128, 128)
    synth_disc_hidden: tuple[int, ...] = (128, 128)
    synth_noise_dim: int = 32
    synth_steps: int = 2000
    synth_batch_size: int = 64
    synth_g_lr: float = 2e-4
    synth_d_lr: float = 2e-4

    def __post_init__(self):
        from gan_jax.models.preprocess import SCALERS

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
        """This config with every setting that is per-run data (numeric hyperparameters, seed,
        labelled fraction) or bookkeeping set to a fixed value: the key of compiled programs,
        so runs that differ only in those settings share one compilation."""
        return self.replace(**{f: getattr(_STRUCTURE, f) for f in RUN_DATA_FIELDS})

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown config fields {unknown}; known: {sorted(fields)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# Settings that are per-run arrays in the trainer (or do not change the computation).
RUN_DATA_FIELDS = (
    "name",
    "data",
    "seed",
    "n_folds",
    "n_repeats",
    "log_every",
    "labeled_fraction",
    "ae_lr",
    "d_lr",
    "g_lr",
    "unsupervised_weight",
    "synth_g_lr",
    "synth_d_lr",
)
_STRUCTURE = Config(name="")


def load_module(name_or_path: str):
    """The module of experiment `name` (experiments/<name>.py) or of a .py file, loaded by name:
    the library never imports experiment files, they import it."""
    if name_or_path.endswith(".py") or os.sep in name_or_path:
        spec = importlib.util.spec_from_file_location("_experiment", name_or_path)
        if spec is None or not os.path.exists(name_or_path):
            raise FileNotFoundError(f"experiment file {name_or_path!r} not found")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(f"experiments.{name_or_path}")
    except ModuleNotFoundError as e:
        if e.name not in (f"experiments.{name_or_path}", "experiments"):
            raise
        raise ValueError(f"unknown experiment {name_or_path!r} (no experiments/{name_or_path}.py)") from None


def experiment_config(spec: str):
    """What an experiment's `get_config()` returns, whatever its type: "name",
    "path/to/file.py", or with an argument "name:arg" (→ get_config("arg"))."""
    name, _, arg = spec.partition(":") if not spec.endswith(".py") else (spec, "", "")
    module = load_module(name)
    if not callable(getattr(module, "get_config", None)):
        raise ValueError(f"experiment {name!r} has no get_config() function")
    return module.get_config(arg) if arg else module.get_config()


def load_experiment(spec: str, quick: bool = False) -> Config:
    """`get_config()` of a table experiment (`experiment_config`), e.g. "ablations:no_gan" →
    get_config("no_gan"); `quick` shrinks it."""
    config = experiment_config(spec)
    if not isinstance(config, Config):
        raise ValueError(f"experiment {spec!r}: get_config() returned {type(config).__name__}, not a Config")
    return quick_variant(config) if quick else config


def quick_variant(config: Config) -> Config:
    """A tiny version of `config` for smoke runs and tests: 2 folds × 2 repeats, few steps."""
    return config.replace(
        n_folds=2,
        n_repeats=2,
        ae_steps=min(config.ae_steps, 20),
        gan_steps=min(config.gan_steps, 30),
        log_every=10,
        synth_steps=min(config.synth_steps, 40),
    )
