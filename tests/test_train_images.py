"""Image training steps: learning, label hiding, one compile, and 8 devices = 1 device."""

import jax
import numpy as np
import pytest

from gan_jax.data import nuclei
from gan_jax.data.images import ArraySource
from gan_jax.training import augment, image, image_fit
from gan_jax.training.input_pipeline import ImageBatches

# One config and one 1-device mesh for every test but the 8-device one, so that the suite
# compiles each step once (compiles dominate its time on CPU).
CONFIG = image.TINY.replace(
    **{
        "model.image_shape": (16, 16, 3),
        "schedule.batch_size": 32,
        "model.features": (8, 16),
        "model.disc_hidden": 16,
        "schedule.d_lr": 2e-3,
        "model.augment": augment.NO_AUGMENT,
    }
)
MESH1 = image_fit.data_mesh(jax.devices()[:1])


def fit(config, data, **kw):
    return image_fit.fit(config, data, mesh=kw.pop("mesh", MESH1), **kw)


@pytest.fixture(scope="module")
def data():
    images, labels = nuclei.generate(64, seed=0, size=16)
    return ArraySource(images, labels)


def test_autoencoder_loss_falls(data):
    # Catches an AE step that does not update (or updates the wrong params).
    _, history = fit(CONFIG, data, ae_steps=40, gan_steps=0, log_every=10)
    assert history[-1]["ae"] < 0.7 * history[0]["ae"], history


def test_hidden_labels_never_matter(data):
    # Catches a supervised loss that reads labels of unlabelled rows: flipping every hidden
    # label must leave the trained parameters bit-identical.
    labeled = np.zeros(len(data), bool)
    labeled[::4] = True
    flipped = ArraySource(data.images, np.where(labeled, data.label_array, 1 - data.label_array))
    a, _ = fit(CONFIG, data, ae_steps=0, gan_steps=3, labeled=labeled)
    b, _ = fit(CONFIG, flipped, ae_steps=0, gan_steps=3, labeled=labeled)
    for x, y in zip(jax.tree.leaves(a.disc.params), jax.tree.leaves(b.disc.params)):
        np.testing.assert_array_equal(x, y)
    # ...while the labels of labelled rows do matter (the test above can fail).
    c, _ = fit(CONFIG, flipped, ae_steps=0, gan_steps=3, labeled=np.ones(len(data), bool))
    assert not all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a.disc.params), jax.tree.leaves(c.disc.params))
    )


def test_masked_loss_ignores_hidden_rows():
    logits = np.array([[2.0, -1.0], [0.0, 3.0], [1.0, 1.0]], np.float32)
    full = image.masked_supervised_loss(logits[:1], np.array([1]), np.array([True]))
    masked = image.masked_supervised_loss(logits, np.array([1, 0, 1]), np.array([True, False, False]))
    np.testing.assert_allclose(masked, full, rtol=1e-6)
    assert float(image.masked_supervised_loss(logits, np.zeros(3, int), np.zeros(3, bool))) == 0.0


def test_step_compiles_once_and_resume_is_exact(data):
    # Catches recompiles per step and a resume that replays or skips batches.
    full, _ = fit(CONFIG, data, ae_steps=2, gan_steps=4)
    assert image_fit.step_fn(CONFIG, "ae", MESH1)._cache_size() == 1
    assert image_fit.step_fn(CONFIG, "gan", MESH1)._cache_size() == 1
    half, _ = fit(CONFIG, data, ae_steps=2, gan_steps=1)
    resumed, _ = fit(CONFIG, data, ae_steps=2, gan_steps=4, state=half)
    for x, y in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(x, y)


def needs_8_devices():
    if len(jax.devices()) < 8:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=8 (tests/conftest.py)")


def test_eight_devices_equal_one_device(data):
    # Catches a data-parallel step whose gradients are per-shard (no all-reduce) or whose
    # batches depend on the device count: 8 simulated devices (set up by conftest.py) must
    # match 1 device. (CONFIG: the 1-device compile is shared with the other tests.)
    needs_8_devices()
    states = {
        n: fit(CONFIG, data, ae_steps=1, gan_steps=2, mesh=image_fit.data_mesh(jax.devices()[:n]))[0]
        for n in (1, 8)
    }
    leaves8 = jax.tree.leaves(states[8])
    assert len(leaves8[1].sharding.device_set) == 8  # really on 8 devices
    for a, b in zip(jax.tree.leaves(states[1]), leaves8):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-4, rtol=1e-4)


def test_gan_phase_starts_from_the_pretrained_encoder(data):
    # Catches the autoencoder's features being thrown away: one Adam step moves each weight by
    # about d_lr, so after one GAN step the discriminator's trunk is still the encoder's
    # trunk within a few d_lr (a fresh initialisation differs by ~0.1).
    state, _ = fit(CONFIG, data, ae_steps=2, gan_steps=1)
    enc = jax.tree.leaves(state.ae.params["encoder"]["trunk"])
    disc = jax.tree.leaves(state.disc.params["trunk"])
    for a, b in zip(enc, disc):
        np.testing.assert_allclose(a, b, atol=3 * CONFIG.schedule.d_lr)


def test_tiny_sgan_beats_chance_on_nuclei():
    # Catches an untrained or inverted classifier (e.g. serving the benign probability as
    # malignant): a tiny SGAN on 16×16 nuclei must beat chance clearly. Measured 0.76-0.78
    # test accuracy over seeds 0-2 at 150 steps; the threshold leaves room.
    train = nuclei.arrays("train", size=16, n=512)
    test = nuclei.arrays("test", size=16, n=512)
    state, _ = fit(CONFIG, train, ae_steps=0, gan_steps=150)
    probs = np.asarray(jax.jit(lambda s, x: image.predict_proba(CONFIG, s, x))(state, test.images))
    assert np.mean((probs > 0.5) == test.labels()) > 0.68


def test_gan_step_splits_its_work_over_devices(data):
    # Catches a data-parallel GAN step that runs the generator on the whole batch on every
    # device (noise drawn replicated): the devices' compiled FLOPs together must stay close to
    # the step's own FLOPs, not a multiple of them.
    needs_8_devices()
    mesh = image_fit.data_mesh(jax.devices()[:8])
    state = image_fit.init_replicated(CONFIG, mesh)
    with ImageBatches(data, CONFIG.schedule.batch_size, sharding=image_fit.batch_sharding(mesh)) as batches:
        batch = next(batches)
    labeled = np.ones(len(data), bool)
    lowered = image_fit.step_fn(CONFIG, "gan", mesh).lower(state, batch, labeled, jax.random.key(0))
    flops = lambda analysis: float((analysis[0] if isinstance(analysis, list) else analysis)["flops"])
    executed = flops(lowered.compile().cost_analysis()) * mesh.size
    assert executed < 1.3 * flops(lowered.cost_analysis()), executed / flops(lowered.cost_analysis())
