"""`train_and_evaluate(config, out)`: the importable core of `gan-jax train`.

Cross-validates one config: all (repeat, fold) runs train in one fused call, then every run's
test rows are scored and summarised. The results JSON holds every per-run metric, the config,
the seed, the fold assignment and the library versions.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import jax
import numpy as np

from gan_jax import evaluate, runtime, storage, train
from gan_jax.config import Config
from gan_jax.data import Dataset, load_dataset


def train_and_evaluate(
    config: Config,
    out: str | None = None,
    *,
    progress: bool = False,
    train_masks: np.ndarray | None = None,
    data: Dataset | None = None,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Runs the repeated stratified k-fold study of `config` and returns (and, with `out`,
    writes to `<out>/results.json`) the results. `train_masks` overrides the folds (so several
    models can share the exact same folds) and `data` the data set already loaded from
    `config.data`; extra keyword arguments go to `train.train_runs`."""
    data = data if data is not None else load_dataset(config.data)
    if train_masks is None:
        train_masks = evaluate.cv_folds(data.y, config.n_folds, config.n_repeats, config.seed)
    t0 = time.perf_counter()
    runs = train.make_runs(config, data.y, train_masks)
    result = train.train_runs(config, data.x, data.y, runs, progress=progress, **train_kwargs)
    jax.block_until_ready(result.state)
    train_seconds = time.perf_counter() - t0
    proba = train.predict_runs(config, train.model_params(result.state), data.x)
    results = results_record(config, data.y, proba, train_masks, data.source)
    results["labels"] = labels_record(runs.labeled_mask, runs.train_mask)
    results.update(history=result.history, train_seconds=train_seconds)
    if out is not None:
        write_json(f"{str(out).rstrip('/')}/results.json", results)
    return results


def results_record(
    config: Config, y: np.ndarray, proba: np.ndarray, train_masks: np.ndarray, source: str
) -> dict[str, Any]:
    """Per-run and summarised test metrics of models whose malignant probabilities are
    proba [R, N]; run r's test rows are ~train_masks[r]."""
    test_masks = ~np.asarray(train_masks, bool)
    m = evaluate.classification_metrics(y, proba, test_masks)
    ratio = float(test_masks.sum() / train_masks.sum())
    runs = [
        {"run": r, "repeat": r // config.n_folds, "fold": r % config.n_folds,
         "n_test": int(test_masks[r].sum()), **{k: _py(v[r]) for k, v in m.items()}}
        for r in range(len(test_masks))
    ]  # fmt: skip
    return {
        "experiment": config.name,
        "config": config.to_dict(),
        "seed": config.seed,
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
        "labeled_per_run_mean": float(n_lab.mean()), "labeled_per_run_min": int(n_lab.min()),
        "train_per_run_mean": float(train_masks.sum(1).mean()),
        "labeled_masks_sha256": masks_digest(labeled_masks),
    }  # fmt: skip


def masks_digest(masks: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(np.asarray(masks, bool)).tobytes()).hexdigest()


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def write_json(uri: str, obj: Any) -> None:
    """Writes JSON to any storage URI; local files are replaced atomically."""
    text = json.dumps(obj, indent=1, sort_keys=False)
    storage.write_text(uri, text)


def format_summary(results: dict[str, Any]) -> str:
    """A plain-text table: metric, mean ± std, 95 % CI (corrected resampled), in percent."""
    s = results["summary"]
    n = next(iter(s.values()))["n"]
    lines = [
        f"{results['experiment']}: {n} runs "
        f"({results['config']['n_repeats']} × {results['config']['n_folds']}-fold), "
        f"data {results['data']}",
        f"{'metric':<12} {'mean ± std (%)':>16}  {'95% CI (%)':>17}",
    ]
    for k in evaluate.METRICS:
        v = s[k]
        lines.append(
            f"{k:<12} {100 * v['mean']:>7.2f} ± {100 * v['std']:<6.2f}  "
            f"[{100 * v['ci95_low']:6.2f}, {100 * v['ci95_high']:6.2f}]"
        )
    return "\n".join(lines)
