"""A tiny image experiment for tests (loaded by path: `--experiment tests/tiny_image_experiment.py`):
8×8 images, the widths of `image.TINY`, no augmentation, a few steps."""

import dataclasses

from gan_jax.config import split_quick
from gan_jax.studies.image_data import ImageData
from gan_jax.studies.image_study import ImageStudyConfig, quick_variant
from gan_jax.training import augment
from gan_jax.training.image import TINY


def get_config(arg: str = "") -> ImageStudyConfig:
    config = ImageStudyConfig(
        name="tiny_images",
        model=dataclasses.replace(TINY, augment=augment.NO_AUGMENT),
        data=ImageData(uri="nuclei", image_shape=(8, 8, 3)),
        n_images=64,
        n_folds=2,
        n_repeats=1,
        labeled_fractions=(1.0,),
        ae_steps=2,
        gan_steps=4,
        log_every=2,
        n_samples=4,
    )
    return quick_variant(config) if split_quick(arg)[1] else config
