"""PatchCamelyon (TFDS `patch_camelyon`): 327,680 H&E lymph-node patches of 96×96×3, with its
own train/validation/test split; 1 = metastatic tissue in the centre 32×32. The conv SGAN
against the same classifier supervised only and a pixel logistic regression, trained on
`train`, scored on `test`, with all and with 1 % labels.

Data:   prepared once in the array_record format (needs TensorFlow, `pip install
        'gan_jax[tfds-build]'`): `tfds build patch_camelyon --file_format=array_record
        --data_dir DIR`; reading it needs no TensorFlow.
Run:    gan-jax image-study -e pcam --data-dir DIR --out results/pcam (GPU/TPU; every image,
        about 8 GB of uint8 pixels in host and device memory)
        gan-jax image-study -e pcam:cpu --data-dir DIR (a CPU: 4,000 images resized to 32×32)
Result: <out>/image_study.md, written by that command; nothing in this docstring is a claim.
"""

from gan_jax.config import IMAGES, Config, ConvConfig, quick_variant, split_quick


def get_config(arg: str = "full") -> Config:
    """Variant "full" (an accelerator: all images at 96×96, 10 seeds) or "cpu" (4,000 at 32×32);
    add ",quick" (or --quick) for a smoke run."""
    full = IMAGES.replace(
        name="pcam",
        model=ConvConfig(image_shape=(96, 96, 3), compute_dtype="bfloat16"),
        data=IMAGES.data.replace(uri="tfds:patch_camelyon", n_images=None, pool=4),
        schedule=IMAGES.schedule.replace(batch_size=256, ae_steps=2000, gan_steps=20000, log_every=1000),
        cv=IMAGES.cv.replace(n_folds=5, n_repeats=2, labeled_fractions=(1.0, 0.01)),
    )
    cpu = full.replace(
        name="pcam_cpu",
        model=ConvConfig(
            image_shape=(32, 32, 3),
            features=(8, 16),
            gen_features=(16, 8),
            disc_hidden=32,
            latent_dim=16,
            noise_dim=16,
        ),
        data=full.data.replace(image_shape=(32, 32, 3), n_images=4000, pool=2),
        schedule=IMAGES.schedule.replace(batch_size=32, d_lr=2e-3, ae_steps=50, gan_steps=300, log_every=50),
        cv=full.cv.replace(n_folds=2, n_repeats=2, labeled_fractions=(1.0, 0.1)),
    )
    variants = {"full": full, "cpu": cpu}
    variant, quick = split_quick(arg)
    variant = variant or "full"
    if variant not in variants:
        raise ValueError(f"pcam has no variant {variant!r}; choose one of {sorted(variants)}")
    return quick_variant(variants[variant]) if quick else variants[variant]
