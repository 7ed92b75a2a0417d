import jax
import numpy as np
import pytest

from gan_jax.config import Config, CVConfig, MLPConfig, ScheduleConfig
from gan_jax.data import load_bundled
from gan_jax.evaluation import evaluate, nested, sweep
from gan_jax.training import engine

TINY = Config(
    name="tiny",
    model=MLPConfig(latent_dim=4, ae_hidden=(8,), disc_hidden=(8, 8), gen_hidden=(8,), noise_dim=4),
    schedule=ScheduleConfig(ae_steps=10, gan_steps=40, batch_size=16, log_every=10, ae_lr=3e-2, d_lr=3e-2),
    cv=CVConfig(n_folds=3, n_repeats=1),
)
MESH = engine.runs_mesh(jax.devices()[:2])
SETTINGS = sweep.grid(TINY, sweep.parse_space(["d_lr=3e-3,3e-2"]))


@pytest.fixture(scope="module")
def data():
    ds = load_bundled()
    return ds.x, ds.y, evaluate.cv_folds(ds.y, 3, 1, seed=0)


def _perturb_outer_test_rows(x, y, outer_masks, o=0):
    """x with noise features and y with flipped labels on outer fold o's test rows."""
    test = ~outer_masks[o]
    x2, y2 = x.copy(), y.copy()
    x2[test] = np.random.default_rng(1).normal(0, 1e3, x2[test].shape).astype(x.dtype)
    y2[test] = 1 - y2[test]
    return x2, y2


def test_inner_folds_split_the_outer_training_rows_only(data):
    """Bug caught: inner folds drawn from all rows, so inner validation includes outer test rows."""
    _, y, outer = data
    inner = nested.inner_folds(y, outer, 3, seed=0)
    assert inner.shape == (3, 3, len(y))
    for o in range(3):
        assert not (inner[o] & ~outer[o]).any()
        val = outer[o] & ~inner[o]  # [3, N] inner validation rows
        np.testing.assert_array_equal(val.sum(0), outer[o].astype(int))  # a partition of the outer fold


def test_perturbing_outer_test_rows_cannot_change_the_choice(data):
    """Bug caught: hyperparameters chosen with outer test rows (their features or labels) in
    the inner training or validation rows. Noise features and flipped labels on outer fold 0's
    test rows must leave its inner scores bit-identical and so its chosen setting."""
    x, y, outer = data
    a = nested.nested_cv(TINY, x, y, SETTINGS, outer, n_inner=2, mesh=MESH)
    b = nested.nested_cv(TINY, *_perturb_outer_test_rows(x, y, outer), SETTINGS, outer, n_inner=2, mesh=MESH)
    scores_a, scores_b = np.asarray(a["inner_scores"]), np.asarray(b["inner_scores"])
    np.testing.assert_array_equal(scores_a[:, 0], scores_b[:, 0])
    assert a["chosen"][0] == b["chosen"][0]
    # The perturbation is not a no-op: outer fold 0 is scored on the flipped labels.
    assert a["outer_runs"][0]["accuracy"] != b["outer_runs"][0]["accuracy"]
    assert len(a["chosen"]) == 3 and set(a["outer_summary"]) == set(evaluate.METRICS)
    s = a["outer_summary"]["accuracy"]
    assert 0.0 <= s["ci95_low"] <= s["mean"] <= s["ci95_high"] <= 1.0 and s["n"] == 3


def test_tuned_baselines_choose_on_the_same_inner_folds_without_test_rows(data):
    """Bug caught: GridSearchCV given its own folds (or the outer test rows) instead of the
    inner folds of the SGAN's nested CV."""
    x, y, outer = data
    a = nested.tuned_baselines(TINY, x, y, outer, n_inner=2, n_jobs=1)
    b = nested.tuned_baselines(TINY, *_perturb_outer_test_rows(x, y, outer), outer, n_inner=2, n_jobs=1)
    for name in nested.BASELINE_GRIDS:
        assert a[name]["chosen"][0] == b[name]["chosen"][0]
        assert all(p["model__C"] in nested.BASELINE_GRIDS[name]["model__C"] for p in a[name]["chosen"])
        assert a[name]["outer_summary"]["accuracy"]["mean"] > 0.9


def test_unknown_selection_metric_is_refused(data):
    x, y, outer = data
    with pytest.raises(ValueError, match="select_metric must be one of"):
        nested.nested_cv(TINY, x, y, SETTINGS, outer, n_inner=2, select_metric="specificity")
