"""The image study (`gan-jax image-study`): the conv SGAN on an image set (the SYNTHETIC nuclei
demo set, or the researcher's own pictures through a `DataConfig`) under repeated
stratified k-fold or the data set's own train/test split, beside the same conv classifier
trained supervised only and a logistic regression on mean-pooled pixels, at each labelled
fraction, on the same folds and the same labelled rows.

The same machinery as the table study: folds and labelled rows from `evaluate`, metrics and
intervals from `evaluate.summarize`, paired corrected resampled t-tests (`stats`) Holm-adjusted
over the whole family; every conv model trains all fractions × runs in one fused call
(`gan_jax.training.image.train_runs` on the one engine). The demo data are drawn by
`gan_jax.data.nuclei`: not patients.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import numpy as np

from gan_jax.artifacts import bundle, make_bundle, records, storage
from gan_jax.artifacts.records import masks_digest, write_json
from gan_jax.config import Config
from gan_jax.evaluation import baselines, evaluate, stats
from gan_jax.studies import figures, image_checkpoints, image_data
from gan_jax.studies.formats import pct
from gan_jax.training import engine, image

SGAN = "conv SGAN (AE → SGAN)"
SUPERVISED = "conv supervised (AE → same classifier, no GAN)"
POOLED_LR = "logistic regression (mean-pooled pixels)"
_LR = "logistic_regression (labelled rows)"  # its name in `baselines.SEMI_SUPERVISED`
COMPARED = ("accuracy", "f1", "roc_auc")


def model_variants(config: Config) -> dict[str, Config]:
    """The conv models; they differ in what they have (the GAN), not in settings."""
    return {SGAN: config, SUPERVISED: config.replace(model=config.model.replace(use_gan=False))}


def mean_pooled(images: np.ndarray, pool: int) -> np.ndarray:
    """uint8 images [N, S, S, C] → mean over pool×pool blocks, flattened: [N, (S/pool)² C] in [0, 1]."""
    n, s, _, c = images.shape
    x = images.astype(np.float32).reshape(n, s // pool, pool, s // pool, pool, c).mean((2, 4)) / 255.0
    return x.reshape(n, -1)


def run_image_study(
    config: Config,
    out: str | None = "results",
    *,
    command: str = "",
    mesh: jax.sharding.Mesh | None = None,
    log=lambda message: None,
    bundle_uri: str | None = None,
    checkpoints: image_checkpoints.CheckpointSettings | None = None,
) -> dict[str, Any]:
    """Trains and scores every model at every labelled fraction; writes the study to `out`
    (image_study.json, .md, .png, image_samples.png) unless `out` is None; returns its record.

    Args:
      mesh: devices the runs are sharded over (default: all).
      log: called with one-line progress messages.
      bundle_uri: also export the conv SGAN of run 0 (first fraction, first fold) there as a
        servable image bundle, with its metrics on its own held-out fold.
      checkpoints: save each conv model's training there and, with `resume`, continue from
        the newest checkpoint (`image_checkpoints`); a resumed study gives the same numbers.
    """
    t_start, cpu_start = time.perf_counter(), time.process_time()
    rec = records.run_record(command)  # the code that runs, read before any file can change
    data, config = image_data.load_study_data(config)
    images, labels, masks = data.images, data.labels, data.train_masks
    log(f"data: {data.description}; runs: {data.evaluation}")
    fractions, n_runs = tuple(config.cv.labeled_fractions), len(masks)
    labeled = np.concatenate([evaluate.labeled_masks(labels, masks, f, config.cv.seed) for f in fractions])
    tiled = np.tile(masks, (len(fractions), 1))
    run_ids = np.tile(np.arange(n_runs), len(fractions))  # a fold keeps its keys across fractions
    probas, seconds, histories, samples = {}, {}, {}, None
    for name, model in model_variants(config).items():
        t0 = time.perf_counter()
        runs = image.make_runs(model, labels, tiled, labeled, run_ids)
        result = image_checkpoints.train_runs(
            model,
            name,
            images,
            labels,
            runs,
            mesh=mesh,
            settings=checkpoints,
            meta=config.to_dict(),
            log=log,
        )
        probas[name] = image.predict_runs(model, result.state, images)
        seconds[name], histories[name] = time.perf_counter() - t0, result.history
        log(f"{name}: {len(tiled)} runs in {seconds[name]:.0f} s")
        if model.model.use_gan:
            samples = generator_samples(model, result.state, config.n_samples, config.cv.seed)
            if bundle_uri is not None:
                _export_run0(config, model, result.state, probas[name][0], data, tiled[0], bundle_uri)
                log(f"exported run 0 of the {name} to {bundle_uri}")
    t0 = time.perf_counter()
    probas[POOLED_LR] = baselines.label_scarce_proba(
        _LR, config, mean_pooled(images, config.data.pool), labels, tiled, labeled, n_jobs=1
    )
    seconds[POOLED_LR] = time.perf_counter() - t0
    ratio = float((~masks).sum() / masks.sum())
    per_fraction = []
    for i, f in enumerate(fractions):
        rows = slice(i * n_runs, (i + 1) * n_runs)
        per_fraction.append(
            {
                "fraction": f,
                "labeled_per_run_mean": float(labeled[rows].sum(1).mean()),
                "labeled_masks_sha256": masks_digest(labeled[rows]),
                "models": {name: _scores(labels, p[rows], masks, ratio) for name, p in probas.items()},
            }
        )
    study = {
        "experiment": config.name,
        "config": config.to_dict(),
        "data": data.description,
        "synthetic_data": data.synthetic,
        "own_split": data.own_split,
        "evaluation": data.evaluation,
        "label_names": list(data.label_names),
        "n_images": len(labels),
        "n_folds": config.cv.n_folds,
        "n_repeats": config.cv.n_repeats,
        "fractions": list(fractions),
        "folds_sha256": masks_digest(masks),
        "test_train_ratio": ratio,
        "chance_accuracy": float(max(labels.mean(), 1 - labels.mean())),
        "per_fraction": per_fraction,
        "comparisons": stats.compare(per_fraction, SGAN, COMPARED, ratio, group="fraction", adjust=True),
        "holm": "Holm-Bonferroni over every (fraction, model, metric) test in `comparisons`",
        "ci_method": evaluate.CI_METHOD,
        "decision_rule": "malignant if P(malignant) >= 0.5, for every model and baseline",
        "seconds": seconds,
        "histories": histories,
        "wall_seconds": time.perf_counter() - t_start,
        "cpu_seconds": time.process_time() - cpu_start,
        "load_average_at_end": list(os.getloadavg()),
        **records.finish_record(rec),
    }
    if out is not None:
        write_outputs(study, samples, out)
    return study


def generator_samples(model: Config, state: engine.GANState, n: int, seed: int) -> np.ndarray:
    """n uint8 images [n, H, W, C] from the generator of run 0 (the first fold, first fraction)."""
    return image.sample_images(model, jax.tree.map(lambda a: a[0], state.gen.params), n, seed)


def _export_run0(
    config: Config,
    model: Config,
    state: engine.GANState,
    proba: np.ndarray,
    data: image_data.StudyData,
    train_mask: np.ndarray,
    uri: str,
) -> None:
    """Run 0's model as an image bundle; its metrics are on its own held-out fold only."""
    m = evaluate.classification_metrics(data.labels, proba[None], ~train_mask[None])
    metrics = {k: float(m[k][0]) for k in evaluate.METRICS} | {"held_out_rows": int((~train_mask).sum())}
    training = {
        "experiment": config.name,
        "data": data.description,
        "evaluation": data.evaluation,
        "run": "0 (first labelled fraction, first fold)",
        "labeled_fraction": config.cv.labeled_fractions[0],
        "ae_steps": config.schedule.ae_steps,
        "gan_steps": config.schedule.gan_steps,
        "seed": config.cv.seed,
    }
    run0 = jax.tree.map(lambda a: np.asarray(a[0]), state)
    bundle.export(
        make_bundle.image_bundle(
            model, run0, label_names=data.label_names, metrics=metrics, training=training, name=config.name
        ),
        uri,
    )


def _scores(y, proba, train_masks, ratio) -> dict[str, Any]:
    m = evaluate.classification_metrics(y, proba, ~train_masks)
    return {
        "summary": {k: evaluate.summarize(m[k], ratio) for k in evaluate.METRICS},
        "confusion_total": {k: int(m[k].sum()) for k in ("tp", "fp", "tn", "fn")},
        "runs": {k: np.asarray(m[k]).tolist() for k in evaluate.METRICS},
    }


def write_outputs(study: dict[str, Any], samples: np.ndarray | None, out: str) -> None:
    """image_study.json, image_study.md, image_study.png and (with samples) image_samples.png."""
    out = str(out).rstrip("/")
    write_json(f"{out}/image_study.json", study)
    bars = {
        f"{name}, {100 * e['fraction']:g} % labels": m["summary"]
        for e in study["per_fraction"]
        for name, m in e["models"].items()
    }
    title = f"{_subject(study)}, {_runs(study)} (error bars: 95 % CI over runs)"
    with storage.open_uri(f"{out}/image_study.png", "wb") as f:
        figures.figure3_metrics(bars, f, title)
    if samples is not None:
        k = _enlarge(samples.shape[1])  # nearest-neighbour, so pixels stay visible as pixels
        with storage.open_uri(f"{out}/image_samples.png", "wb") as f:
            figures.save_image_grid(np.repeat(np.repeat(samples, k, axis=1), k, axis=2), f)
    storage.write_text(f"{out}/image_study.md", markdown(study, samples is not None))


def _subject(study: dict[str, Any]) -> str:
    return "SYNTHETIC nuclei" if study.get("synthetic_data", True) else study["experiment"]


def _runs(study: dict[str, Any]) -> str:
    if study.get("own_split"):
        return f"own train/test split, {study['n_repeats'] * study['n_folds']} seeds"
    return f"{study['n_repeats']} × {study['n_folds']}-fold CV"


def _enlarge(size: int) -> int:
    return max(1, 64 // size)


def markdown(study: dict[str, Any], with_samples: bool = True) -> str:
    """The table, the paired tests and the sample grid, all from the study record."""
    c = Config.from_dict(study["config"])  # any readable layout: records written before sections too
    h, w, _ = c.model.image_shape
    size = h
    synthetic = study.get("synthetic_data", True)  # records written before real data were
    evaluation = study.get(
        "evaluation", f"{study['n_repeats']} × repeated stratified {study['n_folds']}-fold CV"
    )
    lines = [
        "# Image study on the SYNTHETIC nuclei demo set"
        if synthetic
        else f"# Image study: {study['experiment']}",
        "",
        f"Written by `{study['command']}` (commit `{study['git_commit']}`, {study['wall_seconds']:.0f} s "
        f"wall, {study['cpu_seconds']:.0f} CPU-s, load average at the end "
        f"{', '.join(f'{v:.1f}' for v in study['load_average_at_end'])}, {study['device']['count']} "
        f"{study['device']['platform']} devices). Data: {study['data']}"
        + (" — **synthetic images, not patient data**" if synthetic else "")
        + f"; {study.get('n_images', c.data.n_images)} images of {h}×{w} px; runs: {evaluation} "
        f"(training masks sha256 `{study['folds_sha256'][:16]}…`); {c.schedule.ae_steps} "
        f"autoencoder + {c.schedule.gan_steps} GAN steps per run. Every conv model trains all its runs in "
        "one fused call; the logistic regression sees the labelled rows' "
        f"{c.data.pool}×{c.data.pool} mean-pooled pixels. "
        f"Chance accuracy: {pct(study['chance_accuracy'])} %.",
        "",
        "![metrics with 95 % CIs](image_study.png)",
        "",
        "Mean [95 % CI] over runs, % (" + study["ci_method"] + "):",
        "",
        "| labelled | model | " + " | ".join(evaluate.METRICS) + " |",
        "|---|---|" + "---|" * len(evaluate.METRICS),
    ]
    for entry in study["per_fraction"]:
        label = f"{100 * entry['fraction']:g} % (≈{entry['labeled_per_run_mean']:.0f})"
        for name, m in entry["models"].items():
            s = m["summary"]
            cells = [
                f"{pct(s[k]['mean'])} [{pct(s[k]['ci95_low'])}, {pct(s[k]['ci95_high'])}]"
                for k in evaluate.METRICS
            ]
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Paired comparisons, conv SGAN minus the other model (corrected resampled t-test, p Holm-adjusted "
        f"over all {len(study['comparisons'])} tests; significant = Holm p < {stats.ALPHA}):",
        "",
        "| labelled | other model | metric | difference (pp) | 95 % CI (pp) | p | p (Holm) |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in study["comparisons"]:
        lines.append(
            f"| {100 * t['fraction']:g} % | {t['b']} | {t['metric']} | {100 * t['mean_diff']:+.2f} | "
            f"[{100 * t['ci95_low']:+.2f}, {100 * t['ci95_high']:+.2f}] | {t['p']:.3g} | {t['p_holm']:.3g} |"
        )
    if with_samples:
        lines += [
            "",
            "## Generator samples (SYNTHETIC)",
            "",
            "![SYNTHETIC generator samples](image_samples.png)",
            "",
            f"{c.n_samples} images ({size}×{size} px, shown {_enlarge(size)}× enlarged) drawn by the "
            f"generator of run 0 ({100 * study['fractions'][0]:g} % labels) of the conv SGAN, trained on "
            f"{'synthetic nuclei images' if synthetic else 'the images above'}: a picture of what the GAN "
            "learned, not data.",
        ]
    return "\n".join(lines) + "\n"
