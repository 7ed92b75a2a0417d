import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from gan_jax import evaluate


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
            "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        }  # fmt: skip
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


def test_summarize_matches_scipy_t_interval():
    v = np.array([0.9, 0.95, 0.97, 0.93])
    s = evaluate.summarize(v)
    lo, hi = stats.t.interval(0.95, 3, loc=v.mean(), scale=stats.sem(v))
    assert (s["ci95_low"], s["ci95_high"]) == pytest.approx((lo, hi))
    corrected = evaluate.summarize(v, test_train_ratio=1 / 9)
    assert corrected["ci95_high"] - corrected["mean"] > s["ci95_high"] - s["mean"]
