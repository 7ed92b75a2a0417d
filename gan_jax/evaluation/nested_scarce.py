"""Nested cross-validation when labels are scarce: inner folds choose among the *labelled* rows.

At a labelled fraction, an outer training fold holds a few labelled rows and many unlabelled
ones. A model may choose its settings only with the labels it has, so the inner folds split the
outer fold's labelled rows (stratified; as many folds as `n_inner`, fewer when a class has fewer
labelled rows, never under 2): inner fold i holds out labelled part i for validation and trains
on every other row of the outer fold (its remaining labelled rows with labels, all the
unlabelled rows without). Outer test rows appear nowhere before the final score, and an
unlabelled row's label is read by no training loss and no choice.

The SGAN trains every (structure, setting) × inner fold of every (fraction, outer fold) in one
fused `sweep` call per structure; the scikit-learn baselines are tuned by `GridSearchCV` on
exactly the same folds (`cv=` as index pairs into the outer fold's rows), supervised ones on
the labelled rows only (`LabelledRowsOnly`), semi-supervised ones with the unlabelled rows
marked -1. Every model's scaler is fitted on all of the rows it trains on (unsupervised).
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np
from joblib import Parallel, delayed
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from sklearn.svm import SVC

from gan_jax.config import Config
from gan_jax.evaluation import evaluate, sweep
from gan_jax.evaluation.baselines import UNLABELED
from gan_jax.evaluation.nested import INNER_RUN_ID_OFFSET, choose

SCALERS = {"minmax": MinMaxScaler, "zscore": StandardScaler}


class LabelledRowsOnly(ClassifierMixin, BaseEstimator):
    """A supervised classifier that fits only the rows whose label is not -1, so it can sit in
    a Pipeline whose scaler is fitted on every training row (labelled or not)."""

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, x, y):
        keep = np.asarray(y) != UNLABELED
        self.estimator_ = clone(self.estimator).fit(x[keep], np.asarray(y)[keep])
        self.classes_ = self.estimator_.classes_
        return self

    def decision_function(self, x):
        return self.estimator_.decision_function(x)

    def predict(self, x):
        return self.estimator_.predict(x)


class PriorFilledLabelSpreading(LabelSpreading):
    """Label spreading whose rows unreached by the graph (NaN) get the labelled rows' class
    shares, an uninformative guess, instead of NaN (which no metric can score)."""

    def fit(self, x, y):
        labelled = np.asarray(y)[np.asarray(y) != UNLABELED]
        self.prior_ = np.array([np.mean(labelled == c) for c in (0, 1)])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "invalid value encountered in divide")
            return super().fit(x, y)

    def predict_proba(self, x):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "invalid value encountered in divide")
            proba = super().predict_proba(x)
        return np.where(np.isnan(proba).any(1, keepdims=True), self.prior_, proba)


def _pipe(model, scaler: str = "minmax") -> Pipeline:
    return Pipeline([("scale", SCALERS[scaler]()), ("model", model)])


# name -> (estimator factory of a seed, grid). Scaler objects in a grid are named by `_plain`.
SCARCE_BASELINES: dict[str, tuple[Any, Any]] = {
    "logistic_regression": (
        lambda seed: _pipe(LabelledRowsOnly(LogisticRegression(max_iter=5000))),
        {"scale": ["minmax", "zscore"], "model__estimator__C": [0.01, 0.1, 1.0, 10.0, 100.0]},
    ),
    "svm_rbf": (
        lambda seed: _pipe(LabelledRowsOnly(SVC(kernel="rbf", random_state=seed))),
        {
            "model__estimator__C": [0.1, 1.0, 10.0, 100.0],
            "model__estimator__gamma": ["scale", 0.01, 0.1, 1.0],
        },
    ),
    "label_spreading": (
        lambda seed: _pipe(PriorFilledLabelSpreading(max_iter=1000)),
        [
            {"model__kernel": ["knn"], "model__n_neighbors": [3, 7, 15], "model__alpha": [0.2, 0.5, 0.8]},
            {"model__kernel": ["rbf"], "model__gamma": [0.3, 1.0, 3.0], "model__alpha": [0.2, 0.5, 0.8]},
        ],
    ),
    "self_training": (
        lambda seed: _pipe(SelfTrainingClassifier(LogisticRegression(max_iter=5000))),
        {"model__threshold": [0.6, 0.75, 0.9, 0.99]},
    ),
}


def _sklearn_grid(grid):
    """The grid with scaler names turned into fresh scaler objects (GridSearchCV sets them)."""
    one = lambda g: {k: [SCALERS[v]() for v in vs] if k == "scale" else vs for k, vs in g.items()}
    return [one(g) for g in grid] if isinstance(grid, list) else one(grid)


def labelled_folds(y: np.ndarray, labeled: np.ndarray, n_inner: int, seed: int) -> np.ndarray:
    """Validation masks [k, N] of one outer fold: a stratified k-fold of its labelled rows
    `labeled` [N], k = min(n_inner, labelled rows of the rarer class), drawn from those rows'
    labels only.

    Raises:
      ValueError: fewer than 2 labelled rows in a class (nothing to validate on).
    """
    rows = np.flatnonzero(labeled)
    k = min(n_inner, *(int(np.sum(y[rows] == c)) for c in (0, 1)))
    if k < 2:
        raise ValueError(
            f"{len(rows)} labelled rows with {k} of the rarer class: inner CV needs at least 2 "
            "labelled rows per class (use a larger labelled fraction or fewer outer folds)"
        )
    rng_seed = int(np.random.default_rng([seed, len(rows), int(rows.sum()), 0x5CA]).integers(2**31))
    out = np.zeros((k, len(y)), bool)
    for i, (_, val) in enumerate(
        StratifiedKFold(k, shuffle=True, random_state=rng_seed).split(rows, y[rows])
    ):
        out[i, rows[val]] = True
    return out


class InnerPlan:
    """Every inner fold of every (fraction, outer fold) cell, flattened to M masks."""

    def __init__(self, y, outer_masks, labeled, n_inner: int, seed: int):
        """labeled: [F, O, N] labelled rows of each fraction and outer fold."""
        self.cells, self.val, self.train, self.lab = [], [], [], []
        for f in range(labeled.shape[0]):
            for o, outer in enumerate(outer_masks):
                val = labelled_folds(y, labeled[f, o], n_inner, seed + o)
                for v in val:
                    self.cells.append((f, o))
                    self.val.append(v)
                    self.train.append(outer & ~v)
                    self.lab.append(labeled[f, o] & ~v)
        self.val, self.train, self.lab = map(np.asarray, (self.val, self.train, self.lab))
        self.cells = np.asarray(self.cells)
        self.shape = labeled.shape[:2]

    def folds_per_cell(self) -> np.ndarray:
        """[F, O] number of inner folds of each cell."""
        count = np.zeros(self.shape, int)
        np.add.at(count, (self.cells[:, 0], self.cells[:, 1]), 1)
        return count

    def cell_means(self, scores: np.ndarray) -> np.ndarray:
        """[S, F, O] mean over each cell's inner folds of scores [S, M]."""
        total = np.zeros((len(scores), *self.shape))
        np.add.at(total, (slice(None), self.cells[:, 0], self.cells[:, 1]), scores)
        return total / self.folds_per_cell()


def tune_sgan(
    structures: dict[str, tuple[Config, list[sweep.Setting]]],
    x: np.ndarray,
    y: np.ndarray,
    outer_masks: np.ndarray,
    labeled: np.ndarray,
    plan: InnerPlan,
    select_metrics: tuple[str, ...],
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Nested CV of the SGAN over structures × settings at every fraction, the choice made
    once per selection metric from the same inner runs.

    Args:
      structures: name -> (config of that compiled structure, numeric settings).
      labeled: [F, O, N] labelled rows; plan: its inner folds.
      select_metrics: inner-fold metrics that choose (each gives its own tuned model).
    Returns:
      {"by": {select metric: {"chosen": [F][O] {"structure", "setting", "inner_score"},
       "metrics": {metric: [F, O]}}}, "timing"}.
    """
    names, settings, inner, timing = [], [], {m: [] for m in select_metrics}, {}
    for name, (cfg, sets) in structures.items():
        ids = INNER_RUN_ID_OFFSET + np.arange(len(plan.train))
        runs = sweep.sweep_runs(y, sets, plan.train, ids, labeled_masks=plan.lab)
        metrics, timing[f"inner {name}"] = sweep.train_and_score(
            cfg, x, y, runs, np.tile(plan.val, (len(sets), 1)), len(sets), **train_kwargs
        )
        for m in select_metrics:
            inner[m].append(plan.cell_means(metrics[m]))
        names += [name] * len(sets)
        settings += sets
    scores = {m: np.concatenate(v) for m, v in inner.items()}  # [S, F, O] each
    chosen = {m: choose(v.reshape(len(settings), -1)).reshape(plan.shape) for m, v in scores.items()}
    by = {m: {"metrics": {k: np.zeros(plan.shape) for k in evaluate.METRICS}} for m in select_metrics}
    for name, (cfg, _) in structures.items():  # one outer call per structure, every selection
        cells = [
            (m, f, o)
            for m in select_metrics
            for f, o in np.ndindex(*plan.shape)
            if names[chosen[m][f, o]] == name
        ]
        if not cells:
            continue
        per_cell = [
            sweep.sweep_runs(y, [settings[chosen[m][f, o]]], outer_masks[o : o + 1], [o], labeled[f, o][None])
            for m, f, o in cells
        ]
        runs = jax.tree.map(lambda *a: np.concatenate(a), *per_cell)
        test = np.stack([~outer_masks[o] for _, _, o in cells])
        metrics, timing[f"outer {name}"] = sweep.train_and_score(cfg, x, y, runs, test, 1, **train_kwargs)
        for i, (m, f, o) in enumerate(cells):
            for k in evaluate.METRICS:
                by[m]["metrics"][k][f, o] = metrics[k][0, i]
    for m in select_metrics:
        by[m]["chosen"] = [
            [
                {"structure": names[c], "setting": settings[c], "inner_score": float(scores[m][c, f, o])}
                for o, c in enumerate(row)
            ]
            for f, row in enumerate(chosen[m])
        ]
    return {"by": by, "timing": timing}


def tune_baselines(
    x: np.ndarray,
    y: np.ndarray,
    outer_masks: np.ndarray,
    labeled: np.ndarray,
    plan: InnerPlan,
    select_metrics: tuple[str, ...],
    seed: int,
    names: tuple[str, ...] = tuple(SCARCE_BASELINES),
    n_jobs: int = -1,
) -> dict[str, dict[str, Any]]:
    """Each baseline tuned by GridSearchCV on the SGAN's inner folds (one search scores every
    selection metric), refitted per selection metric on its outer fold's rows (labels of the
    labelled rows only) and scored on the outer test rows.

    Returns:
      {name: {"by": {select metric: {"chosen": [F][O] params, "metrics": {metric: [F, O]}}}}}.
    """
    out = {}
    cells = list(np.ndindex(*plan.shape))
    for name in names:
        if name not in SCARCE_BASELINES:
            raise ValueError(f"unknown baseline {name!r}; expected one of {sorted(SCARCE_BASELINES)}")
        jobs = (
            delayed(_tune_cell)(
                name, x, y, outer_masks[o], labeled[f, o], _cell_val(plan, f, o), select_metrics, seed + o
            )
            for f, o in cells
        )
        fits = Parallel(n_jobs=n_jobs)(jobs)
        test = np.stack([~outer_masks[o] for _, o in cells])
        by = {}
        for m in select_metrics:
            metrics = evaluate.classification_metrics(y, np.stack([fit[m][0] for fit in fits]), test)
            by[m] = {
                "chosen": [
                    [fits[f * plan.shape[1] + o][m][1] for o in range(plan.shape[1])]
                    for f in range(plan.shape[0])
                ],
                "metrics": {k: np.asarray(metrics[k]).reshape(plan.shape) for k in evaluate.METRICS},
            }
        out[name] = {"by": by}
    return out


def _cell_val(plan: InnerPlan, f: int, o: int) -> np.ndarray:
    return plan.val[(plan.cells[:, 0] == f) & (plan.cells[:, 1] == o)]


def _tune_cell(name, x, y, outer_train, labeled, val_masks, select_metrics, seed) -> dict[str, tuple]:
    """{select metric: (malignant probability [N], chosen params)} of baseline `name` on one
    (fraction, outer fold)."""
    rows = np.flatnonzero(outer_train)
    labels = np.where(labeled, y, UNLABELED)[rows]  # no hidden label is passed
    cv = [(np.flatnonzero(~v[rows]), np.flatnonzero(v[rows])) for v in val_masks]
    make, grid = SCARCE_BASELINES[name]
    search = GridSearchCV(
        make(seed), _sklearn_grid(grid), scoring=list(select_metrics), cv=cv, refit=False, n_jobs=1
    )
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "y contains no unlabeled samples")
        search.fit(x[rows], labels)
        for m in select_metrics:
            # The first setting of the best rank: ties go to the earlier setting, as for the SGAN.
            best = int(np.flatnonzero(search.cv_results_[f"rank_test_{m}"] == 1)[0])
            params = search.cv_results_["params"][best]
            model = clone(make(seed)).set_params(**clone(params, safe=False)).fit(x[rows], labels)
            out[m] = (_malignant_proba(model, x), {k: _plain(v) for k, v in params.items()})
    return out


def _malignant_proba(model, x: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(x)[:, list(model.classes_).index(evaluate.MALIGNANT)]
    return expit(model.decision_function(x))  # σ(decision): LR's probability exactly


def _plain(v: Any) -> Any:
    """A chosen parameter as JSON: scaler objects by their name in SCALERS."""
    for name, cls in SCALERS.items():
        if isinstance(v, cls):
            return name
    return v.item() if hasattr(v, "item") else v
