"""Paired comparison of models evaluated on the same cross-validation runs, and the
multiple-comparison correction every study applies to its family of tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

ALPHA = 0.05  # significance level of every study's tests (after Holm's correction where applied)


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


def compare(
    entries: Sequence[dict[str, Any]],
    reference: str,
    metrics: Sequence[str],
    test_train_ratio: float,
    *,
    group: str | None = None,
    adjust: bool = False,
) -> list[dict[str, Any]]:
    """`reference` against every other model of each entry, paired over the same runs
    (`corrected_resampled_ttest` of reference − other).

    Args:
      entries: each holds `"models"`: {name: {"runs": {metric: per-run values}}}, the models of
        one comparison family member (one study, or one labelled fraction of it).
      reference: the model every other one is compared with; each entry must hold it.
      metrics: the metrics compared, in row order.
      test_train_ratio: n_test / n_train of the runs (the t-test's correction).
      group: a key of the entries copied into their rows (e.g. "fraction"); None for none.
      adjust: add `p_holm`, Holm-adjusted over all rows (the whole family of tests).

    Returns:
      One row per (entry, other model, metric): {group: ..., "a": reference, "b": other,
      "metric": metric, "mean_diff", "t", "p", "ci95_low", "ci95_high", "n"[, "p_holm"]}.
    """
    rows = []
    for entry in entries:
        models = entry["models"]
        if reference not in models:
            raise KeyError(f"compare: reference model {reference!r} is not among {sorted(models)}")
        ours = models[reference]["runs"]
        for name, model in models.items():
            if name == reference:
                continue
            for metric in metrics:
                test = corrected_resampled_ttest(ours[metric], model["runs"][metric], test_train_ratio)
                head = {group: entry[group]} if group is not None else {}
                rows.append({**head, "a": reference, "b": name, "metric": metric, **test})
    if adjust:
        for row, adjusted in zip(rows, holm([r["p"] for r in rows])):
            row["p_holm"] = adjusted
    return rows
