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

from gan_jax.config import split_quick
from gan_jax.studies.image_data import ImageData
from gan_jax.studies.image_study import ImageStudyConfig, quick_variant
from gan_jax.training.image import ImageConfig

DATA = ImageData(uri="~/.medmnist/breastmnist.npz")  # 28×28×1, its own shape


def get_config(arg: str = "full") -> ImageStudyConfig:
    """Variant "full" (an accelerator: 10 seeds, 3000 GAN steps) or "cpu" (4 seeds, 300 steps);
    add ",quick" (or --quick) for a smoke run."""
    full = ImageStudyConfig(
        name="breastmnist",
        model=ImageConfig(image_shape=(28, 28, 1), batch_size=64, features=(32, 64), gen_features=(64, 32)),
        data=DATA,
        n_images=None,
        n_folds=5,
        n_repeats=2,
        labeled_fractions=(1.0, 0.1),
        ae_steps=500,
        gan_steps=3000,
        log_every=250,
        pool=2,
    )
    cpu = full.replace(
        name="breastmnist_cpu",
        model=ImageConfig(
            image_shape=(28, 28, 1),
            batch_size=32,
            features=(8, 16),
            gen_features=(16, 8),
            disc_hidden=32,
            latent_dim=16,
            noise_dim=16,
            d_lr=2e-3,
        ),
        n_folds=2,
        n_repeats=2,
        ae_steps=50,
        gan_steps=300,
        log_every=50,
    )
    variants = {"full": full, "cpu": cpu}
    variant, quick = split_quick(arg)
    variant = variant or "full"
    if variant not in variants:
        raise ValueError(f"breastmnist has no variant {variant!r}; choose one of {sorted(variants)}")
    return quick_variant(variants[variant]) if quick else variants[variant]
