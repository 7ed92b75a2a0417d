"""The reproduction study: the paper pipeline, its ablations and the scikit-learn baselines,
all on the same repeated stratified k-fold splits; then the label-scarcity study.

Run:    gan-jax reproduce            (writes results/; `--quick` for a 2×2-fold smoke run)
        gan-jax train -e ablations:no_gan     (one ablation alone)
Result: results/README.md, written by that command; nothing in this docstring is a claim.

Each ablation changes one thing of the paper config. Nothing here was chosen by looking at
test folds: the settings are fixed before the study runs.
"""

from gan_jax.config import Config, load_experiment, quick_variant, split_quick

# The study's claimed numbers (single undisclosed split), reproduced only as the paper's claims.
PAPER_CLAIMS = {"accuracy": 0.9852, "precision": 0.9820, "recall": 0.9775, "f1": 0.9833}

BASELINES = ("logistic_regression", "svm_rbf", "random_forest", "gradient_boosting", "mlp")

# Labelled share of each training fold in the label-scarcity study. A 10-fold training fold of
# WDBC holds ~512 rows (~321 benign, ~191 malignant): 1 % is ~5 labels (3 + 2), the fewest that
# keep both classes; 2 %, 5 %, 10 % (~10, 26, 51) are where semi-supervised GANs claim gains
# (Salimans et al. 2016 used 20-100 labels per class on MNIST/CIFAR); 25 % (~128) and 100 % show
# whether the gap closes once labels are plentiful.
LABEL_FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


def get_variants(base: Config | None = None) -> dict[str, Config]:
    """Model name -> config; the first is the paper pipeline, the rest each change one thing."""
    base = base or load_experiment("paper")
    return {
        "paper (AE → SGAN)": base,
        "no autoencoder": base.replace(name="no_autoencoder", **{"model.use_autoencoder": False}),
        "no GAN (supervised)": base.replace(name="no_gan", **{"model.use_gan": False}),
        "z-score scaling": base.replace(name="zscore", **{"data.scaler": "zscore"}),
        "latent 4": base.replace(name="latent_4", **{"model.latent_dim": 4}),
        "latent 32": base.replace(name="latent_32", **{"model.latent_dim": 32}),
        "generator eq. 7": base.replace(name="gen_eq7", **{"schedule.gen_loss": "eq7"}),
    }


def get_config(arg: str = "paper") -> Config:
    """One variant by its config name (paper, no_autoencoder, no_gan, zscore, latent_4, ...);
    "quick" (alone or after a comma: "no_gan,quick") makes it tiny."""
    variant, quick = split_quick(arg)
    by_name = {c.name: c for c in get_variants().values()}
    variant = variant or "paper"
    if variant not in by_name:
        raise ValueError(f"ablations has no variant {variant!r}; choose one of {sorted(by_name)}")
    return quick_variant(by_name[variant]) if quick else by_name[variant]
