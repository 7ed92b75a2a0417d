import json

import jax
import numpy as np
import pytest

from gan_jax.config import Config, CVConfig, MLPConfig, ScheduleConfig
from gan_jax.data import load_bundled
from gan_jax.evaluation import evaluate, sweep
from gan_jax.training import engine, table

TINY = Config(
    name="tiny",
    model=MLPConfig(latent_dim=4, ae_hidden=(8,), disc_hidden=(8, 8), gen_hidden=(8,), noise_dim=4),
    schedule=ScheduleConfig(ae_steps=10, gan_steps=40, batch_size=16, log_every=10, ae_lr=3e-2, d_lr=3e-2),
    cv=CVConfig(n_folds=3, n_repeats=1),
)
MESH = engine.runs_mesh(jax.devices()[:2])


@pytest.fixture(scope="module")
def data():
    ds = load_bundled()
    return ds.x, ds.y, evaluate.cv_folds(ds.y, 3, 1, seed=0)


def test_grid_is_the_full_product_with_config_defaults():
    space = sweep.parse_space(["d_lr=1e-3,1e-2", "seed=0,1,2"])
    settings = sweep.grid(TINY, space)
    assert len(settings) == 6
    assert {(s["d_lr"], s["seed"]) for s in settings} == {(a, b) for a in (1e-3, 1e-2) for b in (0, 1, 2)}
    assert all(
        s["g_lr"] == TINY.schedule.g_lr and s["labeled_fraction"] == TINY.cv.labeled_fraction
        for s in settings
    )


def test_random_search_is_reproducible_and_inside_its_ranges():
    space = sweep.parse_space(["d_lr=1e-4:1e-2:log", "unsupervised_weight=0.1:1", "labeled_fraction=0.1,0.5"])
    a, b = (sweep.random_search(TINY, space, 50, seed=3) for _ in range(2))
    assert a == b
    assert all(1e-4 <= s["d_lr"] <= 1e-2 and 0.1 <= s["unsupervised_weight"] <= 1 for s in a)
    assert {s["labeled_fraction"] for s in a} == {0.1, 0.5}
    assert sweep.random_search(TINY, space, 50, seed=4) != a


@pytest.mark.parametrize("item", ["lr=1e-3", "d_lr=abc", "d_lr=1:0", "d_lr=0:1:log", "d_lr=1:2:lin"])
def test_bad_search_spaces_are_refused_by_name(item):
    with pytest.raises(ValueError, match="d_lr|NAME=SPEC"):
        sweep.parse_space([item])


def test_seeds_are_lists_not_ranges():
    with pytest.raises(ValueError, match="seeds are a list of integers"):
        sweep.parse_space(["seed=0:10"])


def test_a_grid_refuses_ranges():
    with pytest.raises(ValueError, match="use --random"):
        sweep.grid(TINY, sweep.parse_space(["d_lr=1e-4:1e-2"]))


def test_sweep_run_s_m_is_setting_s_on_mask_m(data):
    """Bug caught: settings and folds interleaved the wrong way (run s*M+m trained with another
    setting's learning rate, seed or labelled rows than the one it is reported under)."""
    _, y, masks = data
    settings = sweep.grid(TINY, sweep.parse_space(["d_lr=1e-3,2e-3", "seed=0,7", "labeled_fraction=0.2,1.0"]))
    runs = sweep.sweep_runs(y, settings, masks)
    assert runs.train_mask.shape == (len(settings) * len(masks), len(y))
    for s, setting in enumerate(settings):
        alone = table.make_runs(sweep.with_setting(TINY, setting), y, masks)
        for m in range(len(masks)):
            r = s * len(masks) + m
            for got, want in zip(jax.tree.leaves(runs), jax.tree.leaves(alone), strict=True):
                np.testing.assert_array_equal(got[r], want[m])


def test_each_setting_is_scored_by_its_own_runs_in_one_compiled_program(data):
    """Bugs caught: a setting's metrics taken from another setting's runs (an untrained
    setting scoring like a trained one), and a sweep that compiles once per setting."""
    x, y, masks = data
    frozen = {"ae_lr": 0.0, "d_lr": 0.0, "g_lr": 0.0}  # learning rate 0: the untrained model
    settings = [sweep._with_defaults(TINY, frozen), sweep._with_defaults(TINY, {})]
    result = sweep.run_sweep(TINY, x, y, settings, masks, mesh=MESH)
    acc = [r["summary"]["accuracy"]["mean"] for r in result["settings"]]
    assert acc[1] > 0.8 and acc[1] > acc[0] + 0.2, acc  # measured: 0.91 vs 0.53
    assert result["timing"]["n_runs"] == 2 * len(masks)
    compiled = engine.fused_chunk_fn(table.TRAINER, TINY.structure(), "gan", TINY.schedule.log_every)
    n_programs = compiled._cache_size()
    more = sweep.grid(TINY, sweep.parse_space(["d_lr=3e-3,1e-2", "unsupervised_weight=0.5"]))
    sweep.run_sweep(TINY, x, y, more, masks, mesh=MESH)
    assert compiled._cache_size() == n_programs


def test_sweep_command_nested_writes_the_choice_per_outer_fold(tmp_path):
    """Bug caught: the command dropping the chosen settings, the outer-fold CIs or the tuned
    baselines from nested.json (what a tuned result may be quoted from)."""
    from gan_jax import cli

    sets = [
        "model.latent_dim=4",
        "model.ae_hidden=(8,)",
        "model.disc_hidden=(8,8)",
        "model.gen_hidden=(8,)",
        "model.noise_dim=4",
        "schedule.ae_steps=10",
        "schedule.gan_steps=40",
        "schedule.batch_size=16",
        "cv.n_folds=3",
        "cv.n_repeats=1",
        "schedule.ae_lr=0.03",
    ]
    argv = [
        "sweep",
        "--quick",
        *(f"--set={s}" for s in sets),
        "--param=d_lr=3e-3,3e-2",
        "--nested",
        "--inner-folds=2",
        "--baselines",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    assert cli.main(argv) == 0
    result = json.loads((tmp_path / "nested.json").read_text())
    assert result["n_outer"] == 3 and result["n_runs_per_call"] == 2 * 3 * 2
    assert [c["outer_run"] for c in result["chosen"]] == [0, 1, 2]
    assert all(c["setting"]["d_lr"] in (3e-3, 3e-2) for c in result["chosen"])
    assert set(result["outer_summary"]) == set(evaluate.METRICS)
    assert set(result["baselines"]) == {"logistic_regression", "svm_rbf"}
