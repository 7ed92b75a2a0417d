"""The paper's pipeline (Ramar & Rathna): min-max scaling → autoencoder → semi-supervised GAN
whose discriminator is the classifier, under 10 × repeated stratified 10-fold CV on WDBC.

Run:    gan-jax train --experiment paper
Result: see results/README.md (written by `gan-jax reproduce`), which records what this
        config reaches on the bundled data; nothing in this docstring is a claim.
"""

from gan_jax.config import Config


def get_config() -> Config:
    return Config(name="paper")
