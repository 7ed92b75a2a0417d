"""Training checkpoints under any storage URI, exact resume, and a graceful stop on SIGINT/SIGTERM.

A checkpoint is one Orbax step folder holding the full `TrainState` of every run (params,
optimizer states, scaler, step) plus JSON metadata (config, data fingerprint, loss history).
Nothing else is needed to resume bit for bit: every random draw, including which training rows
a batch takes, is fold_in(run key, global step), and the run keys come from the config's seed.

Local folders are written by Orbax directly (a temporary folder renamed when complete, so a
crash never leaves a half-written step; saves are asynchronous). For s3:// and gs:// Orbax
0.12 cannot build its TensorStore paths here ("Checkpoint path should be absolute. Got
s3:/bucket/..."), so steps are staged in a local temporary folder and uploaded with fsspec;
a step counts as committed only once its manifest (file sizes and SHA-256) is uploaded last.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from gan_jax import storage, train
from gan_jax.config import Config

MANIFEST = "gan_jax_manifest.json"  # remote steps only; uploaded last = the step is committed
FORMAT_VERSION = 2  # 2: state grouped per network (params, optimizer state)


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be resumed from; the message says why and where."""


class IncompatibleCheckpoint(CheckpointError):
    """A readable checkpoint of another config or data set: never skipped or removed."""


class CheckpointWarning(UserWarning):
    """A checkpoint was skipped (partial or corrupt) and an older one used."""


class TrainingStopped(Exception):
    """Training stopped on a signal after saving a checkpoint at `step`."""

    def __init__(self, step: int, signum: int, uri: str):
        self.step, self.signum, self.uri = step, signum, uri
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} at step {step}; checkpoint in {storage.redact(uri)}")


class TrainCheckpoints:
    """The checkpoints of one training in the folder `uri` (local path, s3:// or gs://).

    Args:
      uri: checkpoint folder.
      keep: how many of the newest checkpoints to keep.
      async_save: let Orbax write in a background thread while training continues (local
        folders; remote steps are uploaded synchronously once written).
    """

    def __init__(self, uri: str, *, keep: int = 3, async_save: bool = True):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.uri = storage.check_uri(uri).rstrip("/")
        self.remote = storage.is_remote(self.uri)
        self.keep = keep
        self.async_save = async_save
        self._staging: str | None = None
        self._manager: ocp.CheckpointManager | None = None

    @property
    def local_dir(self) -> str:
        """Where Orbax reads and writes: the folder itself, or for a remote one a local
        staging folder made on first use (listing remote steps needs none)."""
        if not self.remote:
            return os.path.abspath(self.uri)
        if self._staging is None:
            self._staging = tempfile.mkdtemp(prefix="gan_jax_ckpt_")
        return self._staging

    # -- listing and restoring ------------------------------------------------------------

    def steps(self) -> list[int]:
        """Complete steps, newest first (remote: those whose manifest was uploaded)."""
        if self.remote:
            names = storage.listdir(self.uri)
            steps = [int(n) for n in names if n.isdigit() and storage.exists(self._remote_manifest(n))]
        else:
            names = os.listdir(self.local_dir) if os.path.isdir(self.local_dir) else []
            steps = [int(n) for n in names if n.isdigit()]  # Orbax's temporary folders are not
        return sorted(steps, reverse=True)

    def restore_latest(
        self, template: Any, check: Callable[[dict], None] = lambda meta: None
    ) -> tuple[Any, dict] | None:
        """(state, metadata) of the newest readable step, or None if there is none. An
        unreadable newest step (partial upload, truncated or missing file) is removed with a
        CheckpointWarning and the next one tried.

        Args:
          template: a pytree of numpy arrays with the state's structure, shapes and dtypes.
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
        local = os.path.join(self.local_dir, str(step))
        if self.remote:
            shutil.rmtree(local, ignore_errors=True)
            storage.download_dir(storage.join(self.uri, str(step)), local)
            _verify_manifest(local)
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
            meta = dict(ckptr.restore(local, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta)
            if meta.get("step") != step or meta.get("format") != FORMAT_VERSION:
                raise CheckpointError(f"metadata says step {meta.get('step')}, format {meta.get('format')}")
            check(meta)
            restore = ocp.args.Composite(state=ocp.args.StandardRestore(template))
            return ckptr.restore(local, args=restore).state, meta

    def _delete(self, step: int) -> None:
        shutil.rmtree(os.path.join(self.local_dir, str(step)), ignore_errors=True)
        if self.remote:
            storage.remove(storage.join(self.uri, str(step)))

    # -- saving ---------------------------------------------------------------------------

    @property
    def manager(self) -> ocp.CheckpointManager:
        # Created at the first save, after any restore has removed unreadable steps, so its
        # list of steps is the cleaned one.
        if self._manager is None:
            options = ocp.CheckpointManagerOptions(
                max_to_keep=self.keep, create=True, cleanup_tmp_directories=True,
                enable_async_checkpointing=self.async_save and not self.remote,
            )  # fmt: skip
            self._manager = ocp.CheckpointManager(self.local_dir, options=options)
        return self._manager

    def save(self, step: int, state: Any, meta: dict) -> None:
        """Saves `state` (copied to the host first: the trainer donates its buffers to the next
        chunk) with a snapshot of `meta` as step `step`."""
        host_state = jax.tree.map(lambda a: np.array(a, copy=True), state)
        # A snapshot: an async save serialises `meta` later, while training appends to lists
        # in it (a shared history list once made a resumed history repeat entries).
        meta = json.loads(json.dumps({**meta, "step": step, "format": FORMAT_VERSION}))
        args = ocp.args.Composite(state=ocp.args.StandardSave(host_state), meta=ocp.args.JsonSave(meta))
        self.manager.save(step, args=args, force=True)
        if self.remote:
            self.manager.wait_until_finished()
            self._upload(step)

    def _upload(self, step: int) -> None:
        local = os.path.join(self.local_dir, str(step))
        target = storage.join(self.uri, str(step))
        storage.remove(target)  # leftovers of an upload that was cut short
        storage.upload_dir(local, target)
        storage.write_text(self._remote_manifest(step), json.dumps(_manifest(local)))
        for old in self.steps()[self.keep :]:
            storage.remove(storage.join(self.uri, str(old)))

    def _remote_manifest(self, step: int | str) -> str:
        return storage.join(self.uri, str(step), MANIFEST)

    def wait(self) -> None:
        if self._manager is not None:
            self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases the manager (and the remote staging folder)."""
        if self._manager is not None:
            self._manager.wait_until_finished()
            self._manager.close()
            self._manager = None
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    def __enter__(self) -> TrainCheckpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _manifest(local_dir: str) -> dict[str, dict]:
    files = storage._local_files(local_dir)
    return {rel: _file_digest(os.path.join(local_dir, rel)) for rel in files}


def _file_digest(path: str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _verify_manifest(local_dir: str) -> None:
    with open(os.path.join(local_dir, MANIFEST)) as f:
        expected = json.load(f)
    for rel, digest in expected.items():
        path = os.path.join(local_dir, *rel.split("/"))
        if not os.path.exists(path):
            raise CheckpointError(f"file {rel} is missing")
        if _file_digest(path) != digest:
            raise CheckpointError(f"file {rel} does not match its SHA-256")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:200]


# -- graceful stop ------------------------------------------------------------------------


class StopFlag:
    """Set by SIGINT/SIGTERM; the trainer checks it at chunk boundaries."""

    signum: int | None = None


@contextlib.contextmanager
def stop_on_signals(signums=(signal.SIGINT, signal.SIGTERM)) -> Iterator[StopFlag]:
    """While active, the first SIGINT/SIGTERM only sets the returned flag (a jitted chunk
    cannot be interrupted, and the state between chunks is what gets saved); a second one
    stops at once. Outside the main thread, signals cannot be caught and the flag stays unset."""
    flag = StopFlag()

    def handler(signum, frame):
        if flag.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping now")
        flag.signum = signum

    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread
        for s in signums:
            previous[s] = signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# -- resumable training -------------------------------------------------------------------


def state_template(config: Config, x: np.ndarray, train_masks: np.ndarray) -> Any:
    """A TrainState of zeros with the shapes and dtypes training produces (no compute)."""
    shapes = train.state_shapes(config, x.shape[1], len(train_masks))
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)


def fingerprint(x: np.ndarray, y: np.ndarray, train_masks: np.ndarray) -> str:
    """SHA-256 of the training data and folds, so a resume cannot mix data sets."""
    h = hashlib.sha256()
    for a in (np.asarray(x, np.float32), np.asarray(y, np.int32), np.asarray(train_masks, bool)):
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def check_compatible(meta: dict, config: Config, data_fingerprint: str, uri: str) -> None:
    """Raises IncompatibleCheckpoint if the checkpoint was written by another config or data."""
    saved = meta.get("config", {})
    current = json.loads(json.dumps(config.to_dict()))
    diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    where = f"checkpoint step {meta.get('step')} in {storage.redact(uri)}"
    if diff:
        pairs = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in diff)
        raise IncompatibleCheckpoint(f"{where} was written with another config ({pairs}); resume with "
                              "the same config or use another --checkpoint-dir")  # fmt: skip
    if meta.get("data_fingerprint") != data_fingerprint:
        raise IncompatibleCheckpoint(f"{where} was trained on other data or folds; resume with the same "
                              "data or use another --checkpoint-dir")  # fmt: skip


def checkpoint_callback(
    ckpts: TrainCheckpoints,
    config: Config,
    meta: dict,
    history: list[dict],
    every: int,
    stop: StopFlag,
    last_saved: int,
) -> Callable[[Any, dict], None]:
    """The `on_chunk` hook of `train.train_runs`: records the chunk's log entry, saves every
    `every` steps (at the first chunk boundary at or after it), at the end of training and when
    `stop` is set; then raises TrainingStopped if a stop was requested."""
    saved = [last_saved]

    def on_chunk(state: Any, entry: dict) -> None:
        history.append(entry)
        step = entry["step"]
        if step - saved[0] >= every or step >= config.total_steps or stop.signum is not None:
            ckpts.save(step, state, {**meta, "history": history})
            saved[0] = step
        if stop.signum is not None:
            ckpts.wait()
            raise TrainingStopped(step, stop.signum, ckpts.uri)

    return on_chunk


def train_and_evaluate_resumable(
    config: Config,
    out: str | None,
    checkpoint_dir: str,
    *,
    resume: bool = False,
    every: int | None = None,
    keep: int = 3,
    progress: bool = False,
    stop: StopFlag | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """`experiment.train_and_evaluate` with checkpoints in `checkpoint_dir` (any URI).

    Args:
      resume: continue from the newest readable checkpoint there (none: start at step 0).
        Without it, a folder that already holds checkpoints is an error, so two trainings
        never mix.
      every: save every this many steps (default: every chunk of `config.log_every` steps);
        the end of training is always saved.
      stop: a flag from `stop_on_signals`; when set, a checkpoint is saved at the next chunk
        boundary and TrainingStopped raised.
    Returns:
      the results, whose history covers the whole training (also the steps before a resume).
    """
    from gan_jax import evaluate, experiment
    from gan_jax.data import load_dataset

    data = load_dataset(config.data)
    masks = evaluate.cv_folds(data.y, config.n_folds, config.n_repeats, config.seed)
    meta = {"config": config.to_dict(), "data_fingerprint": fingerprint(data.x, data.y, masks)}
    with TrainCheckpoints(checkpoint_dir, keep=keep) as ckpts:
        state, history, start = _resume_point(ckpts, config, data.x, masks, meta, resume, log)
        on_chunk = checkpoint_callback(
            ckpts, config, meta, history, every or config.log_every, stop or StopFlag(), start
        )
        results = experiment.train_and_evaluate(
            config,
            None,
            progress=progress,
            train_masks=masks,
            data=data,
            state=state,
            on_chunk=on_chunk,
        )
    results.update(history=history, resumed_from_step=start)
    if out is not None:
        experiment.write_json(storage.join(out, "results.json"), results)
    return results


def _resume_point(ckpts, config, x, masks, meta, resume, log) -> tuple[Any, list[dict], int]:
    """(state or None, history so far, step) to start training from."""
    steps = ckpts.steps()
    if steps and not resume:
        raise CheckpointError(
            f"{storage.redact(ckpts.uri)} already holds checkpoints (newest: step {steps[0]}); "
            "pass --resume to continue that training, or use another --checkpoint-dir"
        )
    check = lambda m: check_compatible(m, config, meta["data_fingerprint"], ckpts.uri)
    restored = ckpts.restore_latest(state_template(config, x, masks), check) if steps else None
    if restored is None:
        if resume:
            log(f"no checkpoint in {storage.redact(ckpts.uri)}; starting at step 0")
        return None, [], 0
    state, saved = restored
    log(f"resuming from step {saved['step']} of {config.total_steps} ({storage.redact(ckpts.uri)})")
    return state, list(saved["history"]), int(saved["step"])
