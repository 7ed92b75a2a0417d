"""The class-conditional generator (gan_jax.training.synth.train_synth_runs) and sampling (gan_jax.studies.synth)."""

import jax
import numpy as np
import pytest

from gan_jax.config import Config, ScheduleConfig, SynthConfig
from gan_jax.data import load_bundled
from gan_jax.evaluation import evaluate
from gan_jax.studies import synth
from gan_jax.training import blocks, engine
from gan_jax.training import synth as synth_trainer

TINY = Config(
    name="tiny_synth",
    synth=SynthConfig(
        model="acgan", gen_hidden=(16,), disc_hidden=(16,), noise_dim=4, steps=6, batch_size=16
    ),
    schedule=ScheduleConfig(log_every=3),
)
ONE_DEVICE = engine.runs_mesh(jax.devices()[:1])


@pytest.fixture(scope="module")
def data():
    ds = load_bundled()
    return ds.x, ds.y, evaluate.cv_folds(ds.y, 3, 1, seed=0)


def _fit(config, x, y, masks, **kwargs):
    return synth.fit_generators(config, x, y, masks, mesh=ONE_DEVICE, **kwargs)


def _params(result):
    return [np.asarray(a) for a in jax.tree.leaves((result.state.gen.params, result.state.disc.params))]


def test_rows_have_the_right_shape_are_finite_and_inside_each_features_training_range(data):
    """Catches rows in scaled units, NaNs, or negative sizes (the inverse transform not clipped)."""
    x, y, masks = data
    result = _fit(TINY, x, y, masks)
    rows = synth.sample(TINY, result.state, synth.balanced_labels(50))
    assert rows.shape == (3, 100, 30)
    assert np.isfinite(rows).all()
    for r, mask in enumerate(masks):
        assert (rows[r] >= 0).all()
        assert (rows[r] >= x[mask].min(0) - 1e-4 * np.abs(x[mask].min(0))).all()
        assert (rows[r] <= x[mask].max(0) * (1 + 1e-5)).all()


def test_transform_round_trips_training_rows(data):
    """Catches an inverse that is not the inverse (rows come out in the wrong units)."""
    x, _, masks = data
    t = synth_trainer.fit_synth_transform(TINY, x, masks[0])
    back = np.asarray(synth_trainer.synth_inverse(TINY, t, synth_trainer.synth_forward(TINY, t, x[masks[0]])))
    np.testing.assert_allclose(back, x[masks[0]], rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("model", ["acgan", "cgan"])
def test_generator_never_sees_test_rows(data, model):
    """Catches a generator (or its scaler / range clip) fitted on rows outside the training fold:
    changing every test row must leave the parameters and the sampled rows bit-identical."""
    x, y, masks = data
    config = TINY.replace(**{"synth.model": model})
    a = _fit(config, x, y, masks)
    x2 = x.copy()
    x2[~masks[0]] = x2[~masks[0]] * 3.0 + 50.0
    b = _fit(config, x2, y, masks)
    for u, v in zip(_params(a), _params(b), strict=True):
        np.testing.assert_array_equal(u[0], v[0])
    labels = synth.balanced_labels(5)
    np.testing.assert_array_equal(
        synth.sample(config, a.state, labels)[0], synth.sample(config, b.state, labels)[0]
    )


@pytest.mark.parametrize("model", ["acgan", "cgan"])
def test_generator_never_reads_hidden_labels(data, model):
    """Catches a generator that reads the labels of unlabelled training rows (or test rows):
    flipping them must leave its parameters bit-identical."""
    x, y, masks = data
    config = TINY.replace(**{"synth.model": model, "cv.labeled_fraction": 0.2})
    labeled = evaluate.labeled_masks(y, masks, 0.2, config.cv.seed)
    a = _fit(config, x, y, masks, labeled_masks=labeled)
    y2 = np.where(labeled[0], y, 1 - y).astype(y.dtype)
    b = _fit(config, x, y2, masks, labeled_masks=labeled)
    for u, v in zip(_params(a), _params(b), strict=True):
        np.testing.assert_array_equal(u[0], v[0])
    np.testing.assert_array_equal(np.asarray(a.state.fitted.prior[0]), np.asarray(b.state.fitted.prior[0]))


def test_generator_learns_the_class_difference(data):
    """Catches a generator that ignores its label (or swaps them): after short training on one
    fold, synthetic malignant rows have a larger radius_mean than benign ones, as real ones do
    (real gap ≈ 5). Measured for the AC-GAN: gap ≈ 8 after 200 steps; threshold 2. (The cGAN
    needs more steps than a test can afford: gap 1.1 at 200 steps, 0.4 at 400.)"""
    x, y, masks = data
    config = TINY.replace(
        **{
            "synth.gen_hidden": (32,),
            "synth.disc_hidden": (32,),
            "synth.batch_size": 32,
            "synth.steps": 200,
            "schedule.log_every": 100,
            "synth.g_lr": 1e-3,
            "synth.d_lr": 1e-3,
        }
    )
    result = _fit(config, x, y, masks[:1])
    labels = synth.balanced_labels(200)
    rows = synth.sample(config, result.state, labels)[0]
    radius_gap = rows[labels == 1, 0].mean() - rows[labels == 0, 0].mean()
    assert radius_gap > 2.0, radius_gap


def test_existing_configs_do_not_train_a_synthesiser():
    """Catches a default that turns the synthesiser on for every experiment."""
    assert Config().synth.model == "none"
    with pytest.raises(ValueError, match="synth.model"):
        synth_trainer.build_synth_networks(Config(), 30)
    with pytest.raises(ValueError, match="model must be one of"):
        Config(synth=SynthConfig(model="vae"))


def test_a_block_of_synth_runs_is_bit_identical_to_that_block_trained_alone(data):
    """Bugs caught: the synthesiser's blocks handing a run another run's parameters (a wrong
    reshape of the runs axis), padding copies leaking into real runs. Block j holds runs j,
    j + n_blocks, ... of the padded runs; with the same runs per device (so the same kernels),
    each must equal that block trained alone bit for bit."""
    x, y, masks = data
    masks = np.concatenate([masks, masks[::-1]])  # 6 runs, each its own key
    runs = synth_trainer.make_synth_runs(TINY, y, masks)
    mesh, n_blocks = engine.runs_mesh(jax.devices()[:2]), 3  # 3 runs per device in blocks of 1
    blocked = synth_trainer.train_synth_runs(TINY, x, y, runs, mesh=mesh, block_runs=1)
    assert blocks.n_run_blocks(0, mesh, 6, 1) == n_blocks
    rows = lambda tree, members: jax.tree.map(lambda a: np.asarray(a)[members], tree)
    for j in range(n_blocks):
        members = np.arange(6)[j::n_blocks]
        alone = synth_trainer.train_synth_runs(TINY, x, y, rows(runs, members), mesh=mesh, block_runs=None)
        got = jax.tree.leaves(rows(blocked.state, members))
        for g, w in zip(got, jax.tree.leaves(alone.state), strict=True):
            np.testing.assert_array_equal(g, np.asarray(w))
