"""The reproduction study (`gan-jax reproduce`): the paper pipeline, its ablations and the
scikit-learn baselines on one shared set of repeated stratified k-fold splits.

Every GAN/AE variant trains all its runs in one fused, sharded call. Everything the study
writes to `out` (JSON, CSV, figures, README.md) comes from this run.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from typing import Any

import numpy as np

from gan_jax.artifacts import records, storage
from gan_jax.artifacts.records import masks_digest, write_json
from gan_jax.config import Config
from gan_jax.data import load_dataset
from gan_jax.evaluation import baselines, evaluate, stats
from gan_jax.studies import figures, label_study, report
from gan_jax.studies.formats import PAPER
from gan_jax.training import table

COMPARED_METRICS = ("accuracy", "f1", "roc_auc")


def run_study(
    variants: dict[str, Config],
    out: str = "results",
    *,
    baseline_names: tuple[str, ...] = (),
    paper_claims: dict[str, float] | None = None,
    label_fractions: tuple[float, ...] = (),
    quick: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Runs every variant and baseline on the same folds, then (with `label_fractions`) the
    label-scarcity study on those folds, and writes everything to `out`.

    Args:
      variants: model name -> config; must hold PAPER, whose data, seed and folds all share.
      baseline_names: scikit-learn baselines (`baselines.make_baseline`).
      paper_claims: the paper's claimed metrics, shown only as its claims.
      label_fractions: labelled shares of each training fold for the label-scarcity study.
      quick: the variants are quick ones (`get_config("quick")`): recorded in the command.
    """
    t_start = time.perf_counter()
    rec = records.run_record()  # the command, commit, versions and device of both studies
    config = variants[PAPER]
    data = load_dataset(config.data.uri)
    masks = evaluate.cv_folds(data.y, config.cv.n_folds, config.cv.n_repeats, config.cv.seed)
    models: dict[str, dict[str, Any]] = {}
    for name, cfg in variants.items():
        t0 = time.perf_counter()
        runs = table.make_runs(cfg, data.y, masks)
        proba = table.fit_predict(cfg, data.x, data.y, runs, progress=progress)[1]
        models[name] = _record("gan_jax", cfg.to_dict(), proba, data.y, masks, time.perf_counter() - t0)
    for name in baseline_names:
        t0 = time.perf_counter()
        proba = baselines.baseline_proba(name, config, data.x, data.y, masks)
        params = baselines.make_baseline(name, config, config.cv.seed).get_params(deep=False)
        models[name] = _record(
            "sklearn", {"steps": repr(params["steps"])}, proba, data.y, masks, time.perf_counter() - t0
        )
    study = {
        "data": data.source,
        "seed": config.cv.seed,
        "n_folds": config.cv.n_folds,
        "n_repeats": config.cv.n_repeats,
        "folds_sha256": masks_digest(masks),
        "test_train_ratio": _ratio(masks),
        "paper_claims": paper_claims or {},
        "models": models,
        "comparisons": stats.compare([{"models": models}], PAPER, COMPARED_METRICS, _ratio(masks)),
        "ci_method": evaluate.CI_METHOD,
        "decision_rule": "malignant if P(malignant) >= 0.5, for every model and baseline",
    }
    if label_fractions:
        labels = label_study.run_label_study(config, data, masks, tuple(label_fractions), progress=progress)
        labels.update(records.finish_record(rec))
        label_study.write_outputs(labels, out)
    study["wall_seconds"] = time.perf_counter() - t_start  # the whole reproduction, both studies
    study["load_average_at_end"] = list(os.getloadavg())  # other jobs on the machine slow it down
    study.update(records.finish_record(rec))
    write_outputs(study, out)
    return study


def _ratio(masks: np.ndarray) -> float:
    return float((~masks).sum() / masks.sum())


def _record(kind, config, proba, y, masks, seconds) -> dict[str, Any]:
    m = evaluate.classification_metrics(y, proba, ~masks)
    ratio = _ratio(masks)
    return {
        "kind": kind,
        "config": config,
        "seconds": seconds,
        "folds_sha256": masks_digest(masks),
        "summary": {k: evaluate.summarize(m[k], ratio) for k in evaluate.METRICS},
        "confusion_total": {k: int(m[k].sum()) for k in ("tp", "fp", "tn", "fn")},
        "runs": {k: np.asarray(v).tolist() for k, v in m.items()},
    }


def load_study(out: str) -> dict[str, Any]:
    uri = f"{str(out).rstrip('/')}/study.json"
    try:
        return json.loads(storage.read_text(uri))
    except json.JSONDecodeError as e:
        raise ValueError(f"{uri}: not a study JSON file ({e})") from None


def write_outputs(study: dict[str, Any], out: str) -> None:
    """study.json, study_runs.csv, Figure 3, the confusion matrix and README.md."""
    out = str(out).rstrip("/")
    write_json(f"{out}/study.json", study)
    storage.write_text(f"{out}/study_runs.csv", _runs_csv(study))
    best = report.best_baseline(study)
    bars = {
        "this pipeline (measured)": study["models"][PAPER]["summary"],
        f"best baseline: {best} (measured)": study["models"][best]["summary"],
        "paper's claim (single split)": {k: {"mean": v} for k, v in study["paper_claims"].items()},
    }
    with storage.open_uri(f"{out}/figure3_metrics.png", "wb") as f:
        figures.figure3_metrics(bars, f)
    with storage.open_uri(f"{out}/confusion_matrix.png", "wb") as f:
        n = study["n_folds"] * study["n_repeats"]
        figures.confusion_matrix_plot(
            study["models"][PAPER]["confusion_total"],
            f,
            f"Paper pipeline: test predictions summed over {n} CV runs",
        )
    storage.write_text(f"{out}/README.md", report.study_markdown(study, out))


def _runs_csv(study: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    keys = list(evaluate.METRICS) + ["tp", "fp", "tn", "fn"]
    writer.writerow(["model", "run", "repeat", "fold", *keys])
    for name, model in study["models"].items():
        for r in range(len(model["runs"]["accuracy"])):
            row = [model["runs"][k][r] for k in keys]
            writer.writerow([name, r, r // study["n_folds"], r % study["n_folds"], *row])
    return buf.getvalue()
