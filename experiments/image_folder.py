"""Your own pictures: a folder `<split>/<label>/*.png|jpg` (e.g. train/ and test/, each with
benign/ and malignant/) or `<label>/*` (no split: repeated stratified k-fold). Every picture is
converted and resized to 64×64 RGB (32×32 on a CPU) with PIL's bilinear filter; keep the files'
own shape with --set data.image_shape=None (they must then all share it). Class folders other
than benign/malignant need a mapping: --set data.malignant=tumour (or tumour,cancer).

Run:    gan-jax image-study -e image_folder --data FOLDER --out results/my_images (GPU/TPU)
        gan-jax image-study -e image_folder:cpu --data FOLDER (a CPU)
        (FOLDER local, s3:// or gs://; grey pictures: --set data.image_shape=(64,64,1))
Result: <out>/image_study.md, written by that command; nothing in this docstring is a claim.
"""

from gan_jax.config import IMAGES, Config, ConvConfig, quick_variant, split_quick


def get_config(arg: str = "full") -> Config:
    """Variant "full" (an accelerator: 64×64, 10 × 10-fold or 10 seeds) or "cpu" (32×32, 2 × 5-fold);
    add ",quick" (or --quick) for a smoke run."""
    full = IMAGES.replace(
        name="image_folder",
        model=ConvConfig(image_shape=(64, 64, 3), compute_dtype="bfloat16"),
        # uri: --data FOLDER
        data=IMAGES.data.replace(uri="", image_shape=(64, 64, 3), n_images=None, pool=4),
        schedule=IMAGES.schedule.replace(batch_size=128, ae_steps=1000, gan_steps=5000, log_every=500),
        cv=IMAGES.cv.replace(n_folds=10, n_repeats=10, labeled_fractions=(1.0, 0.1)),
    )
    cpu = full.replace(
        name="image_folder_cpu",
        model=ConvConfig(
            image_shape=(32, 32, 3),
            features=(8, 16),
            gen_features=(16, 8),
            disc_hidden=32,
            latent_dim=16,
            noise_dim=16,
        ),
        data=full.data.replace(image_shape=(32, 32, 3), n_images=2000, pool=2),
        schedule=IMAGES.schedule.replace(batch_size=32, d_lr=2e-3, ae_steps=50, gan_steps=300, log_every=50),
        cv=full.cv.replace(n_folds=5, n_repeats=2),
    )
    variants = {"full": full, "cpu": cpu}
    variant, quick = split_quick(arg)
    variant = variant or "full"
    if variant not in variants:
        raise ValueError(f"image_folder has no variant {variant!r}; choose one of {sorted(variants)}")
    return quick_variant(variants[variant]) if quick else variants[variant]
