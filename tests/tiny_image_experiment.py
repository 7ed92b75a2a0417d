"""A tiny image experiment for tests (loaded by path: `--experiment tests/tiny_image_experiment.py`):
8×8 images, the widths of `image.TINY`, no augmentation, a few steps."""

from gan_jax.config import Config, quick_variant, split_quick
from gan_jax.training import augment
from gan_jax.training.image import TINY


def get_config(arg: str = "") -> Config:
    config = TINY.replace(
        name="tiny_images",
        data=TINY.data.replace(uri="nuclei", image_shape=(8, 8, 3), n_images=64),
        cv=TINY.cv.replace(n_folds=2, n_repeats=1, labeled_fractions=(1.0,)),
        n_samples=4,
        **{
            "model.augment": augment.NO_AUGMENT,
            "schedule.ae_steps": 2,
            "schedule.gan_steps": 4,
            "schedule.log_every": 2,
        },
    )
    return quick_variant(config) if split_quick(arg)[1] else config
