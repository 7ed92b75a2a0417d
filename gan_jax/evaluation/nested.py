"""Nested cross-validation: inner folds choose the hyperparameters, outer folds measure them.

For every outer training fold, its rows alone are split into `n_inner` stratified inner folds.
Phase 1 trains every setting on every inner fold of every outer fold in ONE fused call
(settings × outer folds × inner folds runs) and scores each on its inner validation rows,
which are outer *training* rows. Per outer fold, the setting with the best mean inner score
is chosen. Phase 2 trains each outer fold with its own chosen setting, again in one call,
and scores it on the outer test rows, touched here for the first time.

No choice can see an outer test row: the inner folds are drawn from the outer training rows'
indices and labels only, the inner runs train and validate on those rows only, and the
trainer never reads a row outside a run's mask. `tests/test_nested.py` checks it end to end.

The baselines are tuned the same way with scikit-learn's own `GridSearchCV`, given exactly the
same inner folds (`cv=` as index pairs) and the same selection metric.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from gan_jax.config import Config
from gan_jax.evaluation import baselines, evaluate, sweep

# Metrics both our selection and scikit-learn's `scoring=` name the same way.
SELECT_METRICS = ("roc_auc", "accuracy", "f1")
# Run ids of inner runs start here, so no inner run shares a key stream with an outer run.
INNER_RUN_ID_OFFSET = 1 << 20
BASELINE_GRIDS: dict[str, dict[str, list]] = {
    "logistic_regression": {"model__C": [0.01, 0.1, 1.0, 10.0, 100.0]},
    "svm_rbf": {"model__C": [0.1, 1.0, 10.0, 100.0], "model__gamma": ["scale", 0.01, 0.1, 1.0]},
}


def inner_folds(y: np.ndarray, outer_train_masks: np.ndarray, n_inner: int, seed: int) -> np.ndarray:
    """Inner training masks [O, n_inner, N]: stratified k-fold of each outer training fold's
    rows, drawn from those rows' labels only (inner validation = outer train & ~inner train).

    Raises:
      ValueError: n_inner < 2.
    """
    if n_inner < 2:
        raise ValueError(f"nested CV needs at least 2 inner folds, got {n_inner}")
    y = np.asarray(y)
    outer_train_masks = np.asarray(outer_train_masks, bool)
    out = np.zeros((len(outer_train_masks), n_inner, len(y)), bool)
    for o, mask in enumerate(outer_train_masks):
        rows = np.flatnonzero(mask)
        rng_seed = int(np.random.default_rng([seed, o, 0x1EE]).integers(2**31))
        splitter = StratifiedKFold(n_inner, shuffle=True, random_state=rng_seed)
        for i, (train_pos, _) in enumerate(splitter.split(np.zeros(len(rows)), y[rows])):
            out[o, i, rows[train_pos]] = True
    return out


def choose(inner_scores: np.ndarray) -> np.ndarray:
    """Index [O] of the best setting per outer fold from mean inner scores [S, O]; a tie goes to
    the earlier setting, so the choice is deterministic."""
    return np.argmax(inner_scores, axis=0)


def nested_cv(
    config: Config,
    x: np.ndarray,
    y: np.ndarray,
    settings: list[sweep.Setting],
    outer_masks: np.ndarray,
    n_inner: int,
    select_metric: str = "roc_auc",
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Nested CV of the SGAN pipeline over `settings`.

    Args:
      outer_masks: [O, N] outer training masks (outer test rows = the complement).
      n_inner: inner folds per outer training fold.
      select_metric: one of SELECT_METRICS, averaged over the inner folds.
      train_kwargs: passed to `table.train_runs` (mesh, progress).
    Returns:
      {"chosen": per outer fold, "inner_scores": [S][O], "outer_summary": {metric: CI},
       "outer_runs": per-run metrics, "timing"}.
    """
    if select_metric not in SELECT_METRICS:
        raise ValueError(f"select_metric must be one of {SELECT_METRICS}, got {select_metric!r}")
    outer_masks = np.asarray(outer_masks, bool)
    n_outer, n_set = len(outer_masks), len(settings)
    inner = inner_folds(y, outer_masks, n_inner, config.cv.seed)
    inner_train = inner.reshape(n_outer * n_inner, -1)
    inner_val = (outer_masks[:, None, :] & ~inner).reshape(n_outer * n_inner, -1)
    runs = sweep.sweep_runs(y, settings, inner_train, INNER_RUN_ID_OFFSET + np.arange(len(inner_train)))
    inner_metrics, inner_timing = sweep.train_and_score(
        config, x, y, runs, np.tile(inner_val, (n_set, 1)), n_set, **train_kwargs
    )
    scores = inner_metrics[select_metric].reshape(n_set, n_outer, n_inner).mean(-1)  # [S, O]
    chosen = choose(scores)
    outer_runs = _outer_runs(y, settings, chosen, outer_masks)
    outer_metrics, outer_timing = sweep.train_and_score(
        config, x, y, outer_runs, ~outer_masks, 1, **train_kwargs
    )
    per_run = {k: v[0] for k, v in outer_metrics.items()}  # [O]
    return {
        "select_metric": select_metric,
        "n_outer": n_outer,
        "n_inner": n_inner,
        "inner_scores": scores.tolist(),
        "chosen": [
            {
                "outer_run": o,
                "setting_index": int(c),
                "setting": settings[c],
                "inner_score": float(scores[c, o]),
            }
            for o, c in enumerate(chosen)
        ],
        "outer_summary": _summary(per_run, outer_masks),
        "outer_runs": [{"run": o, **{k: _py(v[o]) for k, v in per_run.items()}} for o in range(n_outer)],
        "timing": {"inner": inner_timing, "outer": outer_timing},
    }


def _outer_runs(y, settings, chosen: np.ndarray, outer_masks: np.ndarray):
    """One run per outer fold o, with setting chosen[o] and run id o."""
    import jax

    per_fold = [
        sweep.sweep_runs(y, [settings[c]], outer_masks[o : o + 1], np.asarray([o]))
        for o, c in enumerate(chosen)
    ]
    return jax.tree.map(lambda *a: np.concatenate(a), *per_fold)


def _summary(per_run: dict[str, np.ndarray], outer_masks: np.ndarray) -> dict[str, dict]:
    ratio = float((~outer_masks).sum() / outer_masks.sum())
    return {k: evaluate.summarize(per_run[k], ratio) for k in evaluate.METRICS}


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def tuned_baselines(
    config: Config,
    x: np.ndarray,
    y: np.ndarray,
    outer_masks: np.ndarray,
    n_inner: int,
    select_metric: str = "roc_auc",
    names: tuple[str, ...] = tuple(BASELINE_GRIDS),
    n_jobs: int = -1,
) -> dict[str, Any]:
    """Baselines tuned by `GridSearchCV` on exactly the inner folds `nested_cv` uses (same
    seed), refitted on each outer training fold and scored on its outer test rows through
    `evaluate`'s decision rule.

    Returns:
      {name: {"grid", "chosen": [params per outer fold], "outer_summary", "outer_runs"}}.
    """
    outer_masks = np.asarray(outer_masks, bool)
    inner = inner_folds(y, outer_masks, n_inner, config.cv.seed)
    out = {}
    for name in names:
        if name not in BASELINE_GRIDS:
            raise ValueError(f"no tuning grid for baseline {name!r}; known: {sorted(BASELINE_GRIDS)}")
        jobs = (
            delayed(_tune_one)(name, config, x, y, outer_masks[o], inner[o], select_metric, o)
            for o in range(len(outer_masks))
        )
        fits = Parallel(n_jobs=n_jobs)(jobs)
        proba = np.stack([p for p, _ in fits])
        m = evaluate.classification_metrics(y, proba, ~outer_masks)
        out[name] = {
            "grid": BASELINE_GRIDS[name],
            "chosen": [params for _, params in fits],
            "outer_summary": _summary(m, outer_masks),
            "outer_runs": [
                {"run": o, **{k: _py(m[k][o]) for k in evaluate.METRICS}} for o in range(len(fits))
            ],
        }
    return out


def _tune_one(name, config, x, y, outer_train, inner, select_metric, o) -> tuple[np.ndarray, dict]:
    """(malignant probability [N], chosen params) of baseline `name` tuned on one outer fold."""
    rows = np.flatnonzero(outer_train)
    # GridSearchCV indexes into x[rows]: the inner folds as positions within the outer fold.
    cv = [(np.flatnonzero(m[rows]), np.flatnonzero(~m[rows])) for m in inner]
    search = GridSearchCV(
        baselines.make_baseline(name, config, config.cv.seed + o),
        BASELINE_GRIDS[name],
        scoring=select_metric,
        cv=cv,
        refit=True,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(x[rows], y[rows])
    model = search.best_estimator_
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(x)[:, list(model.classes_).index(evaluate.MALIGNANT)]
    else:  # SVC: σ(decision) keeps its ranking and its decisions (as in gan_jax.evaluation.baselines)
        proba = 1.0 / (1.0 + np.exp(-model.decision_function(x)))
    return proba, {k: _py(v) for k, v in search.best_params_.items()}
