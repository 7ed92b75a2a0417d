import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.training import augment
from gan_jax.training.augment import NO_AUGMENT, AugmentConfig

KEY = jax.random.key(0)
# Jitted once per shape: eager dm-pix would compile every small op and make the suite slow.
rotate = jax.jit(augment.rotate, static_argnames=("mode", "cval"))
random_augment = jax.jit(augment.random_augment, static_argnums=2)
augment_batch = jax.jit(augment.augment_batch, static_argnums=2)
affine_resample = jax.jit(augment.affine_resample)


def image(h=9, w=9, c=3, seed=0):
    return jax.random.uniform(jax.random.key(seed), (h, w, c), minval=-1.0, maxval=1.0)


def test_rotate_90_equals_rot90():
    # Catches a clockwise/counter-clockwise mix-up or a rotation about the wrong centre (eq. 3).
    x = image()
    out = rotate(x, jnp.float32(math.pi / 2))
    np.testing.assert_allclose(out, jnp.rot90(x, k=1, axes=(0, 1)), atol=1e-5)
    out = rotate(x, jnp.float32(-math.pi / 2))
    np.testing.assert_allclose(out, jnp.rot90(x, k=-1, axes=(0, 1)), atol=1e-5)


def test_rotate_90_on_even_size_interior():
    # An even side has its centre between pixels; the rotation must still be exact there.
    x = image(8, 8, 1)
    out = rotate(x, jnp.float32(math.pi / 2))
    np.testing.assert_allclose(out[1:-1, 1:-1], jnp.rot90(x)[1:-1, 1:-1], atol=1e-5)


def test_rotate_zero_is_identity_and_keeps_shape_dtype():
    x = image(7, 5, 2).astype(jnp.bfloat16)
    out = rotate(x, jnp.float32(0.0))
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(out, x)


def test_rotation_interpolates_and_fills():
    # A 45° turn must blend neighbours (bilinear, not nearest) and fill corners with cval.
    x = jnp.zeros((9, 9, 1)).at[:, 4:].set(1.0)
    out = rotate(x, jnp.float32(math.pi / 4), mode="constant", cval=-1.0)
    assert float(out[0, 0, 0]) == -1.0  # corner came from outside
    values = np.unique(np.round(np.asarray(out), 4))
    assert any(0.0 < v < 1.0 for v in values), values


def test_identity_config_is_identity():
    x = image()
    out = random_augment(KEY, x, NO_AUGMENT)
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("flip, np_flip", [("flip_lr", np.fliplr), ("flip_ud", np.flipud)])
def test_flips_equal_numpy_flip_and_are_involutions(flip, np_flip):
    # Catches a flip along the wrong axis: only this flip is on, so each output is x or its flip.
    config = AugmentConfig(**{**NO_AUGMENT.__dict__, flip: True})
    x = image()
    outs = [np.asarray(random_augment(jax.random.key(i), x, config)) for i in range(16)]
    flipped = [o for o in outs if not np.array_equal(o, x)]
    assert 0 < len(flipped) < 16
    for o in flipped:
        np.testing.assert_array_equal(o, np_flip(np.asarray(x)))
        np.testing.assert_array_equal(np_flip(o), x)


def test_per_sample_augmentations_differ_and_reproduce():
    # Catches one key shared by the whole batch (every sample transformed alike).
    x = jnp.broadcast_to(image(), (4, 9, 9, 3))
    fn = jax.jit(augment.augment_batch, static_argnums=2)
    out = fn(KEY, x, AugmentConfig())
    assert out.shape == x.shape and out.dtype == x.dtype
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.allclose(out[i], out[j])
    np.testing.assert_array_equal(out, fn(KEY, x, AugmentConfig()))
    assert not np.allclose(out, fn(jax.random.key(1), x, AugmentConfig()))
    # A sample's augmentation does not depend on the batch it is in.
    np.testing.assert_allclose(out[:2], fn(KEY, x[:2], AugmentConfig()), atol=1e-6)


def test_augment_stays_in_range():
    x = jnp.sign(image(16, 16, 3))  # values at ±1, where brightness would push them out
    out = augment_batch(KEY, jnp.stack([x, x]), AugmentConfig(brightness=0.5, contrast=0.5))
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0


def test_crop_zooms_in():
    # With crop only, the output is a magnified part of the input: a centred bright square grows.
    x = jnp.full((33, 33, 1), -1.0).at[12:21, 12:21].set(1.0)
    config = AugmentConfig(**{**NO_AUGMENT.__dict__, "min_crop_scale": 0.5})
    scale = 0.5
    out = affine_resample(x, jnp.float32(0), jnp.float32(scale), jnp.zeros(2))
    assert float(jnp.sum(out > 0)) > 3 * float(jnp.sum(x > 0))
    out = random_augment(KEY, x, config)
    assert float(jnp.sum(out > 0)) > float(jnp.sum(x > 0))


def test_bad_fill_mode_is_rejected():
    with pytest.raises(ValueError, match="fill_mode"):
        AugmentConfig(fill_mode="wrap")


def test_to_float_maps_uint8_onto_minus_one_one():
    out = augment.to_float(jnp.array([0, 255], jnp.uint8))
    np.testing.assert_array_equal(out, [-1.0, 1.0])
    assert augment.to_float(jnp.zeros(2, jnp.uint8), jnp.bfloat16).dtype == jnp.bfloat16
