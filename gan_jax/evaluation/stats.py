"""Paired comparison of two models evaluated on the same cross-validation runs."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def corrected_resampled_ttest(a: np.ndarray, b: np.ndarray, test_train_ratio: float) -> dict[str, float]:
    """Nadeau & Bengio's (2003) corrected resampled t-test of mean(a - b) = 0.

    Runs of repeated k-fold share training rows, so the plain paired t-test is anti-
    conservative; the correction replaces 1/J by 1/J + n_test/n_train in the variance.
    Returns the mean difference, t, the two-sided p-value and the corrected 95 % CI.
    """
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    n = d.size
    mean, var = float(d.mean()), float(d.var(ddof=1))
    se = math.sqrt((1.0 / n + test_train_ratio) * var)
    if se == 0.0:
        t, p = (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
        half = 0.0
    else:
        t = mean / se
        p = float(2 * stats.t.sf(abs(t), n - 1))
        half = float(stats.t.ppf(0.975, n - 1) * se)
    return {"mean_diff": mean, "t": t, "p": p, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down; controls the family-wise error rate):
    the k-th smallest p is multiplied by (m - k + 1), made monotone and capped at 1."""
    p = np.asarray(p_values, np.float64)
    order = np.argsort(p)
    scaled = np.minimum(1.0, p[order] * (len(p) - np.arange(len(p))))
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()
