"""What differs between a table bundle and an image bundle, in one object per kind, picked
once by `kind_of` (the metadata's `kind`): its stored params and metadata, its config type,
its params template, its input codec and its jitted predictor. Nothing else switches on kind."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import Config, ConvConfig, MLPConfig
from gan_jax.data.cases import scaler_bounds
from gan_jax.training import image, table

# A `gan_jax.artifacts.bundle.Bundle`; not imported, as that module imports this one.
Bundle = Any


class BundleError(ValueError):
    """A bundle that cannot be served: missing, corrupt, truncated or of another schema."""


class _TableKind:
    """The WDBC pipeline's bundle: scaler + autoencoder + SGAN over feature rows."""

    name = "table"
    param_keys = ("scaler", "ae", "disc", "gen")
    meta_keys = ("feature_names",)
    input_dtype = np.dtype(np.float32)

    def config_from_dict(self, d: dict[str, Any]):
        return config_of_kind(d, MLPConfig)

    def template(self, config, n_features: int) -> dict[str, Any]:
        return params_dict(table.model_params(table.state_shapes(config, n_features)))

    def check_meta(self, meta: dict[str, Any], where: str) -> None:
        names = meta["feature_names"]
        if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
            raise BundleError(f"{where}: feature_names must be a non-empty list of names")
        if len(set(names)) != len(names):
            raise BundleError(f"{where}: feature_names has duplicates")

    def kind_meta(self, bundle: Bundle) -> dict[str, Any]:
        return {"feature_names": list(bundle.feature_names)}

    def input_shape(self, bundle: Bundle) -> tuple[int, ...]:
        return (bundle.n_features,)

    def input_bounds(self, bundle: Bundle):
        return scaler_bounds(bundle.params["scaler"]["shift"], bundle.params["scaler"]["scale"])

    def predict_fn(self, bundle: Bundle) -> Callable:
        model = jax.device_put(bundle.model())
        return jax.jit(lambda x: table.predict_proba(bundle.config, model, x))

    def check_input(self, bundle: Bundle, x) -> jax.Array:
        return jnp.asarray(x, jnp.float32)


class _ImageKind:
    """The conv SGAN of `gan_jax.training.image` over uint8 images."""

    name = "image"
    param_keys = ("ae", "disc", "gen")
    meta_keys = ()
    input_dtype = np.dtype(np.uint8)

    def config_from_dict(self, d: dict[str, Any]):
        return config_of_kind(d, ConvConfig)

    def template(self, config, n_features: int) -> dict[str, Any]:
        state = jax.eval_shape(functools.partial(image.init_state, config), jax.random.key(0))
        return {"ae": state.ae.params, "disc": state.disc.params, "gen": state.gen.params}

    def check_meta(self, meta: dict[str, Any], where: str) -> None:
        pass  # the image shape is in the config, checked against the params' shapes

    def kind_meta(self, bundle: Bundle) -> dict[str, Any]:
        return {}

    def input_shape(self, bundle: Bundle) -> tuple[int, ...]:
        return bundle.image_shape

    def input_bounds(self, bundle: Bundle):
        return None

    def predict_fn(self, bundle: Bundle) -> Callable:
        state = jax.device_put(bundle.image_state())
        return jax.jit(lambda x: image.predict_proba(bundle.config, state, x))

    def check_input(self, bundle: Bundle, x) -> jax.Array:
        if np.asarray(x).dtype != np.uint8 or np.shape(x)[1:] != bundle.image_shape:
            raise ValueError(
                f"expected uint8 images [N, {', '.join(map(str, bundle.image_shape))}], "
                f"got {np.asarray(x).dtype} {list(np.shape(x))}"
            )
        return jnp.asarray(x, jnp.uint8)


KINDS = {k.name: k for k in (_TableKind(), _ImageKind())}
PARAM_KEYS = {name: k.param_keys for name, k in KINDS.items()}


def kind_of(meta: dict[str, Any]):
    """The kind of a bundle from its metadata (format/2 bundles written before kinds are tables)."""
    return KINDS[meta.get("kind", "table")]


def params_dict(model: table.ModelParams) -> dict[str, Any]:
    """The bundle's stored form of a model's params (plain dicts, readable without gan_jax)."""
    scaler = {"shift": model.scaler.shift, "scale": model.scaler.scale}
    return {"scaler": scaler, "ae": model.ae, "disc": model.disc, "gen": model.gen}


def config_of_kind(d: dict[str, Any], model: type) -> Config:
    """The bundle's config (`Config.from_dict`: layout 2, or 1 as bundles stored it before
    sections), whose model section must be a `model`.

    Raises:
      ValueError: not a readable config, or one of another model kind.
    """
    if not isinstance(d, dict):
        raise TypeError(f"the config must be an object, got {type(d).__name__}")
    config = Config.from_dict(d)
    if not isinstance(config.model, model):
        raise ValueError(f"its model is {config.model.KIND!r}, this bundle kind needs {model.KIND!r}")
    return config
