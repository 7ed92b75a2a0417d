"""The paper's pipeline (Ramar & Rathna): min-max scaling → autoencoder → semi-supervised GAN
whose discriminator is the classifier, under 10 × repeated stratified 10-fold CV on WDBC.

Run:    gan-jax train --experiment paper          (--quick: get_config("quick"), a smoke run)
Result: see results/README.md (written by `gan-jax reproduce`), which records what this
        config reaches on the bundled data; nothing in this docstring is a claim.
"""

from gan_jax.config import Config, quick_variant, split_quick


def get_config(arg: str = "") -> Config:
    """The paper config; "quick": its tiny variant."""
    variant, quick = split_quick(arg)
    if variant:
        raise ValueError(f"paper has no variant {variant!r} (only 'quick')")
    config = Config(name="paper")
    return quick_variant(config) if quick else config
