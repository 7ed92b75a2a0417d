import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gan_jax.artifacts import records
from gan_jax.config import load_experiment, load_module
from gan_jax.data import load_bundled
from gan_jax.evaluation import baselines, stats
from gan_jax.evaluation.evaluate import cv_folds
from gan_jax.studies import label_study
from gan_jax.studies.formats import PAPER
from gan_jax.studies.study import run_study

ABLATIONS = load_module("ablations")  # experiments/ablations.py, loaded by path
BASELINES, get_variants = ABLATIONS.BASELINES, ABLATIONS.get_variants


def get_config():
    return load_experiment("paper")


LABEL_FRACTIONS = (0.05, 1.0)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    variants = get_variants(load_experiment("paper", quick=True))
    variants = {k: v for k, v in variants.items() if k in (PAPER, "no GAN (supervised)")}
    run_study(
        variants,
        str(out),
        quick=True,
        baseline_names=("logistic_regression", "svm_rbf"),
        paper_claims=ABLATIONS.PAPER_CLAIMS,
        label_fractions=LABEL_FRACTIONS,
    )
    return out


def test_tiny_study_writes_every_output(study_dir):
    for name in ("study.json", "study_runs.csv", "README.md", "figure3_metrics.png", "confusion_matrix.png"):
        assert (study_dir / name).stat().st_size > 0, name
    assert (study_dir / "figure3_metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    study = json.loads((study_dir / "study.json").read_text())
    assert list(study["models"]) == [PAPER, "no GAN (supervised)", "logistic_regression", "svm_rbf"]
    assert {c["b"] for c in study["comparisons"]} == set(study["models"]) - {PAPER}
    lines = (study_dir / "study_runs.csv").read_text().splitlines()
    assert len(lines) == 1 + 4 * 4  # header + 4 models × 4 runs
    for name in ("study.json", "label_study.json"):  # the run record of both studies
        assert records.missing_record_keys(json.loads((study_dir / name).read_text()), allow_dirty=True) == []


def test_every_model_saw_the_same_folds(study_dir):
    study = json.loads((study_dir / "study.json").read_text())
    digests = {m["folds_sha256"] for m in study["models"].values()}
    assert digests == {study["folds_sha256"]}


def test_readme_reports_measured_numbers_and_labels_the_claim(study_dir):
    study = json.loads((study_dir / "study.json").read_text())
    text = (study_dir / "README.md").read_text()
    acc = study["models"][PAPER]["summary"]["accuracy"]["mean"]
    assert f"{100 * acc:.2f}" in text
    assert "**paper's claim** (single undisclosed split" in text
    assert "2PR/(P+R) = 97.97 %" in text  # computed from the claimed P and R


def test_variants_each_change_one_thing():
    base = get_config()
    variants = get_variants(base)
    assert variants[PAPER] == base
    for name, cfg in variants.items():
        changed = {k for k, v in cfg.to_dict().items() if v != base.to_dict()[k]} - {"name"}
        assert len(changed) == (0 if name == PAPER else 1), (name, changed)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_scaler_is_fitted_inside_the_fold(name):
    ds = load_bundled()
    masks = cv_folds(ds.y, 2, 1, seed=0)[:1]
    x = ds.x.copy()
    leaked = x.copy()
    leaked[~masks[0]] *= 1000.0  # changing test rows must not change predictions on train rows
    cfg = get_config()
    p1 = baselines.baseline_proba(name, cfg, x, ds.y, masks, n_jobs=1)
    p2 = baselines.baseline_proba(name, cfg, leaked, ds.y, masks, n_jobs=1)
    np.testing.assert_allclose(p1[:, masks[0]], p2[:, masks[0]], rtol=1e-9)
    assert p1.shape == (1, 569) and np.all((p1 >= 0) & (p1 <= 1))


def test_corrected_ttest_against_scipy_paired_ttest():
    """Independent reference: the corrected t is scipy's paired t scaled by
    sqrt((1/n) / (1/n + n_test/n_train)) (Nadeau & Bengio 2003). Catches a missing or inverted
    correction."""
    a = np.array([0.95, 0.97, 0.96, 0.94, 0.98])
    b = np.array([0.94, 0.95, 0.96, 0.92, 0.95])
    plain = scipy_stats.ttest_rel(a, b)
    for ratio in (0.25, 1 / 9):
        t = plain.statistic * np.sqrt((1 / 5) / (1 / 5 + ratio))
        got = stats.corrected_resampled_ttest(a, b, ratio)
        assert got["t"] == pytest.approx(t)
        assert got["p"] == pytest.approx(2 * scipy_stats.t.sf(abs(t), 4))
    assert stats.corrected_resampled_ttest(a, a, 0.25)["p"] == 1.0


def test_holm_against_a_worked_example():
    """Holm (1979) step-down on p = (0.01, 0.04, 0.03, 0.005): sorted p × (4, 3, 2, 1), running max."""
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_label_study_uses_the_same_folds_and_labels_for_every_model(study_dir):
    labels = json.loads((study_dir / "label_study.json").read_text())
    study = json.loads((study_dir / "study.json").read_text())
    assert labels["fractions"] == list(LABEL_FRACTIONS) and labels["folds_sha256"] == study["folds_sha256"]
    low, full = labels["per_fraction"]
    assert low["labeled_per_run_mean"] < full["labeled_per_run_mean"] and low["labeled_per_class_min"] >= 1
    assert low["labeled_masks_sha256"] != full["labeled_masks_sha256"]
    expected = set(label_study.model_families(get_config())) | set(baselines.SEMI_SUPERVISED)
    assert set(low["models"]) == expected
    for entry in labels["per_fraction"]:
        for name, model in entry["models"].items():
            for metric, s in model["summary"].items():
                assert 0 <= s["ci95_low"] <= s["mean"] <= s["ci95_high"] <= 1, (
                    entry["fraction"],
                    name,
                    metric,
                )
    assert 0 <= low["models"]["label_spreading (kNN)"]["unreached_test_share"] <= 1
    # Holm: every adjusted p is at least its raw p, and the table's p values are the adjusted ones.
    assert all(c["p_holm"] >= c["p"] for c in labels["comparisons"])
    assert len(labels["comparisons"]) == 2 * 2 * (len(expected) - 1)
    text = (study_dir / "README.md").read_text()
    assert "## Label scarcity" in text and "figure_labels.png" in text
    assert (study_dir / "figure_labels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_label_scarce_baselines_never_see_hidden_labels():
    """Flipping the labels of the unlabelled training rows must not change any baseline's
    predictions (the semi-supervised ones get -1 for those rows)."""
    ds = load_bundled()
    masks = cv_folds(ds.y, 2, 1, seed=0)[:1]
    from gan_jax.evaluation.evaluate import labeled_masks

    lab = labeled_masks(ds.y, masks, 0.1, seed=0)
    flipped = np.where(masks[0] & ~lab[0], 1 - ds.y, ds.y)
    for name in baselines.SEMI_SUPERVISED:
        p1 = baselines.label_scarce_proba(name, get_config(), ds.x, ds.y, masks, lab, n_jobs=1)
        p2 = baselines.label_scarce_proba(name, get_config(), ds.x, flipped, masks, lab, n_jobs=1)
        np.testing.assert_array_equal(p1, p2, err_msg=name)


def test_figures_section_reports_what_the_benchmarks_wrote(study_dir, tmp_path):
    from gan_jax.studies import report

    study = json.loads((study_dir / "study.json").read_text())
    text = (study_dir / "README.md").read_text()
    assert "not run (`latency.json` missing)" in text and "not run (`energy.json` missing)" in text
    windows = [{"t_s": t, "p99_ms": 2.0 + 0.5 * t / 60} for t in (30.0, 90.0, 150.0)]  # +0.5 ms/min
    run = {
        "duration_s": 180.0,
        "req_per_s": 1234.0,
        "p50_ms": 1.5,
        "p99_ms": 2.5,
        "failed": 0,
        "windows": windows,
    }
    (tmp_path / "latency.json").write_text(json.dumps({"runs": {"model": run}}))
    fit = {"fit": {"joules_per_task": 0.25}}
    energy = {"label": "ESTIMATE: test", "tasks": {"training": fit}}
    (tmp_path / "energy.json").write_text(json.dumps(energy))
    text = report.study_markdown(study, str(tmp_path))
    assert "3 min, 1,234 requests/s, p50 1.50 ms, p99 2.50 ms, 0 failed; p99 trend +0.500 ms/min" in text
    assert "training: 0.25 J per task; source **ESTIMATE: test**" in text


def test_unreached_label_spreading_rows_get_the_labelled_prior():
    proba = np.array([[0.9, np.nan, 0.1], [np.nan, 0.4, 0.6]])
    y = np.array([1, 0, 0])
    labeled = np.array([[True, True, False], [True, True, True]])
    filled, unreached = baselines.fill_unreached(proba, y, labeled)
    np.testing.assert_allclose(filled, [[0.9, 0.5, 0.1], [1 / 3, 0.4, 0.6]])
    np.testing.assert_array_equal(unreached, np.isnan(proba))
