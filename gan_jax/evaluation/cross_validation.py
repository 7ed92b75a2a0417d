"""`train_and_evaluate(config, out)`: the one entry point of training (`gan-jax train`).

Cross-validates one config: all (repeat, fold) runs train in one fused call, then every run's
test rows are scored and summarised. The results JSON holds every per-run metric, the config,
the seed, the fold assignment, the labelled rows' hash and the library versions. Checkpointing
(and resume, and a graceful stop on SIGINT/SIGTERM) is an option of the same call.

Data flows one way: this module owns the loss history and the results; the trainer reports
each chunk to it, and it hands states to `checkpoint` to save.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from gan_jax import runtime
from gan_jax.artifacts import storage
from gan_jax.artifacts.records import masks_digest, write_json
from gan_jax.config import Config
from gan_jax.data import Dataset, load_dataset
from gan_jax.evaluation import evaluate
from gan_jax.training import checkpoint, distributed, table
from gan_jax.training import tensorboard as tb


def train_and_evaluate(
    config: Config,
    out: str | None = None,
    *,
    checkpoint_dir: str | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    keep: int = 3,
    data: Dataset | None = None,
    train_masks: np.ndarray | None = None,
    mesh: jax.sharding.Mesh | None = None,
    progress: bool = False,
    log=lambda message: None,
    tensorboard: bool = True,
) -> dict[str, Any]:
    """Runs the repeated stratified k-fold study of `config`; returns (and, with `out`, writes
    to `<out>/results.json`) the results.

    Args:
      checkpoint_dir: save training checkpoints there (any URI) every `checkpoint_every` steps
        (default: every chunk of `config.schedule.log_every` steps) and at the end, keeping `keep`; a
        SIGINT/SIGTERM saves one and raises `runtime.TrainingStopped`.
      resume: continue from the newest readable checkpoint in `checkpoint_dir` (none: start at
        step 0). Without it, a folder that already holds checkpoints is an error, so two
        trainings never mix.
      data, train_masks: the data set already loaded from `config.data.uri`, and folds overriding
        `evaluate.cv_folds` (so several models can share the exact same folds).
      mesh: devices to shard the runs over (default: all).
      log: called with one-line messages (resume point).
      tensorboard: with `out`, also write TensorBoard event files (losses per logged step, per
        run and mean; metrics at the end) to `<out>/tensorboard/`.
    """
    data = data if data is not None else load_dataset(config.data.uri)
    if train_masks is None:
        train_masks = evaluate.cv_folds(data.y, config.cv.n_folds, config.cv.n_repeats, config.cv.seed)
    runs = table.make_runs(config, data.y, train_masks)
    t0 = time.perf_counter()
    if checkpoint_dir is None:
        result = table.train_runs(config, data.x, data.y, runs, mesh=mesh, progress=progress)
        history, start = result.history, 0
    else:
        result, history, start = _train_with_checkpoints(
            config, data, runs, checkpoint_dir, resume, checkpoint_every, keep, mesh, progress, log
        )
    jax.block_until_ready(result.state)
    train_seconds = time.perf_counter() - t0
    proba = table.predict_runs(config, table.model_params(result.state), data.x)
    results = results_record(config, data.y, proba, train_masks, data.source)
    results["labels"] = labels_record(runs.labeled_mask, runs.train_mask)
    results.update(history=history, train_seconds=train_seconds, resumed_from_step=start)
    if out is not None and distributed.is_main_process():  # one writer in a multi-host job
        write_json(storage.join(str(out), "results.json"), results)
        if tensorboard:
            tb.write_results_logs(str(out), results)
    return results


def _train_with_checkpoints(config, data, runs, uri, resume, every, keep, mesh, progress, log):
    """(TrainResult, the whole history, the step training resumed from)."""
    if every is not None and every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {every}")
    meta = {"config": config.to_dict(), "data_fingerprint": checkpoint.fingerprint(data.x, data.y, runs)}
    steps = checkpoint.save_steps(config, every or config.schedule.log_every)
    with checkpoint.TrainCheckpoints(uri, keep=keep, steps=steps) as ckpts:
        state, history = None, []
        if ckpts.steps():
            if not resume:
                raise checkpoint.CheckpointError(
                    f"{storage.redact(uri)} already holds checkpoints (newest: step {ckpts.steps()[0]}); "
                    "pass --resume to continue that training, or use another --checkpoint-dir"
                )
            template = checkpoint.state_template(config, data.x.shape[1], len(runs.train_mask))
            check = lambda m: checkpoint.check_compatible(m, config, meta["data_fingerprint"], uri)
            restored = ckpts.restore_latest(template, check)
            if restored is not None:
                state, saved = restored
                history = list(saved["history"])
                log(f"resuming from step {saved['step']} of {config.total_steps} ({storage.redact(uri)})")
        elif resume:
            log(f"no checkpoint in {storage.redact(uri)}; starting at step 0")
        start = history[-1]["step"] if history else 0
        with runtime.stop_on_signals() as stop:

            def on_chunk(chunk_state, entry: dict) -> None:
                history.append(entry)
                stopping = stop.signum is not None
                ckpts.save(entry["step"], chunk_state, {**meta, "history": history}, force=stopping)
                if stopping:
                    ckpts.wait()
                    raise runtime.TrainingStopped(entry["step"], stop.signum, storage.redact(uri))

            result = table.train_runs(
                config, data.x, data.y, runs, state=state, mesh=mesh, on_chunk=on_chunk, progress=progress
            )
    return result, history, start


def results_record(
    config: Config, y: np.ndarray, proba: np.ndarray, train_masks: np.ndarray, source: str
) -> dict[str, Any]:
    """Per-run and summarised test metrics of models whose malignant probabilities are
    proba [R, N]; run r's test rows are ~train_masks[r]."""
    test_masks = ~np.asarray(train_masks, bool)
    m = evaluate.classification_metrics(y, proba, test_masks)
    ratio = float(test_masks.sum() / train_masks.sum())
    runs = [
        {
            "run": r,
            "repeat": r // config.cv.n_folds,
            "fold": r % config.cv.n_folds,
            "n_test": int(test_masks[r].sum()),
            **{k: _py(v[r]) for k, v in m.items()},
        }
        for r in range(len(test_masks))
    ]
    return {
        "experiment": config.name,
        "config": config.to_dict(),
        "seed": config.cv.seed,
        "data": source,
        "versions": runtime.library_versions(),
        "device": runtime.device_description(),
        "summary": {k: evaluate.summarize(m[k], ratio) for k in evaluate.METRICS},
        "confusion_total": {k: int(m[k].sum()) for k in ("tp", "fp", "tn", "fn")},
        "runs": runs,
        "test_rows": [np.flatnonzero(t).tolist() for t in test_masks],
    }


def labels_record(labeled_masks: np.ndarray, train_masks: np.ndarray) -> dict[str, Any]:
    """How many labels each run's classifier had, and a hash of exactly which rows."""
    n_lab = labeled_masks.sum(1)
    return {
        "labeled_per_run_mean": float(n_lab.mean()),
        "labeled_per_run_min": int(n_lab.min()),
        "train_per_run_mean": float(train_masks.sum(1).mean()),
        "labeled_masks_sha256": masks_digest(labeled_masks),
    }


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def format_summary(results: dict[str, Any]) -> str:
    """A plain-text table: metric, mean ± std, 95 % CI (corrected resampled), in percent."""
    s = results["summary"]
    n = next(iter(s.values()))["n"]
    cv = Config.from_dict(results["config"]).cv  # any readable layout: results from before sections too
    lines = [
        f"{results['experiment']}: {n} runs ({cv.n_repeats} × {cv.n_folds}-fold), data {results['data']}",
        f"{'metric':<12} {'mean ± std (%)':>16}  {'95% CI (%)':>17}",
    ]
    for k in evaluate.METRICS:
        v = s[k]
        lines.append(
            f"{k:<12} {100 * v['mean']:>7.2f} ± {100 * v['std']:<6.2f}  "
            f"[{100 * v['ci95_low']:6.2f}, {100 * v['ci95_high']:6.2f}]"
        )
    return "\n".join(lines)
