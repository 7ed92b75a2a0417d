"""The synthetic-data report over CV runs (verdicts, intervals), the quantile transform of the
synthesiser and the CTGAN/TVAE equal-updates schedule: fast checks with known answers."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import ctgan_bench
from gan_jax import cli
from gan_jax.config import Config, SynthConfig
from gan_jax.data import load_bundled
from gan_jax.evaluation import evaluate
from gan_jax.studies import synth_report, synth_runs
from gan_jax.training import synth as synth_trainer


@pytest.fixture(scope="module")
def wdbc():
    ds = load_bundled()
    return ds.x, ds.y, evaluate.cv_folds(ds.y, 3, 1, seed=0)[:2]  # 2 runs: intervals, and fast


@pytest.fixture(autouse=True)
def one_detection_draw(monkeypatch):
    monkeypatch.setattr(synth_report, "DETECTION_REPEATS", 1)  # keeps each test well under a minute


def test_detection_of_two_draws_of_the_same_real_rows_is_chance(wdbc):
    """Catches a detector that separates rows by anything but their distribution (order, class
    sizes, an in-sample fit): two disjoint random halves of the real rows must score about 0.5."""
    x, _, _ = wdbc
    order = np.random.default_rng(1).permutation(len(x))
    half = len(x) // 2
    auc = synth_report.detection_auc(x[order[:half]], x[order[half : 2 * half]], repeats=3)
    assert abs(auc - 0.5) < 0.1, auc


def test_a_generator_that_copies_training_rows_fails_the_closer_to_train_goal(wdbc):
    """Catches a report whose privacy goal cannot see memorisation: 'synthetic' rows that are the
    training rows must be judged not met on closer-to-train, with the gap, on every run."""
    x, y, masks = wdbc
    n = int(masks.sum(1).max())
    rows = np.stack([np.resize(x[m], (n, x.shape[1])) for m in masks])
    labels = np.stack([np.resize(y[m], n) for m in masks])
    reps = synth_runs.reports_per_run(x, y, masks, rows, labels)
    per_run = synth_runs.per_run_values(reps)
    assert per_run["privacy.closer_to_train_share_balanced"] == [1.0] * len(masks)
    summary = synth_runs.summarize(reps, test_train_ratio=0.5)
    closer = {v["key"]: v for v in synth_runs.verdicts(summary)}["privacy.closer_to_train_share_balanced"]
    assert not closer["met"] and closer["gap"] == pytest.approx(0.4)
    assert "**not met**" in synth_runs.verdict_line(closer) and "gap +0.400" in synth_runs.verdict_line(
        closer
    )


def test_held_out_rows_as_synthetic_meet_the_closer_to_train_goal(wdbc):
    """The other side: rows nearer the held-out set than the training set must meet the goal, so
    a verdict that always says 'not met' fails."""
    x, y, masks = wdbc
    n = int((~masks).sum(1).max())
    rows = np.stack([np.resize(x[~m], (n, x.shape[1])) for m in masks])
    labels = np.stack([np.resize(y[~m], n) for m in masks])
    summary = synth_runs.summarize(synth_runs.reports_per_run(x, y, masks, rows, labels), 0.5)
    closer = {v["key"]: v for v in synth_runs.verdicts(summary)}["privacy.closer_to_train_share_balanced"]
    assert closer["met"] and closer["mean"] < 0.1


def test_verdict_compares_the_mean_and_flags_an_interval_across_the_threshold():
    """Catches an inverted comparison and an interval flag read from the wrong bound."""
    s = lambda m, lo, hi: {"mean": m, "ci95_low": lo, "ci95_high": hi}
    goal = (synth_runs.Goal("x", "x", 0.75),)
    below, across, above = (
        synth_runs.verdicts({"x": v}, goal)[0]
        for v in (s(0.70, 0.65, 0.74), s(0.70, 0.60, 0.80), s(0.80, 0.78, 0.82))
    )
    assert below["met"] and below["interval_within"]
    assert across["met"] and not across["interval_within"]
    assert not above["met"] and above["gap"] == pytest.approx(0.05)


def test_summary_interval_holds_the_mean_of_every_metric(wdbc):
    x, y, masks = wdbc
    n = int(masks.sum(1).max())
    noisy = np.stack([np.resize(x[m], (n, x.shape[1])) * 1.05 for m in masks])
    labels = np.stack([np.resize(y[m], n) for m in masks])
    summary = synth_runs.summarize(synth_runs.reports_per_run(x, y, masks, noisy, labels), 0.5)
    assert {f"{s}.{k}" for s, k in synth_runs.SUMMARY_KEYS} <= set(summary)
    assert "utility.logistic_regression.tstr.f1" in summary
    for key, v in summary.items():
        assert v["n"] == len(masks) and v["ci95_low"] <= v["mean"] <= v["ci95_high"], key


@pytest.mark.parametrize(
    "kind, n_rows, target, batch, want",
    [
        ("ctgan", 455, 4000, 64, (60, 572, 7, 4004)),  # 455 // 60 = 7 updates an epoch
        ("ctgan", 512, 2000, 64, (60, 250, 8, 2000)),
        ("tvae", 455, 4000, 64, (64, 500, 8, 4000)),  # ceil(455 / 64) = 8: the last batch is short
        ("tvae", 513, 2000, 64, (64, 223, 9, 2007)),
        ("ctgan", 30, 100, 64, (60, 100, 1, 100)),  # fewer rows than a batch: one update an epoch
    ],
)
def test_equal_update_schedule(kind, n_rows, target, batch, want):
    """Catches the unequal comparison of issue 22 (CTGAN's batch 500 on ~500 rows is one
    update an epoch): the schedule must reach the target with less than an epoch to spare."""
    got = ctgan_bench.equal_update_schedule(kind, n_rows, target, batch)
    assert tuple(got) == want
    assert got.updates >= target > got.updates - got.updates_per_epoch
    assert got.batch_size % (ctgan_bench.CTGAN_PAC if kind == "ctgan" else 1) == 0


def test_equal_update_schedule_refuses_unknown_generators():
    with pytest.raises(ValueError, match="unknown generator 'gan'"):
        ctgan_bench.equal_update_schedule("gan", 455, 100, 64)


def test_quantile_transform_round_trips_and_matches_sklearn_off_the_ties(wdbc):
    """Catches a wrong normal-score transform: training rows must come back through the inverse,
    and values above each feature's minimum must match sklearn's QuantileTransformer."""
    from sklearn.preprocessing import QuantileTransformer

    x, _, masks = wdbc
    x = x.astype(np.float32)
    config = Config(synth=SynthConfig(model="cgan", quantiles=int(masks[0].sum())))
    t = synth_trainer.fit_synth_transform(config, jnp.asarray(x), jnp.asarray(masks[0]))
    z = np.asarray(synth_trainer.synth_forward(config, t, jnp.asarray(x)))
    back = np.asarray(synth_trainer.synth_inverse(config, t, jnp.asarray(z)))
    train = x[masks[0]]
    span = train.max(0) - train.min(0)
    np.testing.assert_allclose((back[masks[0]] - train) / span, 0.0, atol=1e-4)
    qt = QuantileTransformer(n_quantiles=len(train), output_distribution="normal").fit(train)
    above_min = train > train.min(0)
    diff = np.abs(z[masks[0]][above_min] - qt.transform(train)[above_min])
    assert np.median(diff) < 1e-4 and diff.max() < 0.05  # float32 interpolation at tied values


def test_quantile_transform_never_sees_test_rows(wdbc):
    """Catches quantiles fitted on rows outside the training fold."""
    x, _, masks = wdbc
    config = Config(synth=SynthConfig(model="cgan", quantiles=64))
    x2 = x.copy()
    x2[~masks[0]] = x2[~masks[0]] * 3.0 + 50.0
    a, b = (synth_trainer.fit_synth_transform(config, jnp.asarray(v), jnp.asarray(masks[0])) for v in (x, x2))
    np.testing.assert_array_equal(np.asarray(a.quantiles), np.asarray(b.quantiles))


def test_synth_quantiles_must_be_zero_or_at_least_two():
    with pytest.raises(ValueError, match="quantiles must be 0"):
        SynthConfig(quantiles=1)


def test_synth_report_needs_exactly_one_source(capsys):
    assert cli.main(["synth-report", "--out", "/tmp/none"]) == 2
    assert "exactly one of --synthetic URI or --runs K" in capsys.readouterr().err


def test_run_over_runs_markdown_has_verdicts_and_overfitting_protection(wdbc):
    """The Markdown shows a verdict line per goal and SDMetrics' DCROverfittingProtection,
    read from the record (no retraining: a constructed record)."""
    x, y, masks = wdbc
    n = int(masks.sum(1).max())
    rows = np.stack([np.resize(x[m], (n, x.shape[1])) for m in masks])
    labels = np.stack([np.resize(y[m], n) for m in masks])
    summary = synth_runs.summarize(synth_runs.reports_per_run(x, y, masks, rows, labels), 0.5)
    gen = {"config": Config().to_dict(), "summary": summary, "verdicts": synth_runs.verdicts(summary)}
    rec = {"n_runs": 2, "n_train": 379, "n_holdout": 189, "paired": [], "command": "c"}
    rec["generators"] = {"copier": {**gen, "train_seconds_all_runs_fused": 0.0}}
    md = synth_runs.to_markdown(json.loads(json.dumps(rec)))
    assert md.count("**not met**") == 1 and md.count("**met**") == 1  # copies pass detection
    assert "privacy.dcr_overfitting_protection_balanced" in md
