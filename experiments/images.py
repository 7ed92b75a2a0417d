"""The image path: the conv SGAN on the SYNTHETIC nuclei demo set (`gan_jax.data.nuclei`, not
patient data), against the same conv classifier trained supervised only and a logistic
regression on mean-pooled pixels, under repeated stratified k-fold, with all labels and with
10 % labelled.

Run:    gan-jax image-study --experiment images --out results
Result: results/image_study.md (written by that command); nothing in this docstring is a claim.

Sizes were chosen by measuring the fused trainer on the shared 2-core CPU (never by looking at
test folds) so that the whole study runs in a few minutes there: a run-step at 32×32 px cost
about ten times one at 16×16 px. Hence: 16×16 images (the classes still differ visibly: few
small round pale nuclei vs more, larger, darker, irregular ones), 2000 of them, 5-fold × 2
repeats = 10 runs per fraction, 2 fractions = 20 runs per conv model, 30 autoencoder + 100 GAN
steps of batch 32, a generator of widths (16, 8). The time of the last run is in
results/image_study.json. A GPU/TPU host would take 64×64 and 10 × 10-fold.
"""

from gan_jax.config import IMAGES, Config, ConvConfig, quick_variant, split_quick


def get_config(arg: str = "images") -> Config:
    """The study ("images"), or "full_labels" (100 % labelled only: half the cost); "quick"
    (alone or after a comma) makes it tiny."""
    variant, quick = split_quick(arg)
    variant = variant or "images"
    base = IMAGES.replace(
        name="images",
        model=ConvConfig(
            image_shape=(16, 16, 3),
            features=(8, 16),
            gen_features=(16, 8),
            disc_hidden=32,
            latent_dim=16,
            noise_dim=16,
        ),
        schedule=IMAGES.schedule.replace(
            batch_size=32, ae_lr=1e-3, d_lr=2e-3, g_lr=1e-3, ae_steps=30, gan_steps=100, log_every=50
        ),
        data=IMAGES.data.replace(n_images=2000, pool=2),
        cv=IMAGES.cv.replace(n_folds=5, n_repeats=2, labeled_fractions=(1.0, 0.1)),
    )
    variants = {
        "images": base,
        "full_labels": base.replace(name="images_full_labels", **{"cv.labeled_fractions": (1.0,)}),
    }
    if variant not in variants:
        raise ValueError(f"images has no variant {variant!r}; choose one of {sorted(variants)}")
    return quick_variant(variants[variant]) if quick else variants[variant]
