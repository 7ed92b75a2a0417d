import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from gan_jax.evaluation import evaluate


@pytest.fixture
def predictions():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (6, 50))
    proba = rng.random((6, 50)).round(2)  # rounding creates ties for the AUC
    mask = rng.random((6, 50)) < 0.6
    return y, proba, mask


def test_metrics_match_scikit_learn(predictions):
    y, proba, mask = predictions
    got = evaluate.classification_metrics(y, proba, mask)
    for r in range(len(y)):
        yt, p = y[r][mask[r]], proba[r][mask[r]]
        pred = (p >= 0.5).astype(int)
        tn, fp, fn, tp = skm.confusion_matrix(yt, pred, labels=[0, 1]).ravel()
        expected = {
            "accuracy": skm.accuracy_score(yt, pred),
            "precision": skm.precision_score(yt, pred, zero_division=0),
            "recall": skm.recall_score(yt, pred, zero_division=0),
            "specificity": skm.recall_score(yt, pred, pos_label=0, zero_division=0),
            "f1": skm.f1_score(yt, pred, zero_division=0),
            "roc_auc": skm.roc_auc_score(yt, p),
            "tp": tp,
            "fp": fp,
            "tn": tn,
            "fn": fn,
        }
        for k, v in expected.items():
            assert got[k][r] == pytest.approx(v, abs=1e-6), (k, r)


def test_zero_division_is_zero():
    y = np.array([[0, 0, 0, 1]])
    got = evaluate.classification_metrics(y, np.zeros((1, 4)), np.ones((1, 4), bool))
    assert got["precision"][0] == 0.0 and got["recall"][0] == 0.0 and got["f1"][0] == 0.0


def test_cv_folds_stratified_and_complete():
    y = np.array([0] * 30 + [1] * 13)
    masks = evaluate.cv_folds(y, n_folds=5, n_repeats=3, seed=0)
    assert masks.shape == (15, 43)
    for rep in range(3):
        tests = ~masks[rep * 5 : (rep + 1) * 5]
        np.testing.assert_array_equal(tests.sum(0), 1)  # each row tested once per repeat
        assert all(abs(y[t].mean() - y.mean()) < 0.1 for t in tests)
    np.testing.assert_array_equal(masks, evaluate.cv_folds(y, 5, 3, 0))
    assert not np.array_equal(masks, evaluate.cv_folds(y, 5, 3, 1))


def _logit(p):
    return np.log(p / (1 - p))


def test_summarize_interval_is_the_corrected_t_interval_on_the_logit_scale():
    """Bug caught: a plain 1/n variance (no Nadeau-Bengio correction), an inverted n_test/n_train
    ratio, or an interval built on the raw scale (which left [0, 1])."""
    v = np.array([0.9, 0.95, 0.97, 0.93, 0.99])
    m, sd = v.mean(), v.std(ddof=1)
    for ratio in (0.0, 1 / 9):
        scale = np.sqrt(1 / len(v) + ratio) * sd / (m * (1 - m))  # delta method on logit(m)
        lo, hi = stats.t.interval(0.95, len(v) - 1, loc=_logit(m), scale=scale)
        s = evaluate.summarize(v, test_train_ratio=ratio or None)
        assert (s["ci95_low"], s["ci95_high"]) == pytest.approx(
            (1 / (1 + np.exp(-lo)), 1 / (1 + np.exp(-hi)))
        )
        assert s["mean"] == pytest.approx(m) and s["std"] == pytest.approx(sd)


@pytest.mark.parametrize("values", [[1.0, 1.0, 0.9, 1.0], [0.0, 0.05, 0.0, 0.0, 0.3], [1.0] * 5, [0.5, 1.0]])
def test_summarize_interval_never_leaves_0_1(values):
    """Bug caught: the raw t-interval printed precision [95.37, 100.03] %."""
    s = evaluate.summarize(np.array(values), test_train_ratio=1 / 9)
    assert 0.0 <= s["ci95_low"] <= s["mean"] <= s["ci95_high"] <= 1.0


def _round(v):  # half up, not Python's half to even
    return int(np.floor(v + 0.5))


def test_labeled_masks_stratified_within_training_rows_and_nested():
    """Bugs caught: labelled rows outside the training fold, a class with no label, fractions
    that are not nested (unpaired comparisons), a draw that is not reproducible."""
    y = np.array([0] * 60 + [1] * 40)
    train = evaluate.cv_folds(y, 5, 2, seed=0)
    small = evaluate.labeled_masks(y, train, 0.05, seed=3)
    large = evaluate.labeled_masks(y, train, 0.5, seed=3)
    assert not (small & ~train).any() and not (large & ~train).any()
    for r in range(len(train)):
        n0, n1 = ((train[r] & (y == c)).sum() for c in (0, 1))
        assert small[r][y == 0].sum() == max(1, _round(0.05 * n0)) and small[r][y == 1].sum() == max(
            1, _round(0.05 * n1)
        )
        assert large[r][y == 0].sum() == _round(0.5 * n0) and large[r][y == 1].sum() == _round(0.5 * n1)
    assert not (small & ~large).any()  # nested
    np.testing.assert_array_equal(evaluate.labeled_masks(y, train, 1.0, seed=3), train)
    np.testing.assert_array_equal(small, evaluate.labeled_masks(y, train, 0.05, seed=3))
    assert not np.array_equal(small, evaluate.labeled_masks(y, train, 0.05, seed=4))


def test_roc_auc_rank_form_matches_scikit_learn_on_many_rows():
    """The O(N log N) rank form on 3,000 rows with ties, per run with masks (the pairwise form
    needed an [R, N, N] array)."""
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (3, 3000))
    proba = (rng.random((3, 3000)) * 0.5 + 0.3 * y).round(3)
    mask = rng.random((3, 3000)) < 0.7
    got = evaluate.roc_auc(y, proba, mask)
    for r in range(3):
        assert got[r] == pytest.approx(skm.roc_auc_score(y[r][mask[r]], proba[r][mask[r]]), abs=1e-6)


def test_a_probability_of_exactly_one_half_is_malignant():
    """One documented tie rule for every model: >= 0.5 is malignant."""
    got = evaluate.classification_metrics(np.array([1, 0]), np.array([[0.5, 0.4999]]), np.ones((1, 2), bool))
    assert (got["tp"][0], got["tn"][0]) == (1, 1)


def test_a_non_finite_probability_is_an_error_not_a_metric():
    """Bug caught: NaN scores (label spreading's unreached rows) once gave a ROC-AUC of 101 %."""
    proba = np.array([[0.2, np.nan, 0.9]])
    with pytest.raises(ValueError, match=r"run 0, row 1: the malignant probability is nan"):
        evaluate.classification_metrics(np.array([0, 1, 1]), proba, np.ones((1, 3), bool))
    # ... unless that row is not scored.
    got = evaluate.classification_metrics(np.array([0, 1, 1]), proba, np.array([[True, False, True]]))
    assert got["roc_auc"][0] == 1.0
