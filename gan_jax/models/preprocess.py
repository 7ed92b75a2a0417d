"""Scalers as pure jnp functions: `fit(x_train) -> params`, `apply(params, x)`.

Eq. 1 (min-max): x' = (x - min) / (max - min).   Eq. 2 (z-score): x' = (x - mean) / std.
`fit` takes an optional row mask so that it can be fitted on the training part of a fold
inside a vmapped training (rows outside the mask never touch the statistics). Constant
columns (up to float rounding) get a scale of 1, so they map to 0 instead of NaN or noise.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gan_jax.config import SCALERS


class ScalerParams(NamedTuple):
    shift: jax.Array  # [F]
    scale: jax.Array  # [F]


def fit(kind: str, x: jax.Array, mask: jax.Array | None = None) -> ScalerParams:
    """Fits a scaler of `kind` ("minmax" or "zscore") on the rows of `x` [N, F] where `mask` [N]."""
    mask = jnp.ones(x.shape[0], bool) if mask is None else mask.astype(bool)
    m = mask[:, None]
    if kind == "minmax":
        lo = jnp.min(jnp.where(m, x, jnp.inf), axis=0)
        hi = jnp.max(jnp.where(m, x, -jnp.inf), axis=0)
        shift, spread = lo, hi - lo
    elif kind == "zscore":
        n = jnp.sum(mask)
        shift = jnp.sum(jnp.where(m, x, 0.0), axis=0) / n
        spread = jnp.sqrt(jnp.sum(jnp.where(m, (x - shift) ** 2, 0.0), axis=0) / n)
    else:
        raise ValueError(f"unknown scaler {kind!r}; expected one of {SCALERS}")
    # float32 rounding leaves a constant column's std at ~1e-7, not 0: treat that as constant.
    tiny = 16 * jnp.finfo(x.dtype).eps * (1.0 + jnp.abs(shift))
    scale = jnp.where(spread > tiny, spread, 1.0)
    return ScalerParams(shift=shift, scale=scale)


def apply(params: ScalerParams, x: jax.Array) -> jax.Array:
    return (x - params.shift) / params.scale
