import dataclasses
import json

import jax
import numpy as np
import pytest

from gan_jax.config import Config, CVConfig, MLPConfig, ScheduleConfig
from gan_jax.data import load_bundled
from gan_jax.evaluation import evaluate, nested_scarce
from gan_jax.studies import tuned_study
from gan_jax.training import table

QUICK = tuned_study.load_study("tuned", quick=True)


def _perturb_outer_test_rows(ds, outer, o=0):
    """The data with noise features and flipped labels on outer fold o's test rows."""
    test = ~outer[o]
    x, y = ds.x.copy(), ds.y.copy()
    x[test] = np.random.default_rng(1).normal(0, 1e3, x[test].shape).astype(x.dtype)
    y[test] = 1 - y[test]
    return dataclasses.replace(ds, x=x, y=y)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """The quick study through its command (record and files), and the same study on data whose
    outer fold 0 test rows are noise with flipped labels."""
    from benchmarks import tuned_study as command

    out = tmp_path_factory.mktemp("tuned")
    record = command.main(["--quick", "--out", str(out), "--no-progress"])
    ds = load_bundled()
    outer = evaluate.cv_folds(ds.y, QUICK.n_folds, QUICK.n_repeats, QUICK.base.cv.seed)
    perturbed = tuned_study.run_tuned_study(QUICK, _perturb_outer_test_rows(ds, outer), outer)
    return record, perturbed, out


def test_inner_folds_split_the_labelled_rows_of_the_outer_training_fold_only():
    """Bugs caught: inner validation rows drawn from outer test rows, or from unlabelled rows
    (a choice made with labels the model does not have), or inner training on its own
    validation rows."""
    ds = load_bundled()
    outer = evaluate.cv_folds(ds.y, 2, 1, seed=0)
    labeled = np.stack([evaluate.labeled_masks(ds.y, outer, f, 0) for f in (0.05, 1.0)])
    plan = nested_scarce.InnerPlan(ds.y, outer, labeled, 3, seed=0)
    for (f, o), val, train, lab in zip(plan.cells, plan.val, plan.train, plan.lab, strict=True):
        assert not (val & ~labeled[f, o]).any()  # validation: labelled rows of the outer fold
        assert not (train & ~outer[o]).any() and not (train & val).any()
        np.testing.assert_array_equal(lab, labeled[f, o] & ~val)
        assert {0, 1} <= set(ds.y[val]) and {0, 1} <= set(ds.y[lab])
    for f, o in np.ndindex(2, 2):  # each cell's validation folds partition its labelled rows
        val = plan.val[(plan.cells[:, 0] == f) & (plan.cells[:, 1] == o)]
        np.testing.assert_array_equal(val.sum(0), labeled[f, o].astype(int))
    assert plan.folds_per_cell().tolist() == [[3, 3], [3, 3]]


def test_too_few_labels_to_validate_are_refused_by_name():
    ds = load_bundled()
    outer = evaluate.cv_folds(ds.y, 2, 1, seed=0)
    labeled = evaluate.labeled_masks(ds.y, outer, 0.001, 0)  # one row per class
    with pytest.raises(ValueError, match="at least 2 labelled rows per class"):
        nested_scarce.labelled_folds(ds.y, labeled[0], 3, seed=0)


def test_perturbing_outer_test_rows_cannot_change_any_choice(studies):
    """Bug caught: the SGAN's or a baseline's settings chosen with an outer test row (its
    features or its label) in inner training or validation. Noise features and flipped labels
    on outer fold 0's test rows must leave every model's choice (and the SGAN's inner score)
    for fold 0 identical at every fraction."""
    record, perturbed, _ = studies
    for a, b in zip(record["per_fraction"], perturbed["per_fraction"], strict=True):
        for name, model in a["models"].items():
            for sel, chosen in model["chosen"].items():
                assert chosen[0] == b["models"][name]["chosen"][sel][0], (a["fraction"], name, sel)
        # Not a no-op: the perturbed fold's test score changes.
        assert (
            a["models"][tuned_study.SGAN]["runs"]["accuracy"][0]
            != (b["models"][tuned_study.SGAN]["runs"]["accuracy"][0])
        )


def test_the_study_record_has_every_test_choice_and_provenance(studies):
    """Bugs caught: a baseline left out of the Holm family, choices not recorded per outer
    fold, or a record without its command, commit and load (what makes it reproducible)."""
    record, _, out = studies
    on_disk = json.loads((out / "tuned_study.json").read_text())
    assert on_disk["comparisons"] == json.loads(json.dumps(record["comparisons"]))
    for key in ("command", "git_commit", "dirty", "versions", "device", "load_average"):
        assert key in on_disk, key
    assert "benchmarks.tuned_study --quick" in on_disk["command"]
    n_outer, baselines = record["n_outer"], set(QUICK.baselines)
    tested = {(c["fraction"], c["b"], c["metric"]) for c in record["comparisons"]}
    assert tested == {(f, b, m) for f in QUICK.fractions for b in baselines for m in tuned_study.COMPARED}
    for entry in record["per_fraction"]:
        assert set(entry["models"]) == {tuned_study.SGAN, *baselines}
        for model in entry["models"].values():
            assert set(model["chosen"]) == set(tuned_study.COMPARED)
            assert all(len(c) == n_outer for c in model["chosen"].values())
            assert len(model["runs"]["accuracy"]) == n_outer
        assert entry["models"][tuned_study.SGAN]["summary"]["roc_auc"]["mean"] > 0.8  # it learns
    assert (out / "tuned_study.md").read_text().startswith("# Tuned study")


def _fake_study(sgan, others, p):
    """A study record with one fraction: outer accuracy/AUC means per model and raw p-values."""
    models = {
        name: {"summary": {m: {"mean": v, "ci95_low": v, "ci95_high": v} for m in tuned_study.COMPARED}}
        for name, v in {tuned_study.SGAN: sgan, **others}.items()
    }
    comparisons = [
        {"fraction": 0.01, "b": b, "metric": m, "mean_diff": sgan - v, "p": p, "p_holm": min(1.0, 2 * p)}
        for b, v in others.items()
        for m in tuned_study.COMPARED
    ]
    return {
        "per_fraction": [{"fraction": 0.01, "models": models}],
        "comparisons": comparisons,
        "outer": "2 × 5-fold",
        "n_inner_max": 3,
        "n_sgan_settings": 4,
        "n_structures": 1,
    }


def test_headline_compares_with_the_best_baseline_and_holm_p():
    """Bugs caught: the headline picking a weak (cherry-picked) comparator, or quoting the raw
    p instead of the Holm-adjusted one, or saying the GAN helps when it does not."""
    study = _fake_study(0.90, {"weak": 0.70, "strong": 0.95}, p=0.02)
    rows = tuned_study.headline_rows(study)
    assert {r["best"] for r in rows} == {"strong"}
    assert all(r["test"]["p_holm"] == 0.04 for r in rows)
    text = "\n".join(tuned_study.headline(study))
    assert "strong" in text and "| 0.04 |" in text and "No: at no labelled fraction" in text
    assert "significantly worse at 1 %" in text
    helped = "\n".join(tuned_study.headline(_fake_study(0.99, {"weak": 0.70, "strong": 0.95}, p=0.01)))
    assert "Yes at 1 % labelled" in helped
    not_significant = "\n".join(tuned_study.headline(_fake_study(0.99, {"strong": 0.95}, p=0.04)))
    assert "No: at no labelled fraction" in not_significant  # p 0.04, Holm 0.08


TINY = Config(
    name="tiny",
    model=MLPConfig(latent_dim=4, ae_hidden=(8,), disc_hidden=(8, 8), gen_hidden=(8,), noise_dim=4),
    schedule=ScheduleConfig(ae_steps=10, gan_steps=30, batch_size=16, log_every=10, ae_lr=3e-2, d_lr=3e-2),
    cv=CVConfig(n_folds=2, n_repeats=1),
)


def _train(config, y, labeled_fraction=0.05):
    ds = load_bundled()
    masks = evaluate.cv_folds(ds.y, 2, 1, seed=0)
    labeled = evaluate.labeled_masks(ds.y, masks, labeled_fraction, 0)
    runs = table.make_runs(config, ds.y, masks, labeled)
    return table.train_runs(config, ds.x, y, runs).state, labeled, masks


def test_ssl_extras_are_off_at_weight_zero_and_never_read_hidden_labels():
    """Bugs caught: the extras changing the plain SGAN when their weights are 0 (the existing
    numbers would move), doing nothing when on, or reading the labels of unlabelled rows."""
    ds = load_bundled()
    extras = TINY.replace(**{"schedule.ssl_extras": True})
    plain, labeled, masks = _train(TINY, ds.y)
    off, _, _ = _train(extras, ds.y)
    for a, b in zip(jax.tree.leaves(plain.disc.params), jax.tree.leaves(off.disc.params), strict=True):
        np.testing.assert_array_equal(a, b)
    on = extras.replace(
        **{"schedule.entropy_weight": 0.5, "schedule.consistency_weight": 1.0, "schedule.ema_decay": 0.9}
    )
    trained, _, _ = _train(on, ds.y)
    assert not np.array_equal(jax.tree.leaves(trained.disc.params)[0], jax.tree.leaves(off.disc.params)[0])
    hidden = masks.any(0) & ~labeled.any(0)  # training rows unlabelled in every run
    flipped, _, _ = _train(on, np.where(hidden, 1 - ds.y, ds.y))
    for a, b in zip(jax.tree.leaves(trained), jax.tree.leaves(flipped), strict=True):
        np.testing.assert_array_equal(a, b)
