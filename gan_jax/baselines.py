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
from sklearn.svm import SVC

from gan_jax.config import Config


def make_baseline(name: str, config: Config, seed: int) -> Pipeline:
    scaler = MinMaxScaler() if config.scaler == "minmax" else StandardScaler()
    models = {
        "logistic_regression": lambda: LogisticRegression(max_iter=5000),
        "svm_rbf": lambda: SVC(kernel="rbf", random_state=seed),
        "random_forest": lambda: RandomForestClassifier(n_estimators=200, random_state=seed),
        "gradient_boosting": lambda: GradientBoostingClassifier(random_state=seed),
        # The same hidden widths as the discriminator-classifier.
        "mlp": lambda: MLPClassifier(config.disc_hidden, max_iter=500, random_state=seed),
    }
    if name not in models:
        raise ValueError(f"unknown baseline {name!r}; expected one of {sorted(models)}")
    return Pipeline([("scale", scaler), ("model", models[name]())])


def _fit_predict(model: Pipeline, x: np.ndarray, y: np.ndarray, train_mask: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[train_mask], y[train_mask])
    if hasattr(model, "predict_proba"):
        return model.predict_proba(x)[:, list(model.classes_).index(1)]
    # SVC has no probabilities without an extra calibration fit; σ(decision) keeps its ranking
    # (so ROC-AUC) and its decisions (σ > 0.5 exactly where SVC.predict says malignant).
    return 1.0 / (1.0 + np.exp(-model.decision_function(x)))


def baseline_proba(
    name: str, config: Config, x: np.ndarray, y: np.ndarray, train_masks: np.ndarray, n_jobs: int = -1
) -> np.ndarray:
    """Malignant probability [R, N] of baseline `name` trained on each run's training rows."""
    jobs = (
        delayed(_fit_predict)(clone(make_baseline(name, config, config.seed + r)), x, y, m)
        for r, m in enumerate(train_masks)
    )
    return np.stack(Parallel(n_jobs=n_jobs)(jobs))
