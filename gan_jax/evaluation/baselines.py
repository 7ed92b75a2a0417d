"""scikit-learn baselines on the same folds as the GAN runs.

Each baseline is a Pipeline whose scaler is fitted inside the fold (the same scaler kind as
the config). Hyperparameters are scikit-learn's defaults, fixed before the study: nothing is
tuned, so no test fold can leak into a choice.
"""

from __future__ import annotations

import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from sklearn.svm import SVC

from gan_jax.config import Config


def make_baseline(name: str, config: Config, seed: int) -> Pipeline:
    scaler = MinMaxScaler() if config.data.scaler == "minmax" else StandardScaler()
    models = {
        "logistic_regression": lambda: LogisticRegression(max_iter=5000),
        "svm_rbf": lambda: SVC(kernel="rbf", random_state=seed),
        "random_forest": lambda: RandomForestClassifier(n_estimators=200, random_state=seed),
        "gradient_boosting": lambda: GradientBoostingClassifier(random_state=seed),
        # The same hidden widths as the discriminator-classifier.
        "mlp": lambda: MLPClassifier(config.model.disc_hidden, max_iter=500, random_state=seed),
    }
    if name not in models:
        raise ValueError(f"unknown baseline {name!r}; expected one of {sorted(models)}")
    return Pipeline([("scale", scaler), ("model", models[name]())])


def _fit_predict(model: Pipeline, x: np.ndarray, y: np.ndarray, train_mask: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[train_mask], y[train_mask])
    return _malignant_proba(model, x)


def baseline_proba(
    name: str, config: Config, x: np.ndarray, y: np.ndarray, train_masks: np.ndarray, n_jobs: int = -1
) -> np.ndarray:
    """Malignant probability [R, N] of baseline `name` trained on each run's training rows."""
    jobs = (
        delayed(_fit_predict)(clone(make_baseline(name, config, config.cv.seed + r)), x, y, m)
        for r, m in enumerate(train_masks)
    )
    return np.stack(Parallel(n_jobs=n_jobs)(jobs))


# -- label scarcity: labelled rows only, or labelled + unlabelled rows -----------------------

UNLABELED = -1  # scikit-learn's marker of an unlabelled row
SEMI_SUPERVISED = {
    "logistic_regression (labelled rows)": lambda seed: LogisticRegression(max_iter=5000),
    "svm_rbf (labelled rows)": lambda seed: SVC(kernel="rbf", random_state=seed),
    # Both below also read the unlabelled training rows (features only, label -1).
    "self_training (LR)": lambda seed: SelfTrainingClassifier(LogisticRegression(max_iter=5000)),
    "label_spreading (kNN)": lambda seed: LabelSpreading(kernel="knn", n_neighbors=7),
}


def label_scarce_proba(
    name: str,
    config: Config,
    x: np.ndarray,
    y: np.ndarray,
    train_masks: np.ndarray,
    labeled_masks: np.ndarray,
    n_jobs: int = -1,
) -> np.ndarray:
    """Malignant probability [R, N] of `name` (a key of SEMI_SUPERVISED) per run. The scaler is
    fitted on all of the run's training rows (unsupervised, as in our pipeline); a supervised
    model then fits the labelled rows only, a semi-supervised one all training rows with the
    unlabelled rows' labels replaced by -1, so no hidden label is ever passed.

    Label spreading leaves NaN for a row its kNN graph does not connect to any labelled row;
    such rows are returned as NaN, for the caller to fill and count (`fill_unreached`)."""
    if name not in SEMI_SUPERVISED:
        raise ValueError(f"unknown label-scarce baseline {name!r}; expected one of {sorted(SEMI_SUPERVISED)}")
    jobs = (
        delayed(_fit_predict_labels)(name, config, x, y, t, lab, config.cv.seed + r)
        for r, (t, lab) in enumerate(zip(train_masks, labeled_masks))
    )
    return np.stack(Parallel(n_jobs=n_jobs)(jobs))


def _fit_predict_labels(name, config, x, y, train_mask, labeled_mask, seed) -> np.ndarray:
    scaler = MinMaxScaler() if config.data.scaler == "minmax" else StandardScaler()
    xs = scaler.fit(x[train_mask]).transform(x)
    model = SEMI_SUPERVISED[name](seed)
    if isinstance(model, LabelSpreading | SelfTrainingClassifier):
        rows, labels = train_mask, np.where(labeled_mask, y, UNLABELED)[train_mask]
    else:
        rows, labels = labeled_mask, y[labeled_mask]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # At 100 % labels self-training has nothing to add ("no unlabeled samples"), and label
        # spreading divides by zero for unreached rows (NaN, filled by `fill_unreached`).
        warnings.filterwarnings("ignore", "y contains no unlabeled samples")
        warnings.filterwarnings("ignore", "invalid value encountered in divide")
        model.fit(xs[rows], labels)
        return _malignant_proba(model, xs)


def _malignant_proba(model, x: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(x)[:, list(model.classes_).index(1)]
    # SVC has no probabilities without an extra calibration fit; σ(decision) keeps its ranking
    # (so ROC-AUC), and the decision rule (>= 0.5) is applied to it like to every model.
    return 1.0 / (1.0 + np.exp(-model.decision_function(x)))


def fill_unreached(
    proba: np.ndarray, y: np.ndarray, labeled_masks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(proba with every NaN replaced by its run's labelled malignant share — the prior, an
    uninformative guess — and the mask [R, N] of replaced entries)."""
    unreached = np.isnan(proba)
    prior = np.array([np.asarray(y)[lab].mean() for lab in labeled_masks])
    return np.where(unreached, prior[:, None], proba), unreached
