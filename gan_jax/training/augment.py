"""Image augmentation in JAX (paper eq. 3 and friends), per sample, inside jit.

Eq. 3 rotates an image by θ: x' = R(θ)·x, with R(θ) = [[cos θ, -sin θ], [sin θ, cos θ]] acting on
pixel coordinates about the image centre. Rotation, random crop and zoom are folded into one
affine resampling (bilinear, dm-pix), so an image is interpolated once however many of them
are on; flips are exact index reversals; brightness and contrast model stain variation.

Images are float [H, W, C] (a batch: [B, H, W, C]) in `AugmentConfig.value_range`. Every
function is pure and jit/vmap-safe; `augment_batch` draws an independent transform per sample.
"""

from __future__ import annotations

import dataclasses
import math

import dm_pix as pix
import jax
import jax.numpy as jnp

FILL_MODES = ("nearest", "constant")  # the modes dm-pix resamples fast on accelerators


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """What `random_augment` may do; frozen, so it can be a static argument of jit.

    Attributes:
      max_rotation: θ ~ U(-max_rotation, max_rotation), radians (eq. 3). π = any angle.
      flip_lr: flip left-right with probability 1/2.
      flip_ud: flip up-down with probability 1/2.
      min_crop_scale: the crop's side is s × the image side, s ~ U(min_crop_scale, 1), at a
        random position inside the image, then resized back to the full size. 1 = no crop.
      brightness: a delta ~ U(-brightness, brightness) × (range width) is added.
      contrast: deviations from each channel's mean are scaled by U(1 - contrast, 1 + contrast).
      fill_mode: how pixels rotated in from outside are filled: "nearest" (edge) or
        "constant" (`cval`).
      cval: the fill value for "constant".
      value_range: (low, high) of the images; results are clipped to it.
    """

    max_rotation: float = math.pi
    flip_lr: bool = True
    flip_ud: bool = True
    min_crop_scale: float = 0.85
    brightness: float = 0.05
    contrast: float = 0.1
    fill_mode: str = "nearest"
    cval: float = 0.0
    value_range: tuple[float, float] = (-1.0, 1.0)

    def __post_init__(self):
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode {self.fill_mode!r}: expected one of {FILL_MODES}")
        if not 0.0 < self.min_crop_scale <= 1.0:
            raise ValueError(f"min_crop_scale {self.min_crop_scale}: expected a value in (0, 1]")


NO_AUGMENT = AugmentConfig(
    max_rotation=0.0, flip_lr=False, flip_ud=False, min_crop_scale=1.0, brightness=0.0, contrast=0.0
)


def affine_resample(
    image: jax.Array,
    theta: jax.Array,
    scale: jax.Array,
    shift: jax.Array,
    mode: str = "nearest",
    cval: float = 0.0,
) -> jax.Array:
    """Rotates by θ (counter-clockwise, eq. 3) and zooms in by 1/scale about the centre moved by
    `shift`, with one bilinear resampling.

    Args:
      image: [H, W, C] float.
      theta: [] angle in radians; positive turns the picture counter-clockwise as displayed.
      scale: [] the sampled region's side as a fraction of the image side (1 = no zoom).
      shift: [2] (rows, cols) offset in pixels of the sampled region's centre.
      mode, cval: fill for pixels that come from outside the image (see `AugmentConfig`).
    Returns:
      [H, W, C], same dtype.
    """
    c, s = jnp.cos(theta), jnp.sin(theta)
    # Pull (output → input) map on (row, col): rows grow downwards, so a counter-clockwise turn
    # of the picture is R(-θ) in (row, col) space, and its pull map is R(θ) there.
    rot = jnp.array([[c, s], [-s, c]]) * scale
    centre = (jnp.asarray(image.shape[:2], jnp.float32) - 1.0) / 2.0
    offset = centre + shift - rot @ centre
    matrix = jnp.eye(3).at[:2, :2].set(rot)
    offset3 = jnp.concatenate([offset, jnp.zeros(1)])
    out = pix.affine_transform(image, matrix, offset=offset3, order=1, mode=mode, cval=cval)
    return out.astype(image.dtype)


def rotate(image: jax.Array, theta: jax.Array, mode: str = "nearest", cval: float = 0.0) -> jax.Array:
    """Eq. 3: the image [H, W, C] rotated counter-clockwise by θ radians about its centre."""
    return affine_resample(image, theta, jnp.float32(1.0), jnp.zeros(2), mode, cval)


def adjust_contrast(image: jax.Array, factor: jax.Array) -> jax.Array:
    """Scales each channel's deviations from its mean by `factor`."""
    mean = jnp.mean(image, axis=(-3, -2), keepdims=True)
    return (image - mean) * factor + mean


def random_augment(key: jax.Array, image: jax.Array, config: AugmentConfig) -> jax.Array:
    """One randomly augmented copy of `image` [H, W, C]; the transform is a function of `key`.

    Returns:
      [H, W, C], same dtype, clipped to `config.value_range`.
    """
    k_rot, k_scale, k_shift, k_lr, k_ud, k_bright, k_contrast = jax.random.split(key, 7)
    out = image
    # Steps that are switched off are skipped (not run with neutral values) so that they cost
    # nothing and leave the pixels bit-exact.
    if config.max_rotation > 0 or config.min_crop_scale < 1:
        theta = jax.random.uniform(k_rot, (), minval=-config.max_rotation, maxval=config.max_rotation)
        scale = jax.random.uniform(k_scale, (), minval=config.min_crop_scale, maxval=1.0)
        # The crop stays inside the image: its centre moves at most (1 - s)/2 of a side.
        room = (1.0 - scale) / 2.0 * (jnp.asarray(image.shape[:2], jnp.float32) - 1.0)
        shift = jax.random.uniform(k_shift, (2,), minval=-1.0, maxval=1.0) * room
        out = affine_resample(out, theta, scale, shift, config.fill_mode, config.cval)
    if config.flip_lr:
        out = jnp.where(jax.random.bernoulli(k_lr), out[:, ::-1], out)
    if config.flip_ud:
        out = jnp.where(jax.random.bernoulli(k_ud), out[::-1], out)
    low, high = config.value_range
    if config.brightness > 0:
        u = jax.random.uniform(k_bright, (), minval=-1.0, maxval=1.0)
        out = out + u * config.brightness * (high - low)
    if config.contrast > 0:
        u = jax.random.uniform(k_contrast, (), minval=-1.0, maxval=1.0)
        out = adjust_contrast(out, 1.0 + u * config.contrast)
    return jnp.clip(out, low, high).astype(image.dtype)


def augment_batch(key: jax.Array, images: jax.Array, config: AugmentConfig) -> jax.Array:
    """Independent random augmentation of each image in `images` [B, H, W, C].

    Sample i uses fold_in(key, i), so a sample's augmentation does not depend on the batch size.
    """
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(images.shape[0]))
    return jax.vmap(random_augment, in_axes=(0, 0, None))(keys, images, config)


def to_float(images: jax.Array, dtype=jnp.float32) -> jax.Array:
    """uint8 images (as the input pipeline delivers them) → `dtype` in [-1, 1], on device."""
    return (images.astype(dtype) / 127.5 - 1.0).astype(dtype)
