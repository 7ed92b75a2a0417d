"""Convolutional modules for images: autoencoder (eq. 4), DCGAN-style generator (eq. 5) and a
discriminator-classifier with the same outputs as `mlp.DiscriminatorClassifier`, so the SGAN
losses of `gan_jax.models.losses` apply unchanged.

Shapes: B = batch, H×W×C = image (H and W divisible by 2^len(features)), L = latent size,
Z = noise size, K = classes. Images live in [-1, 1] (`augment.to_float`).

`dtype` is the computation dtype (bf16 on accelerators); parameters stay float32 (flax's
`param_dtype` default), and every output is cast back to float32 so losses are computed in f32.
Downsampling is 4×4 stride-2 convolutions as in DCGAN (Radford et al. 2016); upsampling is a
nearest-neighbour ×2 resize followed by a 3×3 convolution (Odena et al. 2016, "Deconvolution and
checkerboard artifacts") instead of DCGAN's 4×4 stride-2 transposed convolution: it avoids
checkerboard artifacts, and XLA:CPU computes a transposed convolution's gradient more than an
order of magnitude slower than this layer's (measured once for a 16×16×128 → 32×32×64 layer).
There is no BatchNorm: its running statistics would add mutable state to a trainer
whose state is params + optimizer state; LayerNorm in the generator plays its part.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
_KERNEL = (4, 4)
_STRIDE = (2, 2)
_UP_KERNEL = (3, 3)


class ConvTrunk(nn.Module):
    """Images [B, H, W, C] → flattened features [B, H/2^n · W/2^n · features[-1]]: n stride-2
    convolutions with leaky-ReLU."""

    features: Sequence[int]
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(self.dtype)
        for i, width in enumerate(self.features):
            x = nn.Conv(width, _KERNEL, _STRIDE, padding="SAME", dtype=self.dtype, name=f"conv_{i}")(x)
            x = nn.leaky_relu(x, 0.2)
        return x.reshape((x.shape[0], -1))


class UpsampleStack(nn.Module):
    """Vector [B, D] → image [B, H, W, C] in (-1, 1): a dense layer to an (H/2^n, W/2^n,
    features[0]) map, then n ×2 upsamplings (resize + 3×3 conv; the last one to C channels)."""

    features: Sequence[int]  # widths from coarse to fine; n = len(features) upsamplings
    image_shape: tuple[int, int, int]
    normalize: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        height, width, channels = self.image_shape
        scale = 2 ** len(self.features)
        if height % scale or width % scale:
            raise ValueError(f"image {self.image_shape}: H and W must be divisible by {scale}")
        x = nn.Dense(height // scale * width // scale * self.features[0], dtype=self.dtype, name="project")(
            h.astype(self.dtype)
        )
        x = self._act(x.reshape((h.shape[0], height // scale, width // scale, self.features[0])), "norm_p")
        for i, w in enumerate(self.features[1:]):
            x = self._act(self._upsample(x, w, f"up_{i}"), f"norm_{i}")
        return jnp.tanh(self._upsample(x, channels, "to_image").astype(jnp.float32))

    def _upsample(self, x: jax.Array, width: int, name: str) -> jax.Array:
        """×2 nearest-neighbour resize, then a 3×3 convolution to `width` channels."""
        b, h, w, c = x.shape
        x = jax.image.resize(x, (b, 2 * h, 2 * w, c), "nearest")
        return nn.Conv(width, _UP_KERNEL, padding="SAME", dtype=self.dtype, name=name)(x)

    def _act(self, x: jax.Array, name: str) -> jax.Array:
        if self.normalize:
            x = nn.LayerNorm(dtype=self.dtype, name=name)(x)
        return nn.relu(x)


class ConvEncoder(nn.Module):
    """f_θ: images [B, H, W, C] → latent code [B, L] in (-1, 1) (eq. 4)."""

    features: Sequence[int]
    latent_dim: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = ConvTrunk(self.features, self.dtype, name="trunk")(x)
        return jnp.tanh(nn.Dense(self.latent_dim, dtype=self.dtype, name="latent")(x).astype(jnp.float32))


class ConvAutoEncoder(nn.Module):
    """x̂ = g_φ(f_θ(x)) (eq. 4) for images; the decoder mirrors the encoder's widths."""

    features: Sequence[int]
    latent_dim: int
    image_shape: tuple[int, int, int]
    dtype: Dtype = jnp.float32

    def setup(self):
        self.encoder = ConvEncoder(self.features, self.latent_dim, self.dtype)
        self.decoder = UpsampleStack(tuple(reversed(self.features)), self.image_shape, dtype=self.dtype)

    def encode(self, x: jax.Array) -> jax.Array:
        return self.encoder(x)

    def decode(self, h: jax.Array) -> jax.Array:
        return self.decoder(h)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decode(self.encode(x))


class ConvGenerator(nn.Module):
    """G(z) (eq. 5), DCGAN-style: noise [B, Z] → image [B, H, W, C] in (-1, 1)."""

    features: Sequence[int]  # coarse to fine, e.g. (256, 128, 64) for 64×64 from 8×8
    image_shape: tuple[int, int, int]
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        return UpsampleStack(self.features, self.image_shape, normalize=True, dtype=self.dtype, name="up")(z)


class ConvDiscriminatorClassifier(nn.Module):
    """K class logits [B, K] and the last hidden features [B, hidden] of images [B, H, W, C].

    As in `mlp.DiscriminatorClassifier`: D(x) = σ(logsumexp(logits)) is eq. 6, and the features
    serve feature matching.
    """

    features: Sequence[int]
    hidden: int
    num_classes: int = 2
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = ConvTrunk(self.features, self.dtype, name="trunk")(x)
        features = nn.leaky_relu(nn.Dense(self.hidden, dtype=self.dtype, name="hidden")(x), 0.2)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(features)
        return logits.astype(jnp.float32), features.astype(jnp.float32)


# Variants: the default for 64×64 images and a tiny one for tests.
AutoEncoder64 = functools.partial(ConvAutoEncoder, features=(32, 64, 128), latent_dim=64)
Generator64 = functools.partial(ConvGenerator, features=(256, 128, 64))
Discriminator64 = functools.partial(ConvDiscriminatorClassifier, features=(32, 64, 128), hidden=128)
TinyAutoEncoder = functools.partial(ConvAutoEncoder, features=(4, 8), latent_dim=3)
TinyGenerator = functools.partial(ConvGenerator, features=(8, 4))
TinyDiscriminator = functools.partial(ConvDiscriminatorClassifier, features=(4, 8), hidden=6)
