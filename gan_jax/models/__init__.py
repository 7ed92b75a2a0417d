"""Flax linen modules: MLP autoencoder, generator and semi-supervised discriminator-classifier."""

from gan_jax.models.mlp import (
    MLP,
    AutoEncoder,
    AuxClassifierDiscriminator,
    ConditionalDiscriminator,
    ConditionalGenerator,
    Decoder,
    DiscriminatorClassifier,
    Encoder,
    Generator,
)

__all__ = [
    "MLP",
    "AutoEncoder",
    "AuxClassifierDiscriminator",
    "ConditionalDiscriminator",
    "ConditionalGenerator",
    "Decoder",
    "DiscriminatorClassifier",
    "Encoder",
    "Generator",
]
from gan_jax.models.conv import ConvAutoEncoder, ConvDiscriminatorClassifier, ConvEncoder, ConvGenerator  # noqa: E402

__all__ += ["ConvAutoEncoder", "ConvDiscriminatorClassifier", "ConvEncoder", "ConvGenerator"]
