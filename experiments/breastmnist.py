"""BreastMNIST (MedMNIST v2): 780 breast ultrasound images, 28×28 grey, with its own
train/val/test split (546/78/156); labels 0 = malignant, 1 = normal or benign (read as
malignant = 1 here). The conv SGAN against the same classifier supervised only and a pixel
logistic regression, trained on `train`, scored on `test`, with all and with 10 % labels.

Data:   the MedMNIST `.npz` (e.g. `pip install medmnist` then `python -c "import medmnist;
        medmnist.BreastMNIST(split='test', download=True)"` writes ~/.medmnist/breastmnist.npz),
        or any `.npz` with the same keys (local, s3:// or gs://).
Run:    gan-jax image-study -e breastmnist --data ~/.medmnist/breastmnist.npz --out results/breastmnist
        (GPU/TPU; the default variant)
        gan-jax image-study -e breastmnist:cpu --data ~/.medmnist/breastmnist.npz (a CPU)
Result: <out>/image_study.md, written by that command; nothing in this docstring is a claim.
"""

from gan_jax.config import IMAGES, Config, ConvConfig, quick_variant, split_quick

# 28×28×1, its own shape; the pixel logistic regression's scaler as every image experiment's.
DATA = IMAGES.data.replace(uri="~/.medmnist/breastmnist.npz", n_images=None, pool=2)
# The small conv models a CPU trains in minutes.
CPU_MODEL = ConvConfig(
    image_shape=(28, 28, 1),
    features=(8, 16),
    gen_features=(16, 8),
    disc_hidden=32,
    latent_dim=16,
    noise_dim=16,
)


def get_config(arg: str = "full") -> Config:
    """Variant "full" (an accelerator: 10 seeds, 3000 GAN steps) or "cpu" (4 seeds, 300 steps);
    add ",quick" (or --quick) for a smoke run."""
    full = IMAGES.replace(
        name="breastmnist",
        model=ConvConfig(image_shape=(28, 28, 1), features=(32, 64), gen_features=(64, 32)),
        data=DATA,
        schedule=IMAGES.schedule.replace(batch_size=64, ae_steps=500, gan_steps=3000, log_every=250),
        cv=IMAGES.cv.replace(n_folds=5, n_repeats=2, labeled_fractions=(1.0, 0.1)),
    )
    cpu = full.replace(
        name="breastmnist_cpu",
        model=CPU_MODEL,
        schedule=IMAGES.schedule.replace(batch_size=32, d_lr=2e-3, ae_steps=50, gan_steps=300, log_every=50),
        cv=full.cv.replace(n_folds=2, n_repeats=2),
    )
    variants = {"full": full, "cpu": cpu}
    variant, quick = split_quick(arg)
    variant = variant or "full"
    if variant not in variants:
        raise ValueError(f"breastmnist has no variant {variant!r}; choose one of {sorted(variants)}")
    return quick_variant(variants[variant]) if quick else variants[variant]
