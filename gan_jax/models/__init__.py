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
    "MLP", "AutoEncoder", "AuxClassifierDiscriminator", "ConditionalDiscriminator",
    "ConditionalGenerator", "Decoder", "DiscriminatorClassifier", "Encoder", "Generator",
]  # fmt: skip
