"""Data loading and validation. Returns numpy arrays plus metadata; nothing here imports flax."""

from gan_jax.data.cases import CaseError, CaseSchema
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
    "CaseError",
    "CaseSchema",
    "FEATURE_NAMES",
    "LABEL_NAMES",
    "DataError",
    "Dataset",
    "load_bundled",
    "load_csv",
    "load_dataset",
    "load_uci",
]
from gan_jax.data.images import ArraySource, ImageSource, load_images  # noqa: E402

__all__ += ["ArraySource", "ImageSource", "load_images"]
