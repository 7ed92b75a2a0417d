import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import evaluate, losses, preprocess, train
from gan_jax.config import Config
from gan_jax.data import load_bundled

TINY = Config(
    name="tiny", latent_dim=4, ae_hidden=(8,), disc_hidden=(8, 8), gen_hidden=(8,), noise_dim=4,
    ae_steps=6, gan_steps=8, batch_size=16, log_every=4, n_folds=3, n_repeats=1,
)  # fmt: skip
ONE_DEVICE = train.runs_mesh(jax.devices()[:1])


@pytest.fixture(scope="module")
def data():
    ds = load_bundled()
    return ds.x, ds.y, evaluate.cv_folds(ds.y, 3, 1, seed=0)


def _leaves(state):
    return [np.asarray(a) for a in jax.tree.leaves((state.ae_params, state.disc_params, state.gen_params))]


def _assert_states_equal(a, b, exact=True):
    for u, v in zip(_leaves(a), _leaves(b), strict=True):
        if exact:
            np.testing.assert_array_equal(u, v)
        else:
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def trained(data):
    x, y, masks = data
    return train.train_runs(TINY, x, y, masks, mesh=ONE_DEVICE)


def _single_state(data, config=TINY):
    x, y, masks = data
    run = train.RunData(train.run_keys(config.seed, np.array([0]))[0], jnp.asarray(masks[0]))
    return train.init_state(config, jnp.asarray(x), run), run


def _fixed_batch(key, size):
    return jnp.arange(size)  # always the same first `size` rows


def test_one_ae_step_decreases_loss_on_tiny_batch(data):
    x, y, _ = data
    state, _ = _single_state(data)
    models = train.build_models(TINY, 30)
    xs = preprocess.apply(state.scaler, jnp.asarray(x))
    loss = lambda s: float(losses.reconstruction_loss_eq4(
        models.ae.apply({"params": s.ae_params}, xs[:16]), xs[:16]))  # fmt: skip
    step = jax.jit(lambda s, k: train.ae_step(models, TINY, s, k, xs, _fixed_batch))
    new_state, metrics = step(state, jax.random.key(1))
    assert float(metrics["ae"]) == pytest.approx(loss(state), rel=1e-5)
    assert loss(new_state) < loss(state)


@pytest.mark.parametrize("use_gan", [True, False])
def test_one_classifier_step_decreases_supervised_loss(data, use_gan):
    x, y, _ = data
    config = TINY.replace(use_gan=use_gan)
    state, _ = _single_state(data, config)
    models = train.build_models(config, 30)
    h = train.classifier_inputs(config, state, jnp.asarray(x))
    y = jnp.asarray(y)
    loss = lambda s: float(losses.supervised_loss(
        models.disc.apply({"params": s.disc_params}, h[:16])[0], y[:16]))  # fmt: skip
    step = jax.jit(lambda s, k: train.gan_step(models, config, s, k, h, y, _fixed_batch))
    new_state, metrics = step(state, jax.random.key(1))
    assert set(metrics) == ({"d", "g"} if use_gan else {"d"})
    assert loss(new_state) < loss(state)


def test_sampling_only_draws_training_rows():
    mask = jnp.asarray(np.arange(50) % 3 == 0)
    idx = jnp.argsort(~mask, stable=True)
    drawn = train._sample(jax.random.key(0), idx, jnp.sum(mask), 1000)
    assert bool(jnp.all(mask[drawn]))
    assert len(np.unique(np.asarray(drawn))) == int(mask.sum())  # every training row reachable


def test_fused_vmapped_run_equals_run_trained_alone(data, trained):
    x, y, masks = data
    alone = train.train_runs(TINY, x, y, masks[1:2], run_ids=np.array([1]), mesh=ONE_DEVICE)
    _assert_states_equal(jax.tree.map(lambda a: a[1:2], trained.state), alone.state, exact=False)


def test_same_seed_same_numbers_and_chunking_does_not_matter(data, trained):
    x, y, masks = data
    again = train.train_runs(TINY, x, y, masks, mesh=ONE_DEVICE)
    _assert_states_equal(trained.state, again.state)
    rechunked = train.train_runs(TINY.replace(log_every=3), x, y, masks, mesh=ONE_DEVICE)
    _assert_states_equal(trained.state, rechunked.state)
    other_seed = train.train_runs(TINY.replace(seed=1), x, y, masks, mesh=ONE_DEVICE)
    assert not np.array_equal(_leaves(trained.state)[0], _leaves(other_seed.state)[0])


def test_eight_devices_equal_one_device(data, trained):
    """Runs (3, padded to 8) sharded over 8 simulated CPU devices give the same models and
    metrics as on one device."""
    assert len(jax.devices()) == 8
    x, y, masks = data
    sharded = train.train_runs(TINY, x, y, masks, mesh=train.runs_mesh())
    _assert_states_equal(trained.state, sharded.state, exact=False)
    p1, p8 = (train.predict_runs(TINY, r.state, x) for r in (trained, sharded))
    m1, m8 = (evaluate.classification_metrics(y, p, ~masks) for p in (p1, p8))
    for k in evaluate.METRICS:
        np.testing.assert_allclose(m1[k], m8[k], atol=1e-6)


def test_history_and_phases(trained):
    steps = [h["step"] for h in trained.history]
    assert steps == [4, 6, 10, 14] and [h["phase"] for h in trained.history] == ["ae"] * 2 + ["gan"] * 2
    assert set(trained.history[-1]) == {"step", "phase", "d", "g"}
    assert np.asarray(trained.state.step).tolist() == [14, 14, 14]


def test_no_autoencoder_ablation_trains_on_scaled_features(data):
    x, y, masks = data
    config = TINY.replace(use_autoencoder=False)
    result = train.train_runs(config, x, y, masks, mesh=ONE_DEVICE)
    assert result.history[0]["phase"] == "gan" and result.history[-1]["step"] == config.gan_steps
    assert result.state.disc_params["MLP_0"]["dense_0"]["kernel"].shape == (3, 30, 8)


def test_non_finite_loss_names_run_and_step(data):
    x, y, masks = data
    x, masks = x.copy(), masks.copy()
    # Rows 0 and 1 hold ±inf and are training rows of run 2 only: its scaler (and every
    # scaled row) becomes NaN, while runs 0 and 1 never see them.
    x[0, 3], x[1, 3] = np.inf, -np.inf
    masks[:, :2] = [[False, False], [False, False], [True, True]]
    with pytest.raises(train.NonFiniteLossError, match=r"run 2: the 'ae' loss is nan at step 0"):
        train.train_runs(TINY, x, y, masks, mesh=ONE_DEVICE)


def test_predict_runs_shape_and_range(data, trained):
    x, _, _ = data
    p = train.predict_runs(TINY, trained.state, x)
    assert p.shape == (3, 569) and np.all((p >= 0) & (p <= 1))


def test_phase_schedule_resumes_mid_phase():
    assert train.phase_schedule(TINY, start_step=5) == [("ae", 5, 1), ("gan", 6, 4), ("gan", 10, 4)]
    assert functools.reduce(lambda n, c: n + c[2], train.phase_schedule(TINY), 0) == 14
