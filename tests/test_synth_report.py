"""Fidelity, utility and privacy metrics on constructed cases with known answers, and a
cross-check against SDMetrics where it has the metric (optional dependency)."""

import numpy as np
import pytest

from gan_jax.config import Config, MLPConfig, ScheduleConfig
from gan_jax.data import load_bundled
from gan_jax.evaluation import evaluate
from gan_jax.studies import synth_report


@pytest.fixture(scope="module")
def split():
    """(train x, train y, holdout x, holdout y, other x, other y): one 5-fold split of WDBC, and
    a third part of real rows that is in neither (a stand-in for a perfect generator)."""
    ds = load_bundled()
    masks = evaluate.cv_folds(ds.y, 3, 1, seed=0)
    tr, ho = masks[0] & masks[1], ~masks[0]
    other = ~masks[1]
    return ds.x[tr], ds.y[tr], ds.x[ho], ds.y[ho], ds.x[other], ds.y[other]


def test_identical_data_scores_perfect_fidelity(split):
    _, _, xh, _, _, _ = split
    assert synth_report.ks_complement(xh, xh) == pytest.approx(np.ones(30))
    assert synth_report.correlation_similarity(xh, xh) == pytest.approx(1.0)


def test_detection_is_near_chance_for_real_rows_and_high_for_shifted_rows(split):
    """Catches a detection AUC that is not cross-validated (it would separate anything) or
    inverted (shifted data would score low)."""
    _, _, xh, _, xo, _ = split
    assert abs(synth_report.detection_auc(xh, xo) - 0.5) < 0.12
    assert synth_report.detection_auc(xh, xh * 1.3) > 0.9


def test_shifted_data_has_low_fidelity(split):
    _, _, xh, _, _, _ = split
    shifted = synth_report.fidelity(xh, xh * 1.5 + 1.0)
    assert shifted["ks_complement_mean"] < 0.6
    decorrelated = np.random.default_rng(0).permuted(xh, axis=0)  # each column shuffled apart
    assert synth_report.correlation_similarity(xh, decorrelated) < 0.8


def test_copied_training_rows_are_flagged_by_every_privacy_metric(split):
    """Catches a privacy report that cannot see a generator that memorised its training rows."""
    xt, _, xh, _, _, _ = split
    p = synth_report.privacy(xt, xh, xt.copy())
    assert p["dcr_to_train_median"] == 0.0 and p["exact_copy_share"] == 1.0
    assert p["near_copy_share"] == 1.0 and p["closer_to_train_share"] == 1.0
    assert p["membership_inference_auc"] > 0.99


def test_fresh_real_rows_are_not_flagged(split):
    """Real rows from neither part (what an ideal generator would make): no copies, and the
    membership-inference attack is near chance."""
    xt, _, xh, _, xo, _ = split
    p = synth_report.privacy(xt, xh, xo)
    assert p["exact_copy_share"] == 0.0
    assert p["near_copy_share"] < 0.15
    assert abs(p["membership_inference_auc"] - 0.5) < 0.1


def test_tstr_equals_trtr_when_the_synthetic_rows_are_the_training_rows(split):
    xt, yt, xh, yh, _, _ = split
    u = synth_report.utility(xt, yt, xh, yh, xt, yt, our_classifier=False)["logistic_regression"]
    assert u["tstr"] == u["trtr"]
    assert u["trtr"]["accuracy"] > 0.9


def test_tstr_collapses_when_synthetic_labels_are_swapped(split):
    """Catches a utility score that ignores the synthetic labels (or swaps classes itself)."""
    xt, yt, xh, yh, _, _ = split
    u = synth_report.utility(xt, yt, xh, yh, xt, 1 - yt, our_classifier=False)["logistic_regression"]
    assert u["tstr"]["accuracy"] < 0.2 and u["tstr"]["roc_auc"] < 0.2


def test_our_classifier_utility_runs_trtr_and_tstr_on_the_holdout(split):
    xt, yt, xh, yh, _, _ = split
    """Catches TSTR and TRTR trained on the same rows (or scored on training rows): with the
    synthetic labels swapped, TRTR must be good and TSTR inverted. Measured: ROC-AUC 0.98 / 0.02."""
    small = Config(
        model=MLPConfig(use_autoencoder=False, use_gan=False, disc_hidden=(16,)),
        schedule=ScheduleConfig(gan_steps=200, batch_size=64, log_every=200, d_lr=1e-2),
    )
    u = synth_report.utility(xt, yt, xh, yh, xt, 1 - yt, classifier_config=small)["ours (AE → SGAN)"]
    assert u["trtr"]["roc_auc"] > 0.9
    assert u["tstr"]["roc_auc"] < 0.1


def test_markdown_numbers_come_from_the_report(split):
    xt, yt, xh, yh, xo, yo = split
    rep = synth_report.report(xt, yt, xh, yh, xo, yo, our_classifier=False)
    md = synth_report.to_markdown(rep)
    assert f"{rep['fidelity']['ks_complement_mean']:.3f}" in md
    assert f"{rep['privacy']['membership_inference_auc']:.3f}" in md


# --- cross-check against SDMetrics (optional: pip install sdmetrics) ---


def _frames(*arrays):
    pd = pytest.importorskip("pandas")
    return [pd.DataFrame(a, columns=[f"f{j}" for j in range(a.shape[1])]) for a in arrays]


def test_ks_complement_matches_sdmetrics(split):
    sdm = pytest.importorskip("sdmetrics.single_column")
    _, _, xh, _, xo, _ = split
    ours = synth_report.ks_complement(xh, xo * 1.1)
    theirs = [sdm.KSComplement.compute(xh[:, j], xo[:, j] * 1.1) for j in range(30)]
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_correlation_similarity_matches_sdmetrics(split):
    sdm = pytest.importorskip("sdmetrics.column_pairs")
    _, _, xh, _, xo, _ = split
    cols = [0, 3, 7, 21]
    real, syn = _frames(xh[:, cols], xo[:, cols])
    pairs = [(a, b) for i, a in enumerate(real.columns) for b in real.columns[i + 1 :]]
    theirs = np.mean([sdm.CorrelationSimilarity.compute(real[[a, b]], syn[[a, b]]) for a, b in pairs])
    assert synth_report.correlation_similarity(xh[:, cols], xo[:, cols]) == pytest.approx(theirs, abs=1e-9)


def test_dcr_and_overfitting_protection_match_sdmetrics(split):
    privacy = pytest.importorskip("sdmetrics.single_table.privacy")
    from sdmetrics.single_table.privacy.dcr_utils import calculate_dcr

    xt, _, xh, _, xo, _ = split
    syn = np.concatenate([xo[:40], xt[:20]])  # some fresh rows, some copies
    train, hold, synthetic = _frames(xt[:, :6], xh[:, :6], syn[:, :6])
    metadata = {"columns": {c: {"sdtype": "numerical"} for c in train.columns}}
    theirs = calculate_dcr(synthetic, train, metadata).to_numpy()
    np.testing.assert_allclose(synth_report.dcr(syn[:, :6], xt[:, :6]), theirs, atol=1e-9)
    score = privacy.DCROverfittingProtection.compute(train, synthetic, hold, metadata, None)
    assert synth_report.privacy(xt[:, :6], xh[:, :6], syn[:, :6])[
        "dcr_overfitting_protection"
    ] == pytest.approx(score)


def test_match_prior_keeps_the_class_shares():
    """Catches whole-table fidelity computed on a class-balanced file against 63 % benign rows."""
    y = np.r_[np.zeros(500, int), np.ones(500, int)]
    x = np.arange(1000, dtype=float)[:, None]
    xm, ym = synth_report.match_prior(x, y, np.array([0.625, 0.375]))
    assert len(ym) == 800 and ym.sum() == 300
    assert set(xm[:, 0]) <= set(x[:, 0])
