import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import conv, losses

KEY = jax.random.key(0)
IMAGE = (8, 8, 1)  # tiny variants have 2 stride-2 stages: 8 → 4 → 2


def init(module, *args):
    # Jitted: eager flax would compile op by op and make these tests slow.
    return jax.jit(module.init)(KEY, *args)["params"]


def apply(module, params, *args, **kw):
    return jax.jit(lambda p, *a: module.apply({"params": p}, *a, **kw))(params, *args)


def n_params(params) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def conv_p(cin, cout, k=4):
    return k * k * cin * cout + cout


def dense(i, o):
    return i * o + o


def layer_norm(c):
    return 2 * c


def test_tiny_autoencoder_shapes_and_exact_params():
    # Catches a decoder that does not mirror the encoder or a wrong flatten size.
    ae = conv.TinyAutoEncoder(image_shape=IMAGE)
    x = jnp.zeros((5, *IMAGE))
    params = init(ae, x)
    encoder = conv_p(1, 4) + conv_p(4, 8) + dense(2 * 2 * 8, 3)
    decoder = dense(3, 2 * 2 * 8) + conv_p(8, 4, k=3) + conv_p(4, 1, k=3)  # resize + 3×3 conv upsamplings
    assert n_params(params["encoder"]) == encoder
    assert n_params(params["decoder"]) == decoder
    assert n_params(params) == encoder + decoder == 687 + 457
    out = apply(ae, params, x)
    assert out.shape == (5, *IMAGE) and out.dtype == jnp.float32
    h = apply(ae, params, x, method=conv.ConvAutoEncoder.encode)
    assert h.shape == (5, 3) and float(jnp.max(jnp.abs(h))) < 1.0
    assert apply(ae, params, h, method=conv.ConvAutoEncoder.decode).shape == (5, *IMAGE)


def test_tiny_generator_shapes_and_exact_params():
    gen = conv.TinyGenerator(image_shape=(8, 8, 3))
    z = jax.random.normal(KEY, (7, 10)) * 10
    params = init(gen, z)
    expected = dense(10, 2 * 2 * 8) + layer_norm(8) + conv_p(8, 4, k=3) + layer_norm(4) + conv_p(4, 3, k=3)
    assert n_params(params) == expected
    out = apply(gen, params, z)
    assert out.shape == (7, 8, 8, 3)
    assert float(jnp.max(jnp.abs(out))) <= 1.0  # tanh: the range real images are scaled to


def test_tiny_discriminator_matches_the_mlp_interface():
    # Same (logits [B, K], features [B, hidden]) as mlp.DiscriminatorClassifier, so the SGAN
    # losses apply unchanged.
    disc = conv.TinyDiscriminator(num_classes=2)
    x = jax.random.uniform(KEY, (9, *IMAGE), minval=-1, maxval=1)
    params = init(disc, x)
    assert n_params(params) == conv_p(1, 4) + conv_p(4, 8) + dense(2 * 2 * 8, 6) + dense(6, 2)
    logits, features = apply(disc, params, x)
    assert logits.shape == (9, 2) and features.shape == (9, 6)
    loss = losses.sgan_discriminator_loss(logits, jnp.zeros(9, jnp.int32), logits, logits)
    assert np.isfinite(float(loss))


def test_default_64px_variants_shapes():
    x = jnp.zeros((2, 64, 64, 3))
    shapes = jax.eval_shape(lambda: conv.AutoEncoder64(image_shape=(64, 64, 3)).init(KEY, x))
    out = jax.eval_shape(lambda p: conv.AutoEncoder64(image_shape=(64, 64, 3)).apply(p, x), shapes)
    assert out.shape == (2, 64, 64, 3)
    gen = conv.Generator64(image_shape=(64, 64, 3))
    g = jax.eval_shape(lambda: gen.apply(gen.init(KEY, jnp.zeros((2, 100))), jnp.zeros((2, 100))))
    assert g.shape == (2, 64, 64, 3)


def test_bf16_compute_keeps_f32_params_and_outputs():
    # Mixed precision: bf16 matmuls/convs, float32 master weights and float32 losses.
    disc = conv.TinyDiscriminator(dtype=jnp.bfloat16)
    x = jnp.zeros((3, *IMAGE))
    params = init(disc, x)
    assert {p.dtype for p in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    logits, features = apply(disc, params, x)
    assert logits.dtype == jnp.float32 and features.dtype == jnp.float32
    f32_logits, _ = apply(conv.TinyDiscriminator(), params, x)
    np.testing.assert_allclose(logits, f32_logits, atol=0.05)


def test_image_size_must_divide():
    gen = conv.TinyGenerator(image_shape=(10, 10, 1))
    with pytest.raises(ValueError, match="divisible by 4"):
        gen.init(KEY, jnp.zeros((1, 4)))
