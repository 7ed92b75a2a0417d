"""Result records: the one JSON writer of every study, training run and benchmark result, and
the digest that names a set of fold or labelled-row masks inside them."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from gan_jax.artifacts import storage


def write_json(uri: str, obj: Any) -> None:
    """Writes JSON to any storage URI; local files are replaced atomically."""
    storage.write_text(uri, json.dumps(obj, indent=1, sort_keys=False))


def masks_digest(masks: np.ndarray) -> str:
    """SHA-256 of boolean masks (bit-packed): equal digests mean the same rows were chosen."""
    return hashlib.sha256(np.packbits(np.asarray(masks, bool)).tobytes()).hexdigest()
