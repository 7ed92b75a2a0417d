"""Cross-validation folds, metrics for all runs at once (jnp), and summaries across runs.

Positive class = malignant (label 1). Precision, recall (sensitivity), specificity and F1 are
binary metrics of the positive class (scikit-learn's `average="binary"`); a ratio with a zero
denominator is 0, as scikit-learn's `zero_division=0`. ROC-AUC is the Mann-Whitney statistic
(ties count one half), equal to scikit-learn's `roc_auc_score`.

One decision rule for every model, baseline, the server and the batch CLI: a case is malignant
when its malignant probability is >= 0.5 (`decide`). A tie at exactly 0.5 goes to malignant,
the class whose miss costs more in screening; scikit-learn's `predict` breaks such ties the
other way, so baselines are scored from their probabilities through this rule, never `predict`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from sklearn.model_selection import RepeatedStratifiedKFold

METRICS = ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc")
BENIGN, MALIGNANT = 0, 1
DECISION_THRESHOLD = 0.5
CI_METHOD = (
    "95 % interval of the mean over CV runs: Nadeau-Bengio corrected t-interval, built on the "
    "logit scale (delta method) and mapped back, so it stays inside [0, 1]"
)


def decide(proba, threshold: float = DECISION_THRESHOLD):
    """True (malignant) where the malignant probability is >= threshold; works on numpy and jnp."""
    return proba >= threshold


def cv_folds(y: np.ndarray, n_folds: int, n_repeats: int, seed: int) -> np.ndarray:
    """Training masks [n_repeats * n_folds, N] of repeated stratified k-fold; run r is
    (repeat r // n_folds, fold r % n_folds). Its test rows are the complement."""
    splitter = RepeatedStratifiedKFold(n_splits=n_folds, n_repeats=n_repeats, random_state=seed)
    masks = np.zeros((n_folds * n_repeats, len(y)), bool)
    for r, (train_idx, _) in enumerate(splitter.split(np.zeros(len(y)), y)):
        masks[r, train_idx] = True
    return masks


def labeled_masks(
    y: np.ndarray, train_masks: np.ndarray, fraction: float, seed: int, run_ids: np.ndarray | None = None
) -> np.ndarray:
    """Labelled rows [R, N] of each run: per class, round(fraction × the class's training rows),
    at least one, drawn at random from the run's training rows (stratified).

    The draw depends only on (seed, run id), not on `fraction`: each class's training rows are
    put in one random order and the first k kept, so a run's labelled rows at a smaller
    fraction are a subset of those at a larger one and fractions compare paired.
    """
    y, train_masks = np.asarray(y), np.asarray(train_masks, bool)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"labelled fraction must be in (0, 1], got {fraction}")
    run_ids = np.arange(len(train_masks)) if run_ids is None else np.asarray(run_ids)
    out = np.zeros_like(train_masks)
    for r, (run_id, train) in enumerate(zip(run_ids, train_masks)):
        rng = np.random.default_rng([seed, int(run_id), 0x1ABE1])
        for c in np.unique(y[train]):
            rows = rng.permutation(np.flatnonzero(train & (y == c)))
            out[r, rows[: max(1, int(np.floor(fraction * len(rows) + 0.5)))]] = True
    return out


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
    """ROC-AUC over the last axis among rows where `mask`: P(score_pos > score_neg) + ½ P(tie),
    from average ranks (Mann-Whitney U), O(N log N) per run."""
    shape = jnp.broadcast_shapes(jnp.shape(y_true), jnp.shape(scores), jnp.shape(mask))
    flat = lambda a: jnp.broadcast_to(a, shape).reshape(-1, shape[-1])
    auc = jax.vmap(_roc_auc_1d)(flat(y_true).astype(bool), flat(scores), flat(mask).astype(bool))
    return auc.reshape(shape[:-1])


def _roc_auc_1d(positive: jax.Array, scores: jax.Array, mask: jax.Array) -> jax.Array:
    ordered = jnp.sort(jnp.where(mask, scores, jnp.inf))  # rows outside the mask sort last
    below = jnp.searchsorted(ordered, scores, side="left")
    up_to = jnp.searchsorted(ordered, scores, side="right")
    rank = (below + up_to + 1) / 2.0  # 1-based average rank among the masked rows (ties share)
    pos, neg = positive & mask, ~positive & mask
    n_pos, n_neg = jnp.sum(pos), jnp.sum(neg)
    u = jnp.sum(jnp.where(pos, rank, 0.0)) - n_pos * (n_pos + 1) / 2.0
    return _ratio(u, (n_pos * n_neg).astype(jnp.float32))


def classification_metrics(
    y_true: jax.Array, proba: jax.Array, mask: jax.Array, threshold: float = DECISION_THRESHOLD
) -> dict[str, jax.Array]:
    """All metrics for every run at once: y_true [N] or [R, N], proba [R, N] (malignant
    probability), mask [R, N] (test rows). Returns {name: [R]} plus the confusion counts.
    Raises ValueError for a non-finite probability on a masked row: it has no decision."""
    bad = ~np.isfinite(np.asarray(proba)) & np.broadcast_to(np.asarray(mask, bool), np.shape(proba))
    if bad.any():
        r, i = np.argwhere(bad)[0]
        raise ValueError(
            f"run {r}, row {i}: the malignant probability is {np.asarray(proba)[r, i]}, "
            f"not a number in [0, 1] ({int(bad.sum())} such entries)"
        )
    y_true = jnp.broadcast_to(jnp.asarray(y_true), jnp.shape(proba))
    c = confusion_counts(y_true, decide(proba, threshold), mask)
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
    """Mean, std (ddof=1) and a 95 % interval of the mean across runs of a metric in [0, 1].

    CV runs share training rows, so their scores are correlated and the plain t-interval is
    too narrow. With `test_train_ratio` (n_test / n_train), the variance of the mean is
    inflated by Nadeau & Bengio's correction (1/n + n_test/n_train) instead of 1/n. The
    interval is built on the logit scale (delta method: se / (m (1 - m))) and mapped back, so it
    never leaves [0, 1] (a plain t-interval gave precision [95.37, 100.03] %). See CI_METHOD.
    """
    values = np.asarray(values, np.float64)
    n = values.size
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else 0.0
    se = math.sqrt(1.0 / n + (test_train_ratio or 0.0)) * std
    low, high = mean, mean
    if n > 1 and se > 0 and 0.0 < mean < 1.0:
        half = float(stats.t.ppf(0.975, n - 1)) * se / (mean * (1.0 - mean))
        centre = math.log(mean / (1.0 - mean))
        low, high = _expit(centre - half), _expit(centre + half)
    return {"mean": mean, "std": std, "ci95_low": low, "ci95_high": high, "n": n}


def _expit(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))
