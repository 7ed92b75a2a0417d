import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import AutoEncoder, DiscriminatorClassifier, Encoder, Generator


def n_params(params) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def dense(i, o):
    return i * o + o


KEY = jax.random.key(0)


def test_autoencoder_shapes_and_params():
    ae = AutoEncoder(hidden=(64, 32), latent_dim=8, out_dim=30)
    x = jnp.ones((5, 30))
    params = ae.init(KEY, x)["params"]
    assert n_params(params) == (dense(30, 64) + dense(64, 32) + dense(32, 8)) + (
        dense(8, 32) + dense(32, 64) + dense(64, 30)
    )
    assert ae.apply({"params": params}, x).shape == (5, 30)
    h = ae.apply({"params": params}, x, method=AutoEncoder.encode)
    assert h.shape == (5, 8) and float(jnp.max(jnp.abs(h))) < 1.0  # tanh latent
    assert ae.apply({"params": params}, h, method=AutoEncoder.decode).shape == (5, 30)


def test_encoder_alone():
    enc = Encoder(hidden=(16,), latent_dim=4)
    params = enc.init(KEY, jnp.ones((1, 30)))["params"]
    assert n_params(params) == dense(30, 16) + dense(16, 4)


@pytest.mark.parametrize("bounded", [True, False])
def test_generator_shapes_and_params(bounded):
    gen = Generator(hidden=(64,), out_dim=16, bounded=bounded)
    z = jax.random.normal(KEY, (7, 10)) * 10
    params = gen.init(KEY, z)["params"]
    assert n_params(params) == dense(10, 64) + dense(64, 16)
    out = gen.apply({"params": params}, z)
    assert out.shape == (7, 16)
    assert (float(jnp.max(jnp.abs(out))) <= 1.0) == bounded


def test_discriminator_classifier_shapes_and_params():
    disc = DiscriminatorClassifier(hidden=(64, 32), num_classes=2)
    params = disc.init(KEY, jnp.ones((1, 16)))["params"]
    assert n_params(params) == dense(16, 64) + dense(64, 32) + dense(32, 2)
    logits, features = disc.apply({"params": params}, jnp.ones((9, 16)))
    assert logits.shape == (9, 2) and features.shape == (9, 32)
