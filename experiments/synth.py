"""Synthetic patients: an AC-GAN (Odena et al. 2017) conditioned on the diagnosis, in the
log1p + z-score space of each training fold, trained by `gan_jax.training.synth.train_synth_runs` (one fused,
run-vmapped call over all CV runs).

Run:    gan-jax synth --experiment synth --n-per-class 500 --out results/synthetic/wdbc_synth.csv
        gan-jax synth-report --synthetic results/synthetic/wdbc_synth.csv --out results
Result: results/synth_report.md (written by that command); nothing in this docstring is a claim.

Folds: 20 × repeated stratified 5-fold (100 runs), so the report's hold-out (run 0's test
rows) has 114 real rows rather than 57. Settings were fixed before any report was computed;
none was chosen on held-out rows.
"""

from gan_jax.config import Config, CVConfig, SynthConfig, quick_variant, split_quick


def get_config(arg: str = "") -> Config:
    """The synthesiser's config; "quick": its tiny variant."""
    variant, quick = split_quick(arg)
    if variant:
        raise ValueError(f"synth has no variant {variant!r} (only 'quick')")
    config = Config(name="synth", synth=SynthConfig(model="acgan"), cv=CVConfig(n_folds=5, n_repeats=20))
    return quick_variant(config) if quick else config


def get_cgan_config() -> Config:
    """The conditional-GAN variant (label concatenated to D's input), otherwise identical."""
    return get_config().replace(name="synth_cgan", **{"synth.model": "cgan"})
