"""The one paired comparison (stats.compare) every study uses: rows, grouping and Holm."""

import numpy as np
import pytest

from gan_jax.evaluation import stats
from gan_jax.studies.formats import pct


def _model(acc, auc):
    return {"runs": {"accuracy": np.asarray(acc), "roc_auc": np.asarray(auc)}}


ENTRIES = [
    {
        "fraction": 0.1,
        "models": {
            "ours": _model([0.9, 0.8, 0.85], [0.95, 0.9, 0.9]),
            "lr": _model([0.7, 0.72, 0.71], [0.8, 0.8, 0.81]),
        },
    },
    {
        "fraction": 1.0,
        "models": {
            "ours": _model([0.95, 0.9, 0.93], [0.99, 0.97, 0.98]),
            "lr": _model([0.94, 0.9, 0.92], [0.97, 0.97, 0.96]),
        },
    },
]


def test_each_other_model_is_tested_against_the_reference_in_order():
    rows = stats.compare(ENTRIES, "ours", ("accuracy", "roc_auc"), 0.25, group="fraction")
    assert [(r["fraction"], r["a"], r["b"], r["metric"]) for r in rows] == [
        (0.1, "ours", "lr", "accuracy"),
        (0.1, "ours", "lr", "roc_auc"),
        (1.0, "ours", "lr", "accuracy"),
        (1.0, "ours", "lr", "roc_auc"),
    ]
    want = stats.corrected_resampled_ttest([0.9, 0.8, 0.85], [0.7, 0.72, 0.71], 0.25)
    assert rows[0]["mean_diff"] == pytest.approx(0.14) and rows[0]["p"] == want["p"]
    assert "p_holm" not in rows[0]


def test_holm_is_applied_over_the_whole_family_when_asked():
    rows = stats.compare(ENTRIES, "ours", ("accuracy", "roc_auc"), 0.25, group="fraction", adjust=True)
    assert [r["p_holm"] for r in rows] == pytest.approx(stats.holm([r["p"] for r in rows]))
    assert all(r["p_holm"] >= r["p"] for r in rows)


def test_without_a_group_rows_carry_no_group_key():
    rows = stats.compare(ENTRIES[:1], "ours", ("accuracy",), 0.25)
    assert set(rows[0]) == {"a", "b", "metric", "mean_diff", "t", "p", "ci95_low", "ci95_high", "n"}


def test_a_missing_reference_model_is_named():
    with pytest.raises(KeyError, match="reference model 'paper' is not among"):
        stats.compare(ENTRIES, "paper", ("accuracy",), 0.25)


def test_percentages_are_written_with_the_digits_asked():
    assert pct(0.96924, 2) == "96.92" and pct(0.96924) == "96.9"
