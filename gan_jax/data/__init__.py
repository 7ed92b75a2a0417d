"""Data loading and validation. Returns numpy arrays plus metadata; nothing here imports flax."""

from gan_jax.data.cases import CaseError, CaseSchema
from gan_jax.data.image_sets import ImageSet, load_image_set, open_image_set, read_image_set
from gan_jax.data.images import ArraySource, ImageSource
from gan_jax.data.wdbc import (
    FEATURE_NAMES,
    LABEL_NAMES,
    DataError,
    Dataset,
    load_bundled,
    load_csv,
    load_dataset,
    load_uci,
)

__all__ = [
    "ArraySource",
    "CaseError",
    "CaseSchema",
    "FEATURE_NAMES",
    "LABEL_NAMES",
    "DataError",
    "Dataset",
    "ImageSet",
    "ImageSource",
    "load_bundled",
    "load_csv",
    "load_dataset",
    "load_image_set",
    "load_uci",
    "open_image_set",
    "read_image_set",
]
