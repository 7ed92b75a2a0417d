"""Config layout version 1, as results JSON, checkpoints and bundles written before sections
store it, read into the sectioned layout (version 2); and the old flat setting names, which
`gan-jax --set` still accepts.

Version 1 had three forms: one flat dict of the table `Config`'s fields; the image study's dict
(its own fields, with the conv model's settings and the data's in nested dicts); and the conv
model's own flat dict (`ImageConfig`, as image bundles stored it).
"""

from __future__ import annotations

from typing import Any

# Old flat name (config layout 1, and `--set NAME=...` before sections) → dotted path.
FLAT_PATHS = {
    "name": "name",
    "data": "data.uri",
    "scaler": "data.scaler",
    "use_autoencoder": "model.use_autoencoder",
    "latent_dim": "model.latent_dim",
    "ae_hidden": "model.ae_hidden",
    "use_gan": "model.use_gan",
    "disc_hidden": "model.disc_hidden",
    "gen_hidden": "model.gen_hidden",
    "noise_dim": "model.noise_dim",
    "ae_steps": "schedule.ae_steps",
    "gan_steps": "schedule.gan_steps",
    "batch_size": "schedule.batch_size",
    "log_every": "schedule.log_every",
    "ae_lr": "schedule.ae_lr",
    "d_lr": "schedule.d_lr",
    "g_lr": "schedule.g_lr",
    "unsupervised_weight": "schedule.unsupervised_weight",
    "gen_loss": "schedule.gen_loss",
    "n_folds": "cv.n_folds",
    "n_repeats": "cv.n_repeats",
    "labeled_fraction": "cv.labeled_fraction",
    "seed": "cv.seed",
    "synth_model": "synth.model",
    "synth_scaler": "synth.scaler",
    "synth_log1p": "synth.log1p",
    "synth_gen_hidden": "synth.gen_hidden",
    "synth_disc_hidden": "synth.disc_hidden",
    "synth_noise_dim": "synth.noise_dim",
    "synth_steps": "synth.steps",
    "synth_batch_size": "synth.batch_size",
    "synth_g_lr": "synth.g_lr",
    "synth_d_lr": "synth.d_lr",
}

# The image study's version-1 fields (`ImageStudyConfig`) → dotted path; "model" held the conv
# model's settings and its schedule's, "data" the data's (`IMAGE_MODEL_PATHS`).
IMAGE_STUDY_PATHS = {
    "name": "name",
    "n_images": "data.n_images",
    "data_seed": "data.data_seed",
    "pool": "data.pool",
    "scaler": "data.scaler",
    "n_folds": "cv.n_folds",
    "n_repeats": "cv.n_repeats",
    "labeled_fractions": "cv.labeled_fractions",
    "seed": "cv.seed",
    "ae_steps": "schedule.ae_steps",
    "gan_steps": "schedule.gan_steps",
    "log_every": "schedule.log_every",
    "n_samples": "n_samples",
}
IMAGE_SCHEDULE_FIELDS = ("batch_size", "ae_lr", "d_lr", "g_lr", "unsupervised_weight", "gen_loss")
IMAGE_MODEL_SEED = "seed"  # the conv model's own seed: one seed now, the study's


def is_image_study(d: dict[str, Any]) -> bool:
    """Whether a version-1 dict is an image study's (its model is a dict of conv settings)."""
    return isinstance(d.get("model"), dict)


def is_image_model(d: dict[str, Any]) -> bool:
    """Whether a version-1 dict is a conv model's own (`ImageConfig`: image bundles)."""
    return "image_shape" in d and "model" not in d


def image_model_paths(d: dict[str, Any]) -> dict[str, Any]:
    """A version-1 conv model dict (`ImageConfig`) → {dotted path: value}; its seed → cv.seed."""
    return image_study_paths({"model": d} | ({"seed": d["seed"]} if "seed" in d else {}))


def flat_paths(d: dict[str, Any]) -> dict[str, Any]:
    """A version-1 table config dict → {dotted path: value}.

    Raises:
      ValueError: unknown fields (named, with the known ones).
    """
    unknown = sorted(set(d) - set(FLAT_PATHS))
    if unknown:
        raise ValueError(f"unknown config fields {unknown} (config layout 1); known: {sorted(FLAT_PATHS)}")
    return {FLAT_PATHS[k]: v for k, v in d.items()}


def image_study_paths(d: dict[str, Any]) -> dict[str, Any]:
    """A version-1 image study dict → {dotted path: value} (the model's seed, which every study
    kept equal to its own, is dropped: one seed now).

    Raises:
      ValueError: unknown fields (named, with the known ones).
    """
    d = dict(d)
    model, data = dict(d.pop("model")), dict(d.pop("data", {}))
    unknown = sorted(set(d) - set(IMAGE_STUDY_PATHS))
    if unknown:
        raise ValueError(
            f"unknown image study fields {unknown} (config layout 1); known: {sorted(IMAGE_STUDY_PATHS)}"
        )
    paths = {IMAGE_STUDY_PATHS[k]: v for k, v in d.items()}
    model.pop(IMAGE_MODEL_SEED, None)
    paths |= {f"schedule.{k}": model.pop(k) for k in IMAGE_SCHEDULE_FIELDS if k in model}
    paths |= {f"model.{k}": v for k, v in model.items()}
    paths |= {f"data.{k}": v for k, v in data.items()}
    return paths


# Every name `gan-jax --set` took before sections → its dotted path: the table's flat names,
# the image study's, and the image model's settings that moved to the schedule or cv section.
OLD_PATHS = {
    **FLAT_PATHS,
    **IMAGE_STUDY_PATHS,
    **{f"model.{k}": f"schedule.{k}" for k in IMAGE_SCHEDULE_FIELDS},
    "model.seed": "cv.seed",
}
