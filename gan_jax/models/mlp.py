"""MLP modules for tabular data (WDBC).

Shapes: B = batch, F = input features (30), L = latent size, Z = noise size, K = classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
    """Dense layers with leaky-ReLU between them; the last layer is linear."""

    features: Sequence[int]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, width in enumerate(self.features):
            x = nn.Dense(width, name=f"dense_{i}")(x)
            if i < len(self.features) - 1:
                x = nn.leaky_relu(x, 0.2)
        return x


class Encoder(nn.Module):
    """f_θ: x [B, F] → latent code [B, L] in (-1, 1) (eq. 4)."""

    hidden: Sequence[int]
    latent_dim: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.tanh(MLP((*self.hidden, self.latent_dim))(x))


class Decoder(nn.Module):
    """g_φ: latent [B, L] → reconstruction [B, F] (eq. 4)."""

    hidden: Sequence[int]
    out_dim: int

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        return MLP((*self.hidden, self.out_dim))(h)


class AutoEncoder(nn.Module):
    """x̂ = g_φ(f_θ(x)) (eq. 4); the decoder mirrors the encoder's hidden widths."""

    hidden: Sequence[int]
    latent_dim: int
    out_dim: int

    def setup(self):
        self.encoder = Encoder(self.hidden, self.latent_dim)
        self.decoder = Decoder(tuple(reversed(self.hidden)), self.out_dim)

    def encode(self, x: jax.Array) -> jax.Array:
        return self.encoder(x)

    def decode(self, h: jax.Array) -> jax.Array:
        return self.decoder(h)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.decode(self.encode(x))


class Generator(nn.Module):
    """G(z) (eq. 5): noise [B, Z] → a sample [B, D] in the classifier's input space.

    With `bounded`, the output goes through tanh, matching the encoder's latent range.
    """

    hidden: Sequence[int]
    out_dim: int
    bounded: bool = False

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        x = MLP((*self.hidden, self.out_dim))(z)
        return jnp.tanh(x) if self.bounded else x


class DiscriminatorClassifier(nn.Module):
    """K class logits [B, K] and the last hidden features [B, H] (for feature matching).

    The probability that x is real is D(x) = Z / (Z + 1) with Z = Σ_k exp(logit_k), i.e.
    D(x) = σ(logsumexp(logits)): eq. 6 with the K-class head as its pre-activation.
    """

    hidden: Sequence[int]
    num_classes: int = 2

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        features = nn.leaky_relu(MLP(self.hidden)(x), 0.2)
        logits = nn.Dense(self.num_classes, name="head")(features)
        return logits, features


class ConditionalGenerator(nn.Module):
    """G(z, y): noise [B, Z] and class labels [B] → a row [B, F] in scaled feature space
    (conditional GAN, Mirza & Osindero 2014: the one-hot label is concatenated to the noise)."""

    hidden: Sequence[int]
    out_dim: int
    num_classes: int = 2

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array) -> jax.Array:
        h = jnp.concatenate([z, jax.nn.one_hot(y, self.num_classes, dtype=z.dtype)], axis=-1)
        return MLP((*self.hidden, self.out_dim))(h)


class ConditionalDiscriminator(nn.Module):
    """D(x, y) of a conditional GAN: rows [B, F] and labels [B] → real/fake logit [B]."""

    hidden: Sequence[int]
    num_classes: int = 2

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array) -> tuple[jax.Array, None]:
        h = jnp.concatenate([x, jax.nn.one_hot(y, self.num_classes, dtype=x.dtype)], axis=-1)
        return MLP((*self.hidden, 1))(h)[:, 0], None


class AuxClassifierDiscriminator(nn.Module):
    """AC-GAN discriminator (Odena et al. 2017): rows [B, F] → (real/fake logit [B], class
    logits [B, K]); it never sees the label, it predicts it. `y` is accepted and ignored so
    both discriminators share one call signature."""

    hidden: Sequence[int]
    num_classes: int = 2

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        del y
        features = nn.leaky_relu(MLP(self.hidden)(x), 0.2)
        source = nn.Dense(1, name="source")(features)[:, 0]
        return source, nn.Dense(self.num_classes, name="classes")(features)
