"""Synthetic patients: train the class-conditional generator, sample rows in original units,
write them as a CSV plus a sidecar that marks them synthetic.

The generator (`config.synth.model`: "cgan" or "acgan") works in a scaled feature space of the
run's training rows (log1p, then the `synth_scaler`); sampling maps rows back to original
units and clips each feature to its range over the training rows (never below 0: WDBC features
are non-negative). There is no decoder: the generator does not work in the autoencoder's
latent space.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import __version__, runtime
from gan_jax.artifacts import records, storage
from gan_jax.config import Config
from gan_jax.data import FEATURE_NAMES, load_dataset
from gan_jax.data.wdbc import SIDECAR_SUFFIX
from gan_jax.evaluation.evaluate import cv_folds
from gan_jax.training import engine
from gan_jax.training import synth as synth_trainer

WARNING = "SYNTHETIC — not patient data"
LABEL_COLUMN = "diagnosis"
LABEL_CODES = ("B", "M")  # benign = 0, malignant = 1, as UCI's wdbc.data


def fit_generators(
    config: Config,
    x: np.ndarray,
    y: np.ndarray,
    train_masks: np.ndarray,
    labeled_masks: np.ndarray | None = None,
    run_ids: np.ndarray | None = None,
    mesh=None,
) -> engine.TrainResult:
    """Trains one generator per run (run r on the rows of train_masks[r], labels of
    labeled_masks[r] only) in one fused call. Returns states with leaves [R, ...]."""
    runs = synth_trainer.make_synth_runs(config, y, train_masks, labeled_masks=labeled_masks, run_ids=run_ids)
    return synth_trainer.train_synth_runs(config, x, y, runs, mesh=mesh)


def sample_one(config: Config, state: engine.GANState, key: jax.Array, labels: jax.Array) -> jax.Array:
    """Rows [M, F] in original units from one run's generator, one per label in labels [M]."""
    nets = synth_trainer.build_synth_networks(config, state.fitted.transform.lo.shape[-1])
    z = jax.random.normal(key, (labels.shape[0], config.synth.noise_dim))
    xs = nets.gen.apply({"params": state.gen.params}, z, labels)
    return synth_trainer.synth_inverse(config, state.fitted.transform, xs)


@functools.lru_cache(maxsize=16)
def _sample_fn(config: Config) -> Callable:
    return jax.jit(jax.vmap(functools.partial(sample_one, config)))


def sample(config: Config, states: engine.GANState, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rows [R, M, F] in original units: run r's generator makes one row per labels[r] [M]
    (labels [M] is shared by every run). Different `seed`s give independent rows."""
    n_runs = states.step.shape[0]
    labels = np.broadcast_to(np.asarray(labels, np.int32), (n_runs, np.shape(labels)[-1]))
    base = jax.random.key_data(jax.random.key(seed))
    keys = jax.vmap(lambda r: jax.random.fold_in(base, r))(jnp.arange(n_runs, dtype=jnp.uint32))
    return np.asarray(_sample_fn(config.structure())(states, keys, jnp.asarray(labels)))


def balanced_labels(n_per_class: int) -> np.ndarray:
    """[2 n] labels: n benign (0) then n malignant (1)."""
    return np.repeat(np.arange(synth_trainer.NUM_CLASSES, dtype=np.int32), n_per_class)


def to_csv(x: np.ndarray, y: np.ndarray) -> str:
    """A headed CSV: the 30 named features then `diagnosis` (M/B), one row per synthetic case."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*FEATURE_NAMES, LABEL_COLUMN])
    for row, label in zip(np.asarray(x), np.asarray(y)):
        writer.writerow([*(f"{v:.6g}" for v in row), LABEL_CODES[int(label)]])
    return buf.getvalue()


def sidecar_uri(uri: str) -> str:
    return f"{uri}{SIDECAR_SUFFIX}"


def metadata(
    config: Config,
    *,
    seed: int,
    n_per_class: int,
    data_source: str,
    train_rows: np.ndarray,
    holdout_rows: np.ndarray,
    train_seconds: float | None = None,
) -> dict[str, Any]:
    """The sidecar: what made the rows, from which real rows, and that they are synthetic."""
    return {
        "synthetic": True,
        "warning": f"{WARNING}: every row was made by a generator; do not use as patient records",
        "generator": config.synth.model,
        "gan_jax_version": __version__,
        "versions": runtime.library_versions(),
        "config": config.to_dict(),
        "seed": seed,
        "n_per_class": n_per_class,
        "label_codes": {"B": "benign", "M": "malignant"},
        "data": data_source,
        # Row indices into `data`: the generator saw only train_rows; holdout_rows are real rows
        # it never saw, for `gan-jax synth-report`.
        "train_rows": np.flatnonzero(train_rows).tolist(),
        "holdout_rows": np.flatnonzero(holdout_rows).tolist(),
        "train_seconds": train_seconds,
        "created_unix": time.time(),
    }


def write(uri: str, x: np.ndarray, y: np.ndarray, meta: dict[str, Any]) -> None:
    """Writes the CSV to `uri` (any storage scheme) and its sidecar. The sidecar goes first, so
    no reader can ever find the CSV without the mark that it is synthetic."""
    if not meta.get("synthetic"):
        raise ValueError("synthetic rows need metadata with synthetic: true")
    storage.write_text(sidecar_uri(uri), json.dumps(meta, indent=1))
    storage.write_text(uri, to_csv(x, y))


def read_metadata(uri: str) -> dict[str, Any]:
    """The sidecar of a synthetic CSV; FileNotFoundError if there is none."""
    if not storage.exists(sidecar_uri(uri)):
        raise FileNotFoundError(f"{storage.redact(uri)}: no sidecar {SIDECAR_SUFFIX}; not a synthetic file")
    return json.loads(storage.read_text(sidecar_uri(uri)))


def synthesize_to(config: Config, uri: str, *, n_per_class: int, run: int = 0) -> dict[str, Any]:
    """Trains the generator on run `run` of the config's CV folds and writes 2 × n_per_class
    rows to `uri` with their sidecar. Returns the sidecar."""
    data = load_dataset(config.data.uri)  # refuses a synthetic file: no generator trained on one
    folds = cv_folds(data.y, config.cv.n_folds, config.cv.n_repeats, config.cv.seed)
    if not 0 <= run < len(folds):
        raise ValueError(f"--run must be in [0, {len(folds)}), got {run}")
    rec = records.run_record()
    t0 = time.perf_counter()
    result = fit_generators(
        config,
        data.x,
        data.y,
        folds[run : run + 1],
        run_ids=np.array([run]),
        mesh=engine.runs_mesh(jax.devices()[:1]),
    )
    jax.block_until_ready(result.state)
    seconds = time.perf_counter() - t0
    labels = balanced_labels(n_per_class)
    rows = sample(config, result.state, labels, seed=config.cv.seed)[0]
    meta = metadata(
        config,
        seed=config.cv.seed,
        n_per_class=n_per_class,
        data_source=data.source,
        train_rows=folds[run],
        holdout_rows=~folds[run],
        train_seconds=seconds,
    )
    meta["run"] = run
    meta.update(records.finish_record(rec))
    write(uri, rows, labels, meta)
    return meta
