"""Synthetic patients: a conditional GAN (Mirza & Osindero 2014; label concatenated to D's input)
conditioned on the diagnosis, trained by `gan_jax.training.synth.train_synth_runs` (one fused,
run-vmapped call over all CV runs), in a per-feature normal-score space (each feature through
256 quantiles of the run's training rows, `synth.quantiles`), 4000 steps at learning rate 5e-4.

Run:    gan-jax synth-report --runs 10 --experiment synth --compare synth:log1p --out results \
            --name synth_report
        python -m benchmarks.ctgan_bench --out results
        gan-jax synth --experiment synth --n-per-class 500 --out results/synthetic/wdbc_synth.csv
Result: results/synth_report.md and results/ctgan_bench.md (written by those commands); nothing
in this docstring is a claim.

Variant "log1p": the earlier setting (AC-GAN, log1p + z-score space, 2000 steps at 2e-4), kept to
compare with. The changes (quantiles, then more steps, then the cGAN at a higher
learning rate) were each kept where they lowered the mean detection AUC in scratch runs; the
report measures the result against "log1p" on its own runs.
Folds: 20 × repeated stratified 5-fold (100 runs), so a run's hold-out has 114 real rows rather
than 57. The changes from "log1p" were chosen on the first 4 runs of the paper's 10-fold folds,
scored by the report's own metrics on those runs' held-out rows; the report's runs (this 5-fold)
overlap them in rows, so its numbers are not a fully independent test of that choice.
"""

from gan_jax.config import Config, CVConfig, SynthConfig, quick_variant, split_quick

VARIANTS = {
    "": {"model": "cgan", "quantiles": 256, "steps": 4000, "g_lr": 5e-4, "d_lr": 5e-4},
    "log1p": {"model": "acgan"},  # the earlier default: log1p + z-score space, 2000 steps at 2e-4
}


def get_config(arg: str = "") -> Config:
    """The synthesiser's config; "log1p": the earlier setting; "quick": a tiny variant."""
    variant, quick = split_quick(arg)
    if variant not in VARIANTS:
        raise ValueError(f"synth has no variant {variant!r} (known: {sorted(VARIANTS)} and 'quick')")
    name = "synth" + (f"_{variant}" if variant else "")
    config = Config(name=name, synth=SynthConfig(**VARIANTS[variant]), cv=CVConfig(n_folds=5, n_repeats=20))
    return quick_variant(config) if quick else config


def get_acgan_config() -> Config:
    """The AC-GAN variant (auxiliary class head on D), otherwise identical."""
    return get_config().replace(name="synth_acgan", **{"synth.model": "acgan"})
