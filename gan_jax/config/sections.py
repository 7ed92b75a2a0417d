"""The sections of an experiment's `Config`: frozen dataclasses, so configs are data.

A setting's role is told by its type: `PerRun[...]` settings are per-run data in the fused
trainer (arrays: learning rates, weights, seed, labelled fraction), `Bookkeeping[...]` settings
change no compiled program (names, data URI, folds, logging, step counts); every other setting
shapes the compiled program. `structure_of` (the compile key) is derived from these types,
never from a field list.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Annotated, Any, ClassVar, TypeVar

from gan_jax.training.augment import AugmentConfig

T = TypeVar("T")


class PerRunData:
    """Marker of a setting that is per-run data (an array) in the fused trainer."""


class BookkeepingData:
    """Marker of a setting that changes no compiled program (names, data URI, folds, logging,
    how many steps the compiled chunks run)."""


PerRun = Annotated[T, PerRunData]
Bookkeeping = Annotated[T, BookkeepingData]

# Preprocessing of the table rows: eq. 1 (min-max) or eq. 2 (z-score); `gan_jax.models.preprocess`.
SCALERS = ("minmax", "zscore")
GEN_LOSSES = ("feature_matching", "eq7")
# Class-conditional generator of synthetic rows (`gan_jax.training.synth`): none, a conditional
# GAN (Mirza & Osindero 2014) or an auxiliary-classifier GAN (Odena et al. 2017).
SYNTH_MODELS = ("none", "cgan", "acgan")


def _check(section: str, checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise ValueError(f"config section {section}: {message}")


class Section:
    """What every section shares: `replace`."""

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class DataConfig(Section):
    """What the models train on, and how it is read."""

    # None: the bundled WDBC copy (tables) or the SYNTHETIC nuclei demo set (images); else a
    # table CSV, or for images "nuclei", a folder, a `.npz`, "tfds:<name>" (`data.image_sets`);
    # local, s3:// or gs://.
    uri: Bookkeeping[str | None] = None
    # Tables: eq. 1 "minmax" or eq. 2 "zscore", fitted on each training fold only. Images: the
    # scaler of the pixel logistic regression's mean-pooled pixels.
    scaler: str = "minmax"
    # Images only. (H, W, C) every image is resized to (PIL bilinear); None: the data's own.
    image_shape: Bookkeeping[tuple[int, int, int] | None] = None
    data_dir: Bookkeeping[str | None] = None  # the TFDS data directory (a folder's cache)
    # Folder names or integer labels that mean malignant (others are benign); (): the data's own.
    malignant: Bookkeeping[tuple[str | int, ...]] = ()
    # The demo set: drawn by nuclei.generate(n_images, data_seed, size). Other data: at most this
    # many images, a uniform random subset from data_seed (None: every image).
    n_images: Bookkeeping[int | None] = 2000
    data_seed: Bookkeeping[int] = 0
    pool: Bookkeeping[int] = 2  # the pixel logistic regression sees (size / pool)² × C mean-pooled pixels

    def __post_init__(self):
        _check(
            "data",
            [(self.scaler in SCALERS, f"scaler must be one of {SCALERS}"), (self.pool > 0, "pool > 0")],
        )


@dataclasses.dataclass(frozen=True)
class MLPConfig(Section):
    """The table models: autoencoder (eq. 4), discriminator-classifier and generator (eqs. 5-8)."""

    KIND: ClassVar[str] = "mlp"
    # Autoencoder (eq. 4); its latent codes are the classifier's features.
    use_autoencoder: bool = True
    latent_dim: int = 16
    ae_hidden: tuple[int, ...] = (64,)
    # Semi-supervised GAN: K-class discriminator-classifier + generator (eqs. 5-8).
    use_gan: bool = True  # False: the same classifier trained supervised only
    disc_hidden: tuple[int, ...] = (64, 32)
    gen_hidden: tuple[int, ...] = (64,)
    noise_dim: int = 16

    def __post_init__(self):
        _check(
            "model", [(self.latent_dim > 0 and self.noise_dim > 0, "latent_dim and noise_dim must be > 0")]
        )


@dataclasses.dataclass(frozen=True)
class ConvConfig(Section):
    """The image models: conv autoencoder, discriminator-classifier and generator."""

    KIND: ClassVar[str] = "conv"
    use_autoencoder: ClassVar[bool] = True  # the image path always pretrains the autoencoder
    image_shape: tuple[int, int, int] = (64, 64, 3)  # the images' own, once the data are read
    features: tuple[int, ...] = (32, 64, 128)  # encoder / discriminator widths
    gen_features: tuple[int, ...] = (256, 128, 64)
    disc_hidden: int = 128
    latent_dim: int = 64
    noise_dim: int = 100
    # False: the same classifier trained on the supervised loss only (no generator, no real/fake
    # term): the baseline that tells what the GAN adds.
    use_gan: bool = True
    # Start the discriminator's conv trunk from the pretrained encoder's (same widths): the
    # autoencoder's features are what the classifier builds on, as the latent codes are for
    # the table.
    disc_from_encoder: bool = True
    compute_dtype: str = "float32"  # "bfloat16" on GPU/TPU; see `training.image.default_compute_dtype`
    augment: AugmentConfig = AugmentConfig()

    def __post_init__(self):
        _check(
            "model", [(self.latent_dim > 0 and self.noise_dim > 0, "latent_dim and noise_dim must be > 0")]
        )


MODELS = {m.KIND: m for m in (MLPConfig, ConvConfig)}


@dataclasses.dataclass(frozen=True)
class ScheduleConfig(Section):
    """How long and how fast the classifier trains."""

    # How often the compiled chunks run, not what they are: bookkeeping for the compile key.
    ae_steps: Bookkeeping[int] = 400
    gan_steps: Bookkeeping[int] = 600
    batch_size: int = 64  # global, over all devices
    log_every: Bookkeeping[int] = 200  # steps between host syncs (metrics, NaN check, checkpoints)
    ae_lr: PerRun[float] = 3e-3
    d_lr: PerRun[float] = 1e-3
    g_lr: PerRun[float] = 1e-3
    unsupervised_weight: PerRun[float] = 1.0
    gen_loss: str = "feature_matching"  # or "eq7"
    # Semi-supervised extras of the table trainer (issue 22); every one off by default, so the
    # paper config's numbers are unchanged. `ssl_extras` (a structure: one more compiled
    # program) keeps an EMA "teacher" copy of the discriminator-classifier and adds the terms
    # below, on a batch of the run's training rows whose labels are never read, to the
    # discriminator's loss. A weight of 0 switches its term off without a recompile (PerRun
    # data), so a sweep turns the terms on and off per run. Prediction uses the student.
    ssl_extras: bool = False
    entropy_weight: PerRun[float] = 0.0  # entropy minimisation of p(y|x) (Grandvalet & Bengio 2005)
    # Consistency ‖p_student(x + ε) − p_teacher(x + ε')‖², ε, ε' ~ N(0, σ²) on classifier inputs:
    # the Π-model (Laine & Aila 2017) with ema_decay 0, mean teacher (Tarvainen & Valpola 2017)
    # with ema_decay near 1.
    consistency_weight: PerRun[float] = 0.0
    consistency_noise: PerRun[float] = 0.1  # σ
    ema_decay: PerRun[float] = 0.0  # teacher ← decay · teacher + (1 − decay) · student, each step

    def __post_init__(self):
        _check(
            "schedule",
            [
                (self.gen_loss in GEN_LOSSES, f"gen_loss must be one of {GEN_LOSSES}"),
                (
                    min(self.entropy_weight, self.consistency_weight, self.consistency_noise) >= 0
                    and 0.0 <= self.ema_decay < 1.0,
                    "entropy_weight, consistency_weight, consistency_noise must be >= 0, ema_decay in [0, 1)",
                ),
                (self.ae_steps >= 0 and self.gan_steps > 0, "need ae_steps >= 0 and gan_steps > 0"),
                (self.batch_size > 0 and self.log_every > 0, "batch_size, log_every must be > 0"),
            ],
        )


@dataclasses.dataclass(frozen=True)
class CVConfig(Section):
    """Evaluation: repeated stratified k-fold; every (fold, repeat) is one run."""

    n_folds: Bookkeeping[int] = 10
    n_repeats: Bookkeeping[int] = 10
    # Share of each training fold whose labels the classifier may read, drawn stratified per
    # run (`evaluate.labeled_masks`); the other training rows are unlabelled data. At 1.0 the
    # "semi-supervised" GAN has every label: its real/fake term is then only a regulariser.
    labeled_fraction: PerRun[float] = 1.0
    # Image studies: every fraction gets all the runs (the table's label study has its own list).
    labeled_fractions: Bookkeeping[tuple[float, ...]] = (1.0,)
    seed: PerRun[int] = 0

    def __post_init__(self):
        fractions = self.labeled_fractions
        _check(
            "cv",
            [
                (self.n_folds >= 2 and self.n_repeats >= 1, "need n_folds >= 2 and n_repeats >= 1"),
                (0.0 < self.labeled_fraction <= 1.0, "labeled_fraction must be in (0, 1]"),
                (
                    bool(fractions) and all(0.0 < f <= 1.0 for f in fractions),
                    "labeled_fractions must be non-empty, each in (0, 1]",
                ),
            ],
        )


@dataclasses.dataclass(frozen=True)
class SynthConfig(Section):
    """Synthetic rows (`gan_jax.studies.synth`): a class-conditional GAN in scaled feature space,
    trained by its own fused call on each run's training rows; "none" leaves every other path
    as it was."""

    model: str = "none"
    scaler: str = "zscore"  # fitted on log1p(x) of the run's training rows (if log1p)
    log1p: bool = True  # WDBC features are non-negative and right-skewed
    gen_hidden: tuple[int, ...] = (128, 128)
    disc_hidden: tuple[int, ...] = (128, 128)
    noise_dim: int = 32
    steps: Bookkeeping[int] = 2000
    batch_size: int = 64
    g_lr: PerRun[float] = 2e-4
    d_lr: PerRun[float] = 2e-4

    def __post_init__(self):
        _check(
            "synth",
            [
                (self.model in SYNTH_MODELS, f"model must be one of {SYNTH_MODELS}"),
                (self.scaler in SCALERS, f"scaler must be one of {SCALERS}"),
                (
                    self.steps > 0 and self.batch_size > 0 and self.noise_dim > 0,
                    "steps, batch_size and noise_dim must be > 0",
                ),
            ],
        )


@functools.cache
def run_data_fields(cls: type) -> tuple[str, ...]:
    """The fields of a config dataclass marked `PerRun` or `Bookkeeping` (by their type)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    marked = lambda h: any(m in (PerRunData, BookkeepingData) for m in getattr(h, "__metadata__", ()))
    return tuple(f.name for f in dataclasses.fields(cls) if marked(hints[f.name]))


def structure_of(config: T) -> T:
    """`config` with every per-run or bookkeeping setting at its default, in every section it
    holds: the key of compiled programs, so runs that differ only in those settings share one
    compilation."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    changes = {n: fields[n].default for n in run_data_fields(type(config))}
    for name in fields:
        value = getattr(config, name)
        if name not in changes and isinstance(value, Section):
            changes[name] = structure_of(value)
    return dataclasses.replace(config, **changes)


def replace_path(config: T, path: str, value: Any, prefix: str = "") -> T:
    """`config` with the field at dotted `path` ("schedule.gan_steps", "name") set to `value`
    (`prefix`: the path of `config` itself, for messages).

    Raises:
      ValueError: no such field (the known ones of the section named).
    """
    head, _, rest = path.partition(".")
    names = [f.name for f in dataclasses.fields(config)]
    if head not in names:
        raise ValueError(f"unknown config field {prefix + path!r} in {type(config).__name__}; known: {names}")
    if rest:
        section = getattr(config, head)
        if not dataclasses.is_dataclass(section):
            raise ValueError(
                f"config field {prefix + head!r} is not a section, so {prefix + path!r} names nothing"
            )
        value = replace_path(section, rest, value, f"{prefix}{head}.")
    return dataclasses.replace(config, **{head: value})
