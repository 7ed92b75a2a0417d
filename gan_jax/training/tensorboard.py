"""TensorBoard event files for a training: loss curves per logged step and the evaluation
metrics at the end, per run and as the mean over runs.

Layout under `<out>/tensorboard/` (out: a local path, s3:// or gs://), one TensorBoard "run"
per folder, so a chart overlays the runs of one tag:

    mean/      loss/<name> per logged step (mean over runs), eval/<metric> at the last step
    run_000/   loss/<name> and eval/<metric> of run 0 (when per-run values are given)
    ...

    tensorboard --logdir <out>/tensorboard      # s3:// and gs:// logdirs need TensorBoard's
                                                 # cloud extras; or copy the folder first

Written with tensorboardX (numpy and protobuf only; no TensorFlow). The writer only writes
local files, so a remote folder is written to a temporary one and uploaded with
gan_jax.artifacts.storage (the same credentials and endpoints as every other artifact). The folder is
replaced on each call, so a resumed training does not leave the curves of the first attempt
beside the new ones.
"""

from __future__ import annotations

import glob
import os
import shutil
import struct
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gan_jax.artifacts import storage

FOLDER = "tensorboard"
MEAN_RUN = "mean"


PER_RUN = "per_run"  # a history entry's {loss: [R] chunk means per run}, written by train_runs


def run_name(r: int) -> str:
    return f"run_{r:03d}"


def write_training_logs(
    uri: str | os.PathLike,
    history: Sequence[Mapping[str, Any]],
    final_metrics: Mapping[str, float] | None = None,
    per_run_losses: Mapping[str, Any] | None = None,
    per_run_metrics: Mapping[str, Any] | None = None,
) -> str:
    """Writes the event files of one training into `<uri>/tensorboard/` and returns that URI.

    Args:
      uri: the training's output folder (local path, s3:// or gs://).
      history: one entry per logged step, {"step": int, "phase": "ae" | "gan",
        <loss name>: mean over runs, ...}; steps strictly increasing.
      final_metrics: evaluation metrics (mean over runs), {name: value}, written at the last
        step under eval/<name>.
      per_run_losses: {loss name: array [R, n]}, where n is the number of history entries
        holding that loss, in the same order (e.g. "ae" only in the AE phase).
      per_run_metrics: {metric name: array [R]}, written at the last step of run_<r>.
    Raises:
      ValueError: a history entry without an integer step, steps not increasing, a
        non-numeric loss, or per-run arrays whose shape does not match the history.
    """
    curves = _mean_curves(history)
    runs = _per_run_curves(curves, per_run_losses or {})
    run_metrics = _per_run_metrics(per_run_metrics or {}, len(next(iter(runs.values()))) if runs else None)
    last_step = int(history[-1]["step"]) if history else 0
    target = storage.join(uri, FOLDER)
    with tempfile.TemporaryDirectory(prefix="gan_jax_tb_") as tmp:
        _write_run(os.path.join(tmp, MEAN_RUN), curves, final_metrics or {}, last_step)
        n_runs = max([len(v) for v in runs.values()] + [len(v) for v in run_metrics.values()] + [0])
        for r in range(n_runs):
            losses = {
                name: list(zip(curves[name][0], values[r], strict=True)) for name, values in runs.items()
            }
            metrics = {name: values[r] for name, values in run_metrics.items()}
            _write_run(os.path.join(tmp, run_name(r)), losses, metrics, last_step, steps_given=True)
        _publish(tmp, target)
    return target


def write_results_logs(
    uri: str | os.PathLike, results: Mapping[str, Any], per_run_losses: Mapping[str, Any] | None = None
) -> str:
    """`write_training_logs` from a results record of
    `gan_jax.evaluation.cross_validation.train_and_evaluate`:
    its history (with the per-run losses its entries carry under "per_run"), the mean of every
    summarised metric and every run's metrics."""
    final = {name: s["mean"] for name, s in results.get("summary", {}).items()}
    runs = results.get("runs", [])
    per_run = {name: [run[name] for run in runs] for name in final if runs and name in runs[0]}
    history = results["history"]
    if per_run_losses is None and history and all(PER_RUN in e for e in history):
        names = {name for e in history for name in e[PER_RUN]}
        per_run_losses = {n: np.asarray([e[PER_RUN][n] for e in history if n in e[PER_RUN]]).T for n in names}
    return write_training_logs(uri, history, final, per_run_losses, per_run)


# -- validation ---------------------------------------------------------------------------------


def _mean_curves(history: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """{loss name: (steps, values)} from the history, validated."""
    curves: dict[str, tuple[list[int], list[float]]] = {}
    previous = -1
    for i, entry in enumerate(history):
        step = entry.get("step")
        if isinstance(step, bool) or not isinstance(step, int | np.integer):
            raise ValueError(f"history[{i}]: 'step' must be an integer, got {step!r}")
        if step <= previous:
            raise ValueError(f"history[{i}]: step {step} does not follow step {previous}")
        previous = int(step)
        for name, value in entry.items():
            if name in ("step", "phase", PER_RUN):
                continue
            if not isinstance(value, int | float | np.number) or isinstance(value, bool):
                raise ValueError(f"history[{i}][{name!r}]: a loss must be a number, got {value!r}")
            steps, values = curves.setdefault(name, ([], []))
            steps.append(int(step))
            values.append(float(value))
    return curves


def _per_run_curves(curves, per_run_losses: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for name, values in per_run_losses.items():
        if name not in curves:
            raise ValueError(f"per_run_losses[{name!r}]: no history entry logs {name!r}")
        array = np.asarray(values, np.float64)
        n = len(curves[name][0])
        if array.ndim != 2 or array.shape[1] != n:
            raise ValueError(
                f"per_run_losses[{name!r}]: expected shape [R, {n}] (runs × history "
                f"entries with {name!r}), got {list(array.shape)}"
            )
        out[name] = array
    n_runs = {len(a) for a in out.values()}
    if len(n_runs) > 1:
        raise ValueError(f"per_run_losses: every loss needs the same number of runs, got {sorted(n_runs)}")
    return out


def _per_run_metrics(per_run_metrics: Mapping[str, Any], n_runs: int | None) -> dict[str, np.ndarray]:
    out = {}
    for name, values in per_run_metrics.items():
        array = np.asarray(values, np.float64)
        if array.ndim != 1 or (n_runs is not None and len(array) != n_runs):
            want = f"[{n_runs}]" if n_runs is not None else "[R]"
            raise ValueError(f"per_run_metrics[{name!r}]: expected shape {want}, got {list(array.shape)}")
        out[name] = array
    if len({len(a) for a in out.values()}) > 1:
        raise ValueError("per_run_metrics: every metric needs the same number of runs")
    return out


# -- writing ------------------------------------------------------------------------------------


def _write_run(folder: str, curves, metrics: Mapping[str, float], last_step: int, steps_given=False) -> None:
    from tensorboardX import SummaryWriter  # imported on use: a training without logs needs none

    writer = SummaryWriter(logdir=folder, flush_secs=3600)
    try:
        for name, points in curves.items():
            pairs = points if steps_given else zip(*points, strict=True)
            for step, value in pairs:
                writer.add_scalar(f"loss/{name}", float(value), int(step))
        for name, value in metrics.items():
            writer.add_scalar(f"eval/{name}", float(value), last_step)
    finally:
        writer.close()


def _publish(local: str, target: str) -> None:
    """Replaces the folder at `target` (any scheme) with the files under `local`."""
    if storage.is_remote(target):
        storage.remove(target)
        storage.upload_dir(local, target)
        return
    path = target.removeprefix("file://")
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    shutil.copytree(local, path)


# -- reading (tests, and checking a run without TensorBoard) ------------------------------------


def read_scalars(uri: str | os.PathLike) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{run folder: {tag: [(step, value), ...]}} from the event files under `uri` (a
    `<out>/tensorboard` folder, any scheme). Reads the TFRecord framing itself and checks its
    CRCs, so no TensorFlow or TensorBoard is needed."""
    from tensorboardX.proto import event_pb2

    with tempfile.TemporaryDirectory(prefix="gan_jax_tb_read_") as tmp:
        local = os.fspath(uri)
        if storage.is_remote(local):
            storage.download_dir(local, tmp)
            local = tmp
        out: dict[str, dict[str, list[tuple[int, float]]]] = {}
        for path in sorted(glob.glob(os.path.join(local, "**", "events.out.tfevents.*"), recursive=True)):
            run = os.path.relpath(os.path.dirname(path), local).replace(os.sep, "/")
            tags = out.setdefault(run, {})
            for record in _tfrecords(path):
                event = event_pb2.Event.FromString(record)
                for value in event.summary.value:
                    tags.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return out


def _tfrecords(path: str):
    """The records of a TFRecord file: uint64 length, masked CRC32C of it, data, masked CRC32C."""
    from tensorboardX.record_writer import masked_crc32c as _masked_crc

    with open(path, "rb") as f:
        while header := f.read(12):
            if len(header) < 12:
                raise ValueError(f"{path}: truncated record header")
            (length,) = struct.unpack("<Q", header[:8])
            if _masked_crc(header[:8]) != struct.unpack("<I", header[8:])[0]:
                raise ValueError(f"{path}: corrupt record length")
            data, crc = f.read(length), f.read(4)
            if len(data) < length or len(crc) < 4 or _masked_crc(data) != struct.unpack("<I", crc)[0]:
                raise ValueError(f"{path}: truncated or corrupt record")
            yield data
