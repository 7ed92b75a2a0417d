"""Cross-validation folds, metrics for all runs at once (jnp), and summaries across runs.

Positive class = malignant (label 1). Precision, recall (sensitivity), specificity and F1 are
binary metrics of the positive class (scikit-learn's `average="binary"`); a ratio with a zero
denominator is 0, as scikit-learn's `zero_division=0`. ROC-AUC is the Mann-Whitney statistic
(ties count one half), equal to scikit-learn's `roc_auc_score`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from sklearn.model_selection import RepeatedStratifiedKFold

METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")


def cv_folds(y: np.ndarray, n_folds: int, n_repeats: int, seed: int) -> np.ndarray:
    """Training masks [n_repeats * n_folds, N] of repeated stratified k-fold; run r is
    (repeat r // n_folds, fold r % n_folds). Its test rows are the complement."""
    splitter = RepeatedStratifiedKFold(n_splits=n_folds, n_repeats=n_repeats, random_state=seed)
    masks = np.zeros((n_folds * n_repeats, len(y)), bool)
    for r, (train_idx, _) in enumerate(splitter.split(np.zeros(len(y)), y)):
        masks[r, train_idx] = True
    return masks


def _ratio(num: jax.Array, den: jax.Array) -> jax.Array:
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1), 0.0)


@jax.jit
def confusion_counts(y_true: jax.Array, y_pred: jax.Array, mask: jax.Array) -> dict[str, jax.Array]:
    """tp, fp, tn, fn [...] over the last axis, counting only rows where `mask`."""
    t, p, m = y_true.astype(bool), y_pred.astype(bool), mask.astype(bool)
    count = lambda a: jnp.sum(a & m, axis=-1)
    return {"tp": count(t & p), "fp": count(~t & p), "tn": count(~t & ~p), "fn": count(t & ~p)}


@jax.jit
def roc_auc(y_true: jax.Array, scores: jax.Array, mask: jax.Array) -> jax.Array:
    """ROC-AUC over the last axis among rows where `mask`: P(score_pos > score_neg) + ½ P(tie)."""
    pos = y_true.astype(bool) & mask.astype(bool)
    neg = ~y_true.astype(bool) & mask.astype(bool)
    diff = scores[..., :, None] - scores[..., None, :]  # [..., N_pos-candidate, N_neg-candidate]
    wins = jnp.where(diff > 0, 1.0, jnp.where(diff == 0, 0.5, 0.0))
    pairs = pos[..., :, None] & neg[..., None, :]
    return _ratio(jnp.sum(wins * pairs, axis=(-2, -1)), jnp.sum(pairs, axis=(-2, -1)))


def classification_metrics(
    y_true: jax.Array, proba: jax.Array, mask: jax.Array, threshold: float = 0.5
) -> dict[str, jax.Array]:
    """All metrics for every run at once: y_true [N] or [R, N], proba [R, N] (malignant
    probability), mask [R, N] (test rows). Returns {name: [R]} plus the confusion counts."""
    y_true = jnp.broadcast_to(jnp.asarray(y_true), jnp.shape(proba))
    c = confusion_counts(y_true, proba >= threshold, mask)
    tp, fp, tn, fn = (c[k].astype(jnp.float32) for k in ("tp", "fp", "tn", "fn"))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    metrics = {
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "precision": precision,
        "recall": recall,
        "specificity": _ratio(tn, tn + fp),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "roc_auc": roc_auc(y_true, proba, mask),
    }
    return {k: np.asarray(v) for k, v in {**metrics, **c}.items()}


def summarize(values: np.ndarray, test_train_ratio: float | None = None) -> dict[str, float]:
    """Mean, std (ddof=1) and a 95 % t-interval across runs.

    CV runs share training rows, so their scores are correlated and the plain t-interval is
    too narrow. With `test_train_ratio` (n_test / n_train), the variance is inflated by
    Nadeau & Bengio's correction (1/n + n_test/n_train) instead of 1/n.
    """
    values = np.asarray(values, np.float64)
    n = values.size
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else 0.0
    factor = 1.0 / n + (test_train_ratio or 0.0)
    half = float(stats.t.ppf(0.975, n - 1) * math.sqrt(factor) * std) if n > 1 else 0.0
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}
