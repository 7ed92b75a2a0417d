import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.config import Config, CVConfig, MLPConfig, ScheduleConfig
from gan_jax.data import load_bundled
from gan_jax.evaluation import evaluate
from gan_jax.models import losses, preprocess
from gan_jax.training import engine, table

TINY = Config(
    name="tiny",
    model=MLPConfig(latent_dim=4, ae_hidden=(8,), disc_hidden=(8, 8), gen_hidden=(8,), noise_dim=4),
    schedule=ScheduleConfig(ae_steps=6, gan_steps=8, batch_size=16, log_every=4),
    cv=CVConfig(n_folds=3, n_repeats=1),
)
ONE_DEVICE = engine.runs_mesh(jax.devices()[:1])


@pytest.fixture(scope="module")
def data():
    ds = load_bundled()
    return ds.x, ds.y, evaluate.cv_folds(ds.y, 3, 1, seed=0)


def _leaves(state):
    return [np.asarray(a) for a in jax.tree.leaves(table.model_params(state))]


def _assert_states_equal(a, b, exact=True):
    for u, v in zip(_leaves(a), _leaves(b), strict=True):
        if exact:
            np.testing.assert_array_equal(u, v)
        else:
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def _train(config, x, y, masks, run_ids=None, mesh=ONE_DEVICE, **kwargs):
    runs = table.make_runs(config, y, masks, run_ids=run_ids, **kwargs)
    return table.train_runs(config, x, y, runs, mesh=mesh)


@pytest.fixture(scope="module")
def trained(data):
    x, y, masks = data
    return _train(TINY, x, y, masks)


def _single_state(data, config=TINY):
    x, y, masks = data
    runs = table.make_runs(config, y, masks[:1])
    run = jax.tree.map(lambda a: jnp.asarray(a[0]), runs)
    return table.init_state(config, (jnp.asarray(x), jnp.asarray(y, jnp.int32)), run), run


def _fixed_batch(key, size):
    return jnp.arange(size)  # always the same first `size` rows


def test_one_ae_step_decreases_loss_on_tiny_batch(data):
    x, y, _ = data
    state, run = _single_state(data)
    nets = table.build_networks(TINY, 30)
    xs = preprocess.apply(state.fitted, jnp.asarray(x))
    loss = lambda s: float(
        losses.reconstruction_loss_eq4(nets.ae.apply({"params": s.ae.params}, xs[:16]), xs[:16])
    )
    step = jax.jit(lambda s, k: table.ae_step(nets, TINY, s, k, run.hparams, xs, _fixed_batch))
    new_state, metrics = step(state, jax.random.key(1))
    assert float(metrics["ae"]) == pytest.approx(loss(state), rel=1e-5)
    assert loss(new_state) < loss(state)


@pytest.mark.parametrize("use_gan", [True, False])
def test_one_classifier_step_decreases_supervised_loss(data, use_gan):
    x, y, _ = data
    config = TINY.replace(**{"model.use_gan": use_gan})
    state, run = _single_state(data, config)
    nets = table.build_networks(config, 30)
    features = table.classifier_inputs(config, table.model_params(state), jnp.asarray(x))
    y = jnp.asarray(y)
    loss = lambda s: float(
        losses.supervised_loss(nets.disc.apply({"params": s.disc.params}, features[:16])[0], y[:16])
    )
    step = jax.jit(
        lambda s, k: table.gan_step(nets, config, s, k, run.hparams, features, y, _fixed_batch, _fixed_batch)
    )
    new_state, metrics = step(state, jax.random.key(1))
    assert set(metrics) == ({"d", "g"} if use_gan else {"d"})
    assert loss(new_state) < loss(state)


def test_sampling_only_draws_training_rows():
    mask = jnp.asarray(np.arange(50) % 3 == 0)
    drawn = engine.row_sampler(mask)(jax.random.key(0), 1000)
    assert bool(jnp.all(mask[drawn]))
    assert len(np.unique(np.asarray(drawn))) == int(mask.sum())  # every training row reachable


def test_fused_vmapped_run_equals_run_trained_alone(data, trained):
    x, y, masks = data
    alone = _train(TINY, x, y, masks[1:2], run_ids=np.array([1]))
    _assert_states_equal(jax.tree.map(lambda a: a[1:2], trained.state), alone.state, exact=False)


def test_same_seed_same_numbers_and_chunking_does_not_matter(data, trained):
    x, y, masks = data
    again = _train(TINY, x, y, masks)
    _assert_states_equal(trained.state, again.state)
    rechunked = _train(TINY.replace(**{"schedule.log_every": 3}), x, y, masks)
    _assert_states_equal(trained.state, rechunked.state)
    other_seed = _train(TINY.replace(**{"cv.seed": 1}), x, y, masks)
    assert not all(np.array_equal(a, b) for a, b in zip(_leaves(trained.state), _leaves(other_seed.state)))


def test_eight_devices_equal_one_device(data, trained):
    """Runs (3, padded to 8) sharded over 8 simulated CPU devices give the same models and
    metrics as on one device."""
    assert len(jax.devices()) == 8
    x, y, masks = data
    sharded = _train(TINY, x, y, masks, mesh=engine.runs_mesh())
    _assert_states_equal(trained.state, sharded.state, exact=False)
    p1, p8 = (table.predict_runs(TINY, table.model_params(r.state), x) for r in (trained, sharded))
    m1, m8 = (evaluate.classification_metrics(y, p, ~masks) for p in (p1, p8))
    for k in evaluate.METRICS:
        np.testing.assert_allclose(m1[k], m8[k], atol=1e-6)


def test_history_and_phases(trained):
    steps = [h["step"] for h in trained.history]
    assert steps == [4, 6, 10, 14] and [h["phase"] for h in trained.history] == ["ae"] * 2 + ["gan"] * 2
    assert set(trained.history[-1]) == {"step", "phase", "d", "g", "per_run"}
    assert set(trained.history[-1]["per_run"]) == {"d", "g"} and len(trained.history[-1]["per_run"]["d"]) == 3
    assert np.asarray(trained.state.step).tolist() == [14, 14, 14]


def test_no_autoencoder_ablation_trains_on_scaled_features(data):
    x, y, masks = data
    config = TINY.replace(**{"model.use_autoencoder": False})
    result = _train(config, x, y, masks)
    assert result.history[0]["phase"] == "gan" and result.history[-1]["step"] == config.schedule.gan_steps
    assert result.state.disc.params["MLP_0"]["dense_0"]["kernel"].shape == (3, 30, 8)


def test_non_finite_loss_names_run_and_step(data):
    x, y, masks = data
    x, masks = x.copy(), masks.copy()
    # Rows 0 and 1 hold ±inf and are training rows of run 2 only: its scaler (and every
    # scaled row) becomes NaN, while runs 0 and 1 never see them.
    x[0, 3], x[1, 3] = np.inf, -np.inf
    masks[:, :2] = [[False, False], [False, False], [True, True]]
    with pytest.raises(engine.NonFiniteLossError, match=r"run 2: the 'ae' loss is nan at step 0"):
        _train(TINY, x, y, masks)


def test_predict_runs_shape_and_range(data, trained):
    x, _, _ = data
    p = table.predict_runs(TINY, table.model_params(trained.state), x)
    assert p.shape == (3, 569) and np.all((p >= 0) & (p <= 1))


def test_phase_schedule_resumes_mid_phase():
    assert engine.phase_schedule(table.schedule(TINY), start_step=5) == [
        ("ae", 5, 1),
        ("gan", 6, 4),
        ("gan", 10, 4),
    ]
    assert functools.reduce(lambda n, c: n + c[2], engine.phase_schedule(table.schedule(TINY)), 0) == 14


def test_a_run_does_not_depend_on_the_other_runs_at_full_length(data):
    """Bug caught: state shared across the vmapped runs (a run's model must depend only on its
    own RunSpec). Checked bit for bit after a full-length training (1,000 steps, as the paper
    config) with both other runs replaced by other folds, seeds and labelled fractions."""
    x, y, masks = data
    config = TINY.replace(**{"schedule.ae_steps": 400, "schedule.gan_steps": 600, "schedule.log_every": 200})
    base = table.make_runs(config, y, masks)
    others = table.make_runs(config.replace(**{"cv.seed": 7, "cv.labeled_fraction": 0.2}), y, masks[::-1])
    mixed = jax.tree.map(lambda a, b: np.stack([b[0], a[1], b[2]]), base, others)
    first = table.train_runs(config, x, y, base, mesh=ONE_DEVICE).state
    second = table.train_runs(config, x, y, mixed, mesh=ONE_DEVICE).state
    run1 = lambda s: jax.tree.leaves(jax.tree.map(lambda a: np.asarray(a[1]), s))
    for u, v in zip(run1(first), run1(second), strict=True):
        np.testing.assert_array_equal(u, v)


def test_numeric_settings_are_data_not_new_compilations(data):
    """Bug caught: a labelled fraction, learning rate or seed baked into the program, so every
    setting of a sweep recompiles."""
    x, y, masks = data
    _train(TINY, x, y, masks)
    compiled = engine.fused_chunk_fn(table.TRAINER, TINY.structure(), "gan", 4)
    n_programs, n_chunk_fns = compiled._cache_size(), engine.fused_chunk_fn.cache_info().currsize
    for changes in (
        {"cv.labeled_fraction": 0.1},
        {"schedule.d_lr": 3e-4, "schedule.unsupervised_weight": 0.5},
        {"cv.seed": 5},
    ):
        _train(TINY.replace(**changes), x, y, masks)
        assert TINY.replace(**changes).structure() == TINY.structure(), changes
    assert engine.fused_chunk_fn(table.TRAINER, TINY.structure(), "gan", 4) is compiled
    assert compiled._cache_size() == n_programs
    assert engine.fused_chunk_fn.cache_info().currsize == n_chunk_fns  # no chunk for another structure


def test_labelled_rows_must_be_training_rows_with_both_classes(data):
    x, y, masks = data
    bad = masks.copy()
    bad[0, np.flatnonzero(~masks[0])[0]] = True
    with pytest.raises(ValueError, match="run 0: row .* is labelled but not a training row"):
        table.make_runs(TINY, y, masks, labeled_masks=bad)
    one_class = masks & (y == 0)
    with pytest.raises(ValueError, match="run 0: its labelled rows must hold both classes"):
        table.make_runs(TINY, y, masks, labeled_masks=one_class)
