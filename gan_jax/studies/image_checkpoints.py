"""Checkpoint and resume of the image study, through the table trainer's checkpoint manager
(`gan_jax.training.checkpoint.TrainCheckpoints`: Orbax, any storage URI, the newest readable
step kept, a corrupt one skipped).

Each conv model of the study (the SGAN, the supervised baseline) trains all its runs in one
fused call; its state is saved at chunk boundaries to `<checkpoint_dir>/<model>`. A resumed
study restores each model's newest step and continues from it; a model that had finished is
restored whole and not trained again. Step keys are fold_in(run key, global step), so a resumed
run is bit-identical to one that was never stopped. SIGINT/SIGTERM save a checkpoint at the end
of the current chunk and stop (`runtime.TrainingStopped`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any, NamedTuple

import jax
import numpy as np

from gan_jax import runtime
from gan_jax.artifacts import storage
from gan_jax.config import Config, differences
from gan_jax.training import checkpoint, engine, image


class CheckpointSettings(NamedTuple):
    uri: str  # the study's checkpoint folder; each model gets a sub-folder
    resume: bool = False
    every: int | None = None  # steps between checkpoints (default: log_every)
    keep: int = 3


def train_runs(
    model: Config,
    name: str,
    images: np.ndarray,
    labels: np.ndarray,
    runs: engine.RunSpec,
    *,
    mesh: jax.sharding.Mesh | None,
    settings: CheckpointSettings | None,
    meta: dict[str, Any],
    log=lambda message: None,
) -> engine.TrainResult:
    """`image.train_runs`, saving checkpoints to `settings.uri/<name>` (none
    without `settings`) and, with `settings.resume`, continuing from the newest one.

    Args:
      name: the model's name in the study (its checkpoint sub-folder is made from it).
      meta: what a checkpoint must match to be resumed (the study config); compared as JSON.
    Returns:
      The result; its history is the whole training's, resumed or not.
    Raises:
      CheckpointError: checkpoints already there without `resume`, or of another config/data.
      TrainingStopped: SIGINT/SIGTERM, after saving.
    """
    if settings is None:
        return image.train_runs(model, images, labels, runs, mesh=mesh)
    if settings.every is not None and settings.every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {settings.every}")
    uri = storage.join(settings.uri, slug(name))
    meta = {"study": json.loads(json.dumps(meta)), "data_fingerprint": fingerprint(images, labels, runs)}
    schedule = image.schedule(model)
    save_at = save_steps(schedule, settings.every or schedule.log_every)
    with checkpoint.TrainCheckpoints(uri, keep=settings.keep, steps=save_at) as ckpts:
        state, history = _restore(ckpts, model, runs, meta, settings.resume, uri, schedule, log)
        with runtime.stop_on_signals() as stop:

            def on_chunk(chunk_state, entry: dict) -> None:
                history.append(entry)
                stopping = stop.signum is not None
                ckpts.save(entry["step"], chunk_state, {**meta, "history": history}, force=stopping)
                if stopping:
                    ckpts.wait()
                    raise runtime.TrainingStopped(entry["step"], stop.signum, storage.redact(uri))

            result = image.train_runs(model, images, labels, runs, mesh=mesh, state=state, on_chunk=on_chunk)
    return engine.TrainResult(result.state, history)


def _restore(ckpts, model, runs, meta, resume, uri, schedule, log):
    """(state or None, history so far) from the newest readable checkpoint."""
    if not ckpts.steps():
        if resume:
            log(f"no checkpoint in {storage.redact(uri)}; starting at step 0")
        return None, []
    if not resume:
        raise checkpoint.CheckpointError(
            f"{storage.redact(uri)} already holds checkpoints (newest: step {ckpts.steps()[0]}); "
            "pass --resume to continue that training, or use another --checkpoint-dir"
        )
    restored = ckpts.restore_latest(state_template(model, runs), lambda m: check_compatible(m, meta, uri))
    if restored is None:
        return None, []
    state, saved = restored
    log(f"resuming from step {saved['step']} of {schedule.total_steps} ({storage.redact(uri)})")
    return state, list(saved["history"])


def save_steps(schedule: engine.Schedule, every: int) -> set[int]:
    """The chunk boundaries at which a training saves: the first boundary at or after each
    multiple of `every`, and the end (as `checkpoint.save_steps` for a table config)."""
    due, last = set(), 0
    for _, first, n in engine.phase_schedule(schedule):
        if first + n - last >= every:
            due.add(first + n)
            last = first + n
    return due | {schedule.total_steps}


def slug(name: str) -> str:
    """A model's name as a folder name: "conv SGAN (AE → SGAN)" → "conv_sgan_ae_sgan"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def state_template(model: Config, runs: engine.RunSpec) -> engine.GANState:
    """Zeros with the shapes and dtypes of the runs' training state (no compute)."""
    init = jax.vmap(functools.partial(image.init_run, model.structure(), None))
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(init, runs))


def fingerprint(images: np.ndarray, labels: np.ndarray, runs: engine.RunSpec) -> str:
    """SHA-256 of the images, labels, training and labelled rows and run keys, so a resume
    cannot mix data."""
    h = hashlib.sha256()
    for a in (images, labels, runs.train_mask, runs.labeled_mask, runs.key):
        a = np.ascontiguousarray(np.asarray(a))
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def check_compatible(saved: dict, meta: dict, uri: str) -> None:
    """IncompatibleCheckpoint unless the checkpoint was written by the same study and data."""
    where = f"checkpoint step {saved.get('step')} in {storage.redact(uri)}"
    try:
        diff = differences(saved.get("study", {}), meta["study"])
    except ValueError as e:  # a config this gan_jax cannot read is not the same config
        diff = [f"unreadable: {e}"]
    if diff:
        pairs = ", ".join(diff)
        raise checkpoint.IncompatibleCheckpoint(
            f"{where} was written with another config ({pairs}); resume with the same config or "
            "use another --checkpoint-dir"
        )
    if saved.get("data_fingerprint") != meta["data_fingerprint"]:
        raise checkpoint.IncompatibleCheckpoint(
            f"{where} was trained on other images, folds or labelled rows; resume with the same "
            "data or use another --checkpoint-dir"
        )
