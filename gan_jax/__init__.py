"""gan_jax: breast-cancer detection with an autoencoder and a semi-supervised GAN in JAX."""

__version__ = "0.1.0"
