"""Result records: the one JSON writer of every study, training run and benchmark result, and
the digest that names a set of fold or labelled-row masks inside them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from gan_jax.artifacts import storage


def write_json(uri: str, obj: Any) -> None:
    """Writes JSON to any storage URI (numpy scalars and arrays as plain numbers and lists);
    local files are replaced atomically."""
    storage.write_text(uri, json.dumps(obj, indent=1, sort_keys=False, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def masks_digest(masks: np.ndarray) -> str:
    """SHA-256 of boolean masks (bit-packed): equal digests mean the same rows were chosen."""
    return hashlib.sha256(np.packbits(np.asarray(masks, bool)).tobytes()).hexdigest()
