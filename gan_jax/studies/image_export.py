"""`gan-jax export --experiment <image experiment> --data URI OUT`: one conv SGAN of an image
experiment, trained on the data set's own training split (scored on its test split), on every
image (a data set with no split), or on run R of its k-fold (`fold=R`), as an image bundle that
`serve`, `predict` and `sample` take."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from gan_jax.artifacts import bundle, make_bundle
from gan_jax.config import Config
from gan_jax.evaluation import evaluate
from gan_jax.studies import image_data
from gan_jax.training import engine, image


def train_image_bundle(
    config: Config,
    *,
    fold: int | None = None,
    model_version: str | None = None,
    mesh: jax.sharding.Mesh | None = None,
    log=lambda message: None,
) -> bundle.Bundle:
    """Trains the conv SGAN of `config` once (the first labelled fraction) and bundles it.

    Args:
      fold: train on run `fold` of the k-fold (`n_folds × n_repeats` runs) and report its
        held-out metrics; only for data without a split of their own.
      mesh: devices the one run is placed on (default: the first device).
    Returns:
      The bundle; `meta["metrics"]` has "train" (training rows: not a test score) and, where
      there are held-out images, "held_out".
    Raises:
      DataError: unreadable data; ValueError: a fold out of range, or one asked of a data set
        with its own split.
    """
    data, config = image_data.load_study_data(config)
    train_mask, where = _training_rows(data, fold, config.name)
    fraction = config.cv.labeled_fractions[0]
    labeled = evaluate.labeled_masks(data.labels, train_mask[None], fraction, config.cv.seed)
    runs = image.make_runs(config, data.labels, train_mask[None], labeled)
    log(f"training on {int(train_mask.sum())} images ({where}), {100 * fraction:g} % of them labelled")
    result = image.train_runs(
        config,
        data.images,
        data.labels,
        runs,
        mesh=mesh or engine.runs_mesh(jax.devices()[:1]),
    )
    proba = image.predict_runs(config, result.state, data.images)[0]
    metrics = {"train": _metrics(data.labels, proba, train_mask)}
    if not train_mask.all():
        metrics["held_out"] = _metrics(data.labels, proba, ~train_mask)
    training = {
        "experiment": config.name,
        "data": data.description,
        "training_rows": where,
        "labeled_fraction": fraction,
        "ae_steps": config.schedule.ae_steps,
        "gan_steps": config.schedule.gan_steps,
        "seed": config.cv.seed,
        "history": result.history,
    }
    run0 = jax.tree.map(lambda a: np.asarray(a[0]), result.state)
    return make_bundle.image_bundle(
        config,
        run0,
        label_names=data.label_names,
        metrics=metrics,
        training=training,
        model_version=model_version,
        name=config.name,
    )


def _training_rows(data, fold: int | None, name: str) -> tuple[np.ndarray, str]:
    """(training mask [N], what it is in words)."""
    if data.own_split:
        if fold is not None:
            raise ValueError(f"{name}: the data set has its own train/test split; --fold is for k-fold data")
        return data.train_masks[0], "the data set's own training split; held out: its test split"
    if fold is None:
        return np.ones(
            len(data.labels), bool
        ), "every image (no held-out images: the metrics are not a test score)"
    if not 0 <= fold < len(data.train_masks):
        raise ValueError(f"{name}: --fold {fold}; the k-fold has runs 0..{len(data.train_masks) - 1}")
    return data.train_masks[fold], f"run {fold} of the k-fold; held out: its test fold"


def _metrics(labels: np.ndarray, proba: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    m = evaluate.classification_metrics(labels, proba[None], mask[None])
    return {k: float(m[k][0]) for k in evaluate.METRICS} | {"rows": int(mask.sum())}
