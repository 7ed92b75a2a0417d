"""Bundles made from training: one trained table run (`train_bundle`) or image run
(`image_bundle`), sealed with its metadata (metrics, provenance) by `gan_jax.artifacts.bundle`."""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import runtime
from gan_jax.artifacts import bundle, bundle_kinds
from gan_jax.config import Config
from gan_jax.data import load_dataset
from gan_jax.evaluation import evaluate
from gan_jax.training import table


def train_bundle(
    config: Config, *, fold: int | None = None, model_version: str | None = None, mesh=None
) -> bundle.Bundle:
    """Trains one run of `config` and returns it as a bundle.

    Args:
      fold: None trains on every row; r trains on run r of `evaluate.cv_folds` (repeat
        r // n_folds, fold r % n_folds) and also reports metrics on its held-out rows.
      model_version: the served version string (default: "<config name>-<checksum[:12]>").
      mesh: devices for training (default: all).
    """
    data = load_dataset(config.data.uri)
    if fold is None:
        mask, run_id = np.ones(len(data.y), bool), 0
    else:
        if not 0 <= fold < config.n_runs:
            raise ValueError(f"fold must be in [0, {config.n_runs}), got {fold}")
        mask = evaluate.cv_folds(data.y, config.cv.n_folds, config.cv.n_repeats, config.cv.seed)[fold]
        run_id = fold
    t0 = time.perf_counter()
    runs = table.make_runs(config, data.y, mask[None], run_ids=np.asarray([run_id]))
    result = table.train_runs(config, data.x, data.y, runs, mesh=mesh)
    model = jax.tree.map(lambda a: np.asarray(a[0]), jax.device_get(table.model_params(result.state)))
    seconds = time.perf_counter() - t0
    params = bundle_kinds.params_dict(model)
    proba = np.asarray(table.predict_proba(config, jax.device_put(model), jnp.asarray(data.x)))
    metrics = {"train": _metrics(data.y, proba, mask)}
    if fold is not None:
        metrics["held_out"] = _metrics(data.y, proba, ~mask)
    meta = {
        "format": bundle.FORMAT,
        "kind": "table",
        "config": config.to_dict(),
        "feature_names": list(data.feature_names),
        "label_names": list(data.label_names),
        "versions": runtime.library_versions(),
        "metrics": metrics,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training": {
            "data": data.source,
            "fold": fold,
            "n_train_rows": int(mask.sum()),
            "n_labeled_rows": int(runs.labeled_mask.sum()),
            "seed": config.cv.seed,
            "seconds": round(seconds, 2),
            "git_commit": runtime.git_commit(),
        },
    }
    return bundle.seal(params, meta, model_version, config.name)


def image_bundle(
    config,
    state,
    *,
    label_names: tuple[str, str],
    metrics: dict[str, Any],
    training: dict[str, Any],
    model_version: str | None = None,
    name: str = "images",
) -> bundle.Bundle:
    """One trained image run (`gan_jax.training.image`) as a bundle; `export` writes it.

    Args:
      config: the run's `Config` (its model section a `ConvConfig`).
      state: its `engine.GANState`, or a dict {"ae", "disc", "gen"} of its params, for one run
        (no runs axis; a fused trainer's state must be sliced first).
      label_names: the two class names in label order (benign-like first, malignant second).
      metrics: JSON-serialisable measurements of this run (e.g. held-out accuracy), stored as given.
      training: JSON-serialisable provenance (data source, split, steps, seed, ...); the git
        commit is added.
      model_version: the served version (default "<name>-<checksum[:12]>").
    Raises:
      bundle.BundleError: params whose shapes do not match `config`, or not two label names.
    """
    params = _image_params(state)
    where = f"image_bundle({name!r})"
    bundle.check_shapes(params, bundle.params_template("image", config), where)
    if len(label_names) != 2 or not all(isinstance(n, str) for n in label_names):
        raise bundle.BundleError(f"{where}: label_names must name the two classes, got {list(label_names)}")
    meta = {
        "format": bundle.FORMAT,
        "kind": "image",
        "config": config.to_dict(),
        "label_names": list(label_names),
        "versions": runtime.library_versions(),
        "metrics": metrics,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training": {**training, "git_commit": runtime.git_commit()},
    }
    return bundle.seal(params, meta, model_version, name)


def _image_params(state) -> dict[str, Any]:
    if isinstance(state, dict):
        params = {k: state[k] for k in bundle_kinds.PARAM_KEYS["image"] if k in state}
    else:
        params = {"ae": state.ae.params, "disc": state.disc.params, "gen": state.gen.params}
    if set(params) != set(bundle_kinds.PARAM_KEYS["image"]):
        raise bundle.BundleError(
            f"image params need the keys {list(bundle_kinds.PARAM_KEYS['image'])}, got {sorted(params)}"
        )
    return jax.tree.map(np.asarray, jax.device_get(params))


def _metrics(y: np.ndarray, proba: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    m = evaluate.classification_metrics(y, proba[None], mask[None])
    return {k: float(m[k][0]) for k in evaluate.METRICS} | {"n_rows": int(mask.sum())}
