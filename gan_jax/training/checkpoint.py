"""Training checkpoints under any storage URI, through one Orbax `CheckpointManager`.

A checkpoint is one Orbax step folder holding the full `engine.GANState` of every run (params,
optimizer states, scaler, step) plus JSON metadata (config, data fingerprint, loss history).
Nothing else is needed to resume bit for bit: every random draw, including which training rows
a batch takes, is fold_in(run's step key, global step), and the run keys come from the seed.

Which steps are saved is the manager's save-decision policy (`SpecificStepsPolicy` over the
chunk boundaries due, see `save_steps`) and how many are kept its preservation policy
(`LatestN`); a stop on a signal forces a save. Local folders are written by Orbax directly (a
temporary folder renamed when complete, so a crash never leaves a half-written step).

For s3:// and gs:// Orbax 0.12.8 still cannot build its TensorStore paths (re-tested against
moto's S3 server: "Checkpoint path should be absolute. Got s3:/bucket/..."), so the manager
works in a local staging folder and each saved step is uploaded with fsspec; a remote step
counts as committed only once its manifest (sizes and SHA-256, `gan_jax.artifacts.manifest`) is
uploaded, last.

Several processes (gan_jax.training.distributed): every process calls `save` and `restore_latest`, as
Orbax expects; `save` first gathers the state to every host (`distributed.to_host`), and Orbax
writes host arrays from the primary process only, behind its own cross-process barriers, so the
folder must be one that every process sees (a shared filesystem; the s3/gs staging above is
per process, so remote folders are refused there). Every process restores the whole state and
the trainer shards it again, so a checkpoint written by N processes resumes on any number.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy, save_decision_policy

from gan_jax.artifacts import manifest, storage
from gan_jax.config import Config, differences
from gan_jax.training import distributed, engine, table

MANIFEST = "gan_jax_manifest.json"  # remote steps only; uploaded last = the step is committed
FORMAT_VERSION = 3  # 2: state grouped per network; 3: the engine's GANState (scaler -> fitted)


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be resumed from; the message says why and where."""


class IncompatibleCheckpoint(CheckpointError):
    """A readable checkpoint of another config or data set: never skipped or removed."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (partial or corrupt) and an older one used."""


def save_steps(config: Config, every: int) -> set[int]:
    """The chunk boundaries at which a training of `config` saves: the first boundary at or
    after each multiple of `every`, and the end of training."""
    ends = [first + n for _, first, n in engine.phase_schedule(table.schedule(config))]
    due, last = set(), 0
    for end in ends:
        if end - last >= every:
            due.add(end)
            last = end
    return due | {config.total_steps}


class TrainCheckpoints:
    """The checkpoints of one training in the folder `uri` (local path, s3:// or gs://).

    Args:
      uri: checkpoint folder.
      keep: how many of the newest checkpoints to keep.
      steps: the steps to save (`save_steps`); None saves every step asked.
      async_save: let Orbax write in a background thread while training continues (local
        folders; remote steps are uploaded synchronously once written).
    """

    def __init__(self, uri: str, *, keep: int = 3, steps: set[int] | None = None, async_save: bool = True):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.uri = storage.check_uri(uri).rstrip("/")
        self.remote = storage.is_remote(self.uri)
        if self.remote and jax.process_count() > 1:
            raise CheckpointError(
                f"{storage.redact(self.uri)}: checkpoints of a job with {jax.process_count()} processes "
                "go to a folder every process sees (a shared filesystem path); s3:// and gs:// are "
                "staged per process here"
            )
        self.keep = keep
        self.save_every_step = steps is None
        local = tempfile.mkdtemp(prefix="gan_jax_ckpt_") if self.remote else os.path.abspath(self.uri)
        self.local_dir = local
        policy = save_decision_policy.SpecificStepsPolicy(steps=frozenset(steps or ()))
        options = ocp.CheckpointManagerOptions(
            create=True,
            cleanup_tmp_directories=True,
            save_decision_policy=policy,
            preservation_policy=preservation_policy.LatestN(keep),
            enable_async_checkpointing=async_save and not self.remote,
        )
        self.manager = ocp.CheckpointManager(local, options=options)

    def steps(self) -> list[int]:
        """Complete steps, newest first (remote: those whose manifest was uploaded)."""
        if not self.remote:
            self.manager.reload()
            return sorted(self.manager.all_steps(), reverse=True)
        names = storage.listdir(self.uri)
        return sorted(
            (int(n) for n in names if n.isdigit() and storage.exists(self._manifest(n))), reverse=True
        )

    def restore_latest(self, template: Any, check: Callable[[dict], None] = lambda meta: None):
        """(state, metadata) of the newest readable step, or None if there is none. An
        unreadable newest step (partial upload, truncated or missing file) is removed with a
        CheckpointWarning and the next one tried.

        Args:
          template: a pytree of arrays with the state's structure, shapes and dtypes.
          check: called with the metadata before the arrays are read; it raises
            IncompatibleCheckpoint for a checkpoint of another config, which is passed on
            (such a step is readable, so it must not be mistaken for a corrupt one).
        """
        for step in self.steps():
            try:
                return self._restore(step, template, check)
            except IncompatibleCheckpoint:
                raise
            except Exception as e:  # noqa: BLE001 - any read error means this step is unusable
                warnings.warn(
                    f"checkpoint step {step} in {storage.redact(self.uri)} is unreadable "
                    f"({type(e).__name__}: {_first_line(e)}); removed it, trying the previous one",
                    CheckpointWarning,
                    stacklevel=2,
                )
                self._delete(step)
        return None

    def _restore(self, step: int, template: Any, check: Callable[[dict], None]) -> tuple[Any, dict]:
        if self.remote:
            self._download(step)
        meta = dict(self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta)
        if meta.get("step") != step:
            raise CheckpointError(f"metadata says step {meta.get('step')}")
        if meta.get("format") != FORMAT_VERSION:  # readable, so never removed as corrupt
            raise IncompatibleCheckpoint(
                f"checkpoint step {step} in {storage.redact(self.uri)} has format {meta.get('format')} "
                f"(this gan_jax reads format {FORMAT_VERSION}); resume it with the gan_jax that wrote "
                "it, or use another --checkpoint-dir"
            )
        check(meta)
        state = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(template)))
        return state.state, meta

    def _download(self, step: int) -> None:
        local = os.path.join(self.local_dir, str(step))
        shutil.rmtree(local, ignore_errors=True)
        storage.download_dir(storage.join(self.uri, str(step)), local)
        with open(os.path.join(local, MANIFEST)) as f:
            problem = manifest.first_problem(local, json.load(f))
        if problem is not None:
            raise CheckpointError(problem)
        self.manager.reload()

    def _delete(self, step: int) -> None:
        shutil.rmtree(os.path.join(self.local_dir, str(step)), ignore_errors=True)
        self.manager.reload()
        if self.remote:
            storage.remove(storage.join(self.uri, str(step)))

    def save(self, step: int, state: Any, meta: dict, *, force: bool = False) -> bool:
        """Saves `state` with a snapshot of `meta` as step `step` if the save policy says so (or
        `force`). Returns whether it saved. The state is copied to the host first: the trainer
        donates its buffers to the next chunk; with several processes every process must call
        this (the state is gathered across them)."""
        if not (force or self.save_every_step or self.manager.should_save(step)):
            return False
        host_state = jax.tree.map(lambda a: np.array(a, copy=True), distributed.to_host(state))
        # A snapshot: an async save serialises `meta` later, while training appends to lists in it.
        meta = json.loads(json.dumps({**meta, "step": step, "format": FORMAT_VERSION}))
        args = ocp.args.Composite(state=ocp.args.StandardSave(host_state), meta=ocp.args.JsonSave(meta))
        self.manager.save(step, args=args, force=True)
        if self.remote:
            self.manager.wait_until_finished()
            self._upload(step)
        return True

    def _upload(self, step: int) -> None:
        local = os.path.join(self.local_dir, str(step))
        target = storage.join(self.uri, str(step))
        storage.remove(target)  # leftovers of an upload that was cut short
        storage.upload_dir(local, target)
        storage.write_text(self._manifest(step), json.dumps(manifest.digests(local)))
        kept = {int(n) for n in os.listdir(self.local_dir) if n.isdigit()}  # LatestN's choice
        for old in set(self.steps()) - kept:
            storage.remove(storage.join(self.uri, str(old)))

    def _manifest(self, step: int | str) -> str:
        return storage.join(self.uri, str(step), MANIFEST)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager (and the remote staging folder)."""
        self.manager.wait_until_finished()
        self.manager.close()
        if self.remote:
            shutil.rmtree(self.local_dir, ignore_errors=True)

    def __enter__(self) -> TrainCheckpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:200]


# -- what a checkpoint must match to be resumed from ----------------------------------------


def state_template(config: Config, n_features: int, n_runs: int) -> Any:
    """A GANState of zeros with the shapes and dtypes training produces (no compute)."""
    shapes = table.state_shapes(config, n_features, n_runs)
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def fingerprint(x: np.ndarray, y: np.ndarray, runs: engine.RunSpec) -> str:
    """SHA-256 of the training data, folds and labelled rows, so a resume cannot mix them."""
    h = hashlib.sha256()
    arrays = (np.asarray(x, np.float32), np.asarray(y, np.int32), runs.train_mask, runs.labeled_mask)
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def check_compatible(meta: dict, config: Config, data_fingerprint: str, uri: str) -> None:
    """Raises IncompatibleCheckpoint if the checkpoint was written by another config or data."""
    try:
        diff = differences(meta.get("config", {}), config.to_dict())
    except ValueError as e:  # a config this gan_jax cannot read is not the same config
        diff = [f"unreadable: {e}"]
    where = f"checkpoint step {meta.get('step')} in {storage.redact(uri)}"
    if diff:
        pairs = ", ".join(diff)
        raise IncompatibleCheckpoint(
            f"{where} was written with another config ({pairs}); resume with "
            "the same config or use another --checkpoint-dir"
        )
    if meta.get("data_fingerprint") != data_fingerprint:
        raise IncompatibleCheckpoint(
            f"{where} was trained on other data, folds or labelled rows; resume "
            "with the same data or use another --checkpoint-dir"
        )
