"""The label-scarcity study: with few labels, does the semi-supervised GAN (and the unsupervised
autoencoder) beat a supervised model and the standard semi-supervised baselines?

At each labelled fraction of every training fold, on the study's repeated stratified folds and
the *same* labelled rows for every model:
- our four model families: AE → SGAN (the paper pipeline), AE → the same classifier trained
  supervised only, SGAN without AE, supervised classifier without AE. Each family trains all
  fractions × runs in one fused call (labelled masks are per-run data, not a recompilation);
- scikit-learn on the labelled rows only (logistic regression, RBF SVM), and semi-supervised
  with the unlabelled rows too (self-training of LR, label spreading).
Paired corrected resampled t-tests of the paper pipeline against every other model at every
fraction, Holm-corrected over the whole family of tests.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from gan_jax import runtime
from gan_jax.artifacts import storage
from gan_jax.artifacts.records import masks_digest, write_json
from gan_jax.config import Config
from gan_jax.data import Dataset
from gan_jax.evaluation import baselines, evaluate, stats
from gan_jax.studies import figures
from gan_jax.studies.formats import pct
from gan_jax.training import table

AE_SGAN = "AE → SGAN (paper)"  # the paper pipeline, named as this study names its four families
COMPARED = ("accuracy", "roc_auc")
SPREADING = "label_spreading (kNN)"


def model_families(base: Config) -> dict[str, Config]:
    """Our four families; each differs from the paper config in what it has, not in settings."""
    return {
        AE_SGAN: base,
        "AE → supervised": base.replace(name="ae_supervised", model=base.model.replace(use_gan=False)),
        "SGAN, no AE": base.replace(name="sgan_no_ae", model=base.model.replace(use_autoencoder=False)),
        "supervised, no AE": base.replace(
            name="supervised_no_ae", model=base.model.replace(use_autoencoder=False, use_gan=False)
        ),
    }


def run_label_study(
    base: Config,
    data: Dataset,
    train_masks: np.ndarray,
    fractions: tuple[float, ...],
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Trains and scores every model at every fraction; returns the study record (JSON-able)."""
    t_start = time.perf_counter()
    n_runs = len(train_masks)
    labeled = np.concatenate(
        [evaluate.labeled_masks(data.y, train_masks, f, base.cv.seed) for f in fractions]
    )
    tiled = np.tile(train_masks, (len(fractions), 1))
    run_ids = np.tile(np.arange(n_runs), len(fractions))  # a fold keeps its keys across fractions
    probas, seconds = {}, {}
    for name, cfg in model_families(base).items():
        t0 = time.perf_counter()
        runs = table.make_runs(cfg, data.y, tiled, labeled, run_ids)
        probas[name] = table.fit_predict(cfg, data.x, data.y, runs, progress=progress)[1]
        seconds[name] = time.perf_counter() - t0
    unreached = {}
    for name in baselines.SEMI_SUPERVISED:
        t0 = time.perf_counter()
        proba = baselines.label_scarce_proba(name, base, data.x, data.y, tiled, labeled)
        probas[name], unreached[name] = baselines.fill_unreached(proba, data.y, labeled)
        seconds[name] = time.perf_counter() - t0
    ratio = float((~train_masks).sum() / train_masks.sum())
    per_fraction = []
    for i, f in enumerate(fractions):
        rows = slice(i * n_runs, (i + 1) * n_runs)
        lab = labeled[rows]
        models = {name: _scores(data.y, p[rows], train_masks, ratio) for name, p in probas.items()}
        for name, mask in unreached.items():  # test predictions that fell back to the prior
            models[name]["unreached_test_share"] = float(mask[rows][~train_masks].mean())
        per_fraction.append(
            {
                "fraction": f,
                "labeled_per_run_mean": float(lab.sum(1).mean()),
                "labeled_per_class_min": int(min((lab & (data.y == c)).sum(1).min() for c in (0, 1))),
                "labeled_masks_sha256": masks_digest(lab),
                "models": models,
            }
        )
    return {
        "fractions": list(fractions),
        "n_runs_per_fraction": n_runs,
        "folds_sha256": masks_digest(train_masks),
        "test_train_ratio": ratio,
        "configs": {k: v.to_dict() for k, v in model_families(base).items()},
        "seconds": seconds,
        "wall_seconds": time.perf_counter() - t_start,
        "per_fraction": per_fraction,
        "comparisons": stats.compare(per_fraction, AE_SGAN, COMPARED, ratio, group="fraction", adjust=True),
        "holm": "Holm-Bonferroni over every (fraction, model, metric) test in `comparisons`",
        "versions": runtime.library_versions(),
    }


def _scores(y, proba, train_masks, ratio) -> dict[str, Any]:
    m = evaluate.classification_metrics(y, proba, ~train_masks)
    return {
        "summary": {k: evaluate.summarize(m[k], ratio) for k in evaluate.METRICS},
        "runs": {k: np.asarray(m[k]).tolist() for k in COMPARED},
    }


def write_outputs(study: dict[str, Any], out: str) -> None:
    out = str(out).rstrip("/")
    write_json(f"{out}/label_study.json", study)
    with storage.open_uri(f"{out}/figure_labels.png", "wb") as f:
        figures.label_scarcity_plot(study, f)


def markdown(study: dict[str, Any]) -> list[str]:
    """The results/README.md section: what the method is, table per fraction, tests, verdict."""
    lines = [
        "## Label scarcity at fixed settings (untuned; see the tuned headline at the top)",
        "",
        f"Written by `gan-jax reproduce` into `label_study.json` ({study['wall_seconds']:.0f} s wall for "
        f"the whole study, all families fused: one compiled program per phase for all "
        f"{len(study['fractions'])} fractions × {study['n_runs_per_fraction']} runs). Labelled rows are "
        "drawn stratified from each training fold (the same rows for every model at a fraction; "
        "smaller fractions are subsets of larger ones); the other training rows are unlabelled: the "
        "scaler, the autoencoder, the SGAN's real/fake term and feature matching use them, and no "
        "loss reads their labels. At 100 % every training row is labelled, so the 'semi-supervised' "
        "GAN is a supervised classifier with a GAN regulariser. "
        + _unreached_note(study)
        + f" Fold masks sha256 `{study['folds_sha256'][:16]}…` (the ablation study's folds); the "
        "labelled masks' sha256 per fraction is in `label_study.json`.",
        "",
        *verdict(study),
        "",
        "![accuracy and ROC-AUC against the number of labels](figure_labels.png)",
        "",
        "Accuracy and ROC-AUC, %, mean [95 % CI] over CV runs (" + evaluate.CI_METHOD + "):",
        "",
    ]
    names = list(study["per_fraction"][0]["models"])
    lines += ["| labelled (per fold) | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for entry in study["per_fraction"]:
        cells = []
        for name in names:
            s = entry["models"][name]["summary"]
            cells.append(
                " / ".join(
                    f"{pct(s[k]['mean'])} [{pct(s[k]['ci95_low'])}, {pct(s[k]['ci95_high'])}]"
                    for k in COMPARED
                )
            )
        label = f"{100 * entry['fraction']:g} % (≈{entry['labeled_per_run_mean']:.0f} rows)"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Each cell: accuracy / ROC-AUC. Paired comparisons, paper pipeline minus the other model "
        "(corrected resampled t-test, p Holm-adjusted over all "
        f"{len(study['comparisons'])} tests):",
        "",
        "| labelled | other model | metric | difference (pp) | 95 % CI (pp) | p | p (Holm) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in study["comparisons"]:
        lines.append(
            f"| {100 * c['fraction']:g} % | {c['b']} | {c['metric']} | {100 * c['mean_diff']:+.2f} | "
            f"[{100 * c['ci95_low']:+.2f}, {100 * c['ci95_high']:+.2f}] | {c['p']:.3g} | {c['p_holm']:.3g} |"
        )
    return lines


def _unreached_note(study: dict[str, Any]) -> str:
    shares = [
        (e["fraction"], e["models"][SPREADING]["unreached_test_share"])
        for e in study["per_fraction"]
        if SPREADING in e["models"]
    ]
    return (
        "Label spreading gives no answer for a row its kNN graph does not connect to any label; such "
        "rows get the labelled rows' malignant share (share of test predictions: "
        + ", ".join(f"{100 * f:g} % labelled: {100 * v:.1f} %" for f, v in shares)
        + ")."
    )


def verdict(study: dict[str, Any]) -> list[str]:
    """One line per fraction: is the paper pipeline significantly better/worse (Holm) than the
    same classifier trained supervised, and than the best other model, in accuracy and ROC-AUC;
    then one sentence over all fractions."""
    lines = [f"**Verdict** (significant = Holm-adjusted p < {stats.ALPHA}):", ""]
    helped = []
    for entry in study["per_fraction"]:
        f = entry["fraction"]
        parts = []
        for metric in COMPARED:
            tests = {c["b"]: c for c in study["comparisons"] if c["fraction"] == f and c["metric"] == metric}
            score = {k: m["summary"][metric]["mean"] for k, m in entry["models"].items()}
            best = max((k for k in score if k != AE_SGAN), key=score.get)
            better = [k for k, c in tests.items() if c["p_holm"] < stats.ALPHA and c["mean_diff"] > 0]
            worse = [k for k, c in tests.items() if c["p_holm"] < stats.ALPHA and c["mean_diff"] < 0]
            sup = tests["AE → supervised"]
            if metric == "accuracy" and sup["p_holm"] < stats.ALPHA and sup["mean_diff"] > 0:
                helped.append(f)
            parts.append(
                f"{metric} {pct(score[AE_SGAN])} % vs the same classifier supervised "
                f"{pct(score['AE → supervised'])} % ({100 * sup['mean_diff']:+.2f} pp, Holm p = "
                f"{sup['p_holm']:.3g}), best other model {best} {pct(score[best])} %; significantly "
                f"better than: {', '.join(better) or 'none'}; significantly worse than: "
                f"{', '.join(worse) or 'none'}"
            )
        lines.append(
            f"- {100 * f:g} % labelled (≈{entry['labeled_per_run_mean']:.0f} rows): AE → SGAN "
            + ". ".join(parts)
            + "."
        )
    lines += ["", _overall(helped, study)]
    return lines


def _overall(helped: list[float], study: dict[str, Any]) -> str:
    if not helped:
        return (
            "**In short**: at no labelled fraction is AE → SGAN significantly more accurate than "
            "AE → supervised (the same autoencoder and classifier without the GAN)."
        )
    fractions = ", ".join(f"{100 * f:g} %" for f in helped)
    others = [e["fraction"] for e in study["per_fraction"] if e["fraction"] not in helped]
    return (
        f"**In short**: the GAN's real/fake term on the unlabelled rows makes AE → SGAN significantly "
        f"more accurate than AE → supervised (the same autoencoder and classifier without the GAN) at "
        f"{fractions} labelled; at "
        + (", ".join(f"{100 * f:g} %" for f in others) or "no other fraction")
        + " the difference is not significant after the Holm correction. Compare ROC-AUC too: a "
        "higher accuracy with a lower ROC-AUC than a baseline means a better threshold, not a better "
        "ranking of cases."
    )
