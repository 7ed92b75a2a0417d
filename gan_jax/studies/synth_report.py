"""Quality and privacy of synthetic rows, measured on held-out real rows.

Definitions follow SDMetrics (sdv.dev) where it has the metric, and are cross-checked against it
in tests:
  - KSComplement: 1 - D, D the two-sample Kolmogorov-Smirnov statistic, per feature.
  - CorrelationSimilarity (Pearson): 1 - |r_real - r_synth| / 2 per feature pair, averaged.
  - LogisticDetection: ROC-AUC of a logistic regression telling real from synthetic rows,
    cross-validated (0.5 = indistinguishable); SDMetrics' score is 1 - (2 max(AUC, 0.5) - 1).
  - DCR (distance to closest record, `sdmetrics...dcr_utils.calculate_dcr`): per feature
    |a - b| / range of the reference rows, capped at 1, averaged over features; the minimum
    over reference rows.
  - DCROverfittingProtection: share of synthetic rows closer to a training row than to any
    held-out row; score = min(2 (1 - share), 1).
Beyond SDMetrics:
  - balanced closer-to-train share (`closer_to_train_balanced`): the same question with one
    distance scale and the sets' sizes reweighted, so 0.5 = a new patient, 1 = a copy; the
    goal of issue 22 (at most 0.60) is judged on it.
  - near-copy share: synthetic rows whose DCR to the training rows is below the 5th percentile
    of real held-out rows' DCR to the training rows (how close a genuinely new patient comes).
  - distance-based membership inference (Hilprecht et al. 2019; synthcity's
    "DCR"-style attack): score each real row by minus its DCR to the synthetic rows; ROC-AUC of
    training rows (members) against held-out rows (non-members). 0.5 = nothing leaks.
  - utility: TSTR (train on synthetic, test on real held-out rows) against TRTR (train on the
    real training rows), accuracy, F1 and ROC-AUC (positive = malignant), for logistic
    regression and for our classifier (the paper pipeline, `experiments/paper.py`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from gan_jax import runtime
from gan_jax.artifacts import storage
from gan_jax.artifacts.records import write_json
from gan_jax.config import load_experiment
from gan_jax.data import FEATURE_NAMES, load_dataset
from gan_jax.evaluation import evaluate
from gan_jax.evaluation.baselines import make_baseline
from gan_jax.studies import figures, synth
from gan_jax.training import engine, table

NEAR_COPY_PERCENTILE = 5.0
DETECTION_REPEATS = 5  # draws of synthetic rows and folds a detection AUC averages
UTILITY_METRICS = ("accuracy", "f1", "roc_auc")
FIDELITY_ROWS = (  # (label, key, ideal value) of the Markdown table
    ("KSComplement, mean over 30 features", "ks_complement_mean", "1"),
    ("KSComplement, worst feature", "ks_complement_min", "1"),
    ("CorrelationSimilarity (Pearson)", "correlation_similarity", "1"),
    ("detection ROC-AUC (logistic regression, 5-fold, 5 draws)", "detection_auc", "0.5"),
)


def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """SDMetrics KSComplement of every feature: [F] values in [0, 1], 1 = same distribution."""
    return np.array(
        [1.0 - stats.ks_2samp(real[:, j], synthetic[:, j]).statistic for j in range(real.shape[1])]
    )


def correlation_similarity(real: np.ndarray, synthetic: np.ndarray) -> float:
    """SDMetrics CorrelationSimilarity (Pearson), averaged over every feature pair."""
    r, s = np.corrcoef(real, rowvar=False), np.corrcoef(synthetic, rowvar=False)
    upper = np.triu_indices(real.shape[1], k=1)
    return float(np.mean(1.0 - np.abs(r[upper] - s[upper]) / 2.0))


def detection_auc(
    real: np.ndarray, synthetic: np.ndarray, seed: int = 0, n_folds: int = 5, repeats: int | None = None
) -> float:
    """Cross-validated ROC-AUC of a logistic regression (standardised features) that tells real
    rows from synthetic ones; as many synthetic rows as real ones are drawn, so 0.5 = chance.
    Averaged over `repeats` (default DETECTION_REPEATS) draws of those rows and of the folds: on
    ~100 real rows one draw moves the AUC by several hundredths. Rows present on both sides
    (exact copies) score below 0.5: a held-out copy's twin is in the training folds with the
    other label."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    repeats = repeats or DETECTION_REPEATS
    aucs = []
    for i in range(repeats):
        drawn = synthetic[rng.choice(len(synthetic), size=min(len(real), len(synthetic)), replace=False)]
        x = np.concatenate([real, drawn])
        is_synth = np.r_[np.zeros(len(real)), np.ones(len(drawn))]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed * repeats + i)
        proba = cross_val_predict(model, x, is_synth, cv=folds, method="predict_proba")[:, 1]
        aucs.append(_auc(is_synth, proba))
    return float(np.mean(aucs))


def dcr(rows: np.ndarray, reference: np.ndarray, scale_rows: np.ndarray | None = None) -> np.ndarray:
    """SDMetrics distance to closest record [M] of each of rows [M, F] among reference [K, F]:
    per feature |a - b| / the range of `scale_rows` (default: of the reference rows, as
    SDMetrics), capped at 1, averaged over features; the minimum over reference rows."""
    scale_rows = reference if scale_rows is None else scale_rows
    rng = scale_rows.max(0) - scale_rows.min(0)
    out = np.empty(len(rows))
    for start in range(0, len(rows), 256):
        diff = np.abs(rows[start : start + 256, None, :] - reference[None, :, :])  # [m, K, F]
        per_feature = np.where(rng > 0, np.minimum(diff / np.where(rng > 0, rng, 1.0), 1.0), diff > 0)
        out[start : start + 256] = per_feature.mean(-1).min(-1)
    return out


def closer_to_train_balanced(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray) -> float:
    """Share of synthetic rows whose nearest real row (training ∪ held-out, one distance scale:
    the union's ranges) is a training row, reweighted for the sizes of the two sets: with N
    training and n held-out rows, p → (p / N) / (p / N + (1 - p) / n). A row drawn afresh from
    the real distribution has each real row as its nearest equally often (p = N / (N + n)),
    so it scores 0.5; a copy of a training row scores 1.

    SDMetrics' num_rows_subsample (training rows drawn down to the hold-out's size) is not used:
    a copy of a training row left out of the draw counts as a new row, so a generator that
    copies every training row scores about n / N + (1 - n / N) / 2 (0.62 at 455 vs 114 rows).
    """
    union = np.concatenate([train, holdout])
    p = float(np.mean(dcr(synthetic, train, union) < dcr(synthetic, holdout, union)))
    n_train, n_holdout = len(train), len(holdout)
    return (p / n_train) / (p / n_train + (1.0 - p) / n_holdout)


def fidelity(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> dict[str, Any]:
    ks = ks_complement(real, synthetic)
    auc = detection_auc(real, synthetic, seed)
    return {
        "ks_complement_mean": float(ks.mean()),
        "ks_complement_min": float(ks.min()),
        "ks_complement": dict(zip(FEATURE_NAMES, ks.tolist()))
        if len(ks) == len(FEATURE_NAMES)
        else ks.tolist(),
        "correlation_similarity": correlation_similarity(real, synthetic),
        "detection_auc": auc,
        "logistic_detection_score": 1.0 - (2.0 * max(auc, 0.5) - 1.0),
    }


def privacy(train: np.ndarray, holdout: np.ndarray, synthetic: np.ndarray) -> dict[str, Any]:
    to_train, to_holdout = dcr(synthetic, train), dcr(synthetic, holdout)
    closer = float(np.mean(to_train < to_holdout))
    balanced = closer_to_train_balanced(train, holdout, synthetic)
    threshold = float(np.percentile(dcr(holdout, train), NEAR_COPY_PERCENTILE))
    members = dcr(train, synthetic)
    non_members = dcr(holdout, synthetic)
    mia = _auc(np.r_[np.ones(len(train)), np.zeros(len(holdout))], -np.r_[members, non_members])
    return {
        "dcr_to_train_median": float(np.median(to_train)),
        "dcr_to_holdout_median": float(np.median(to_holdout)),
        "dcr_to_train_5th_percentile": float(np.percentile(to_train, 5)),
        "closer_to_train_share": closer,
        "dcr_overfitting_protection": min(2.0 * (1.0 - closer), 1.0),
        "closer_to_train_share_balanced": balanced,
        "dcr_overfitting_protection_balanced": min(2.0 * (1.0 - balanced), 1.0),
        "near_copy_threshold": threshold,
        "near_copy_share": float(np.mean(to_train < threshold)),
        "exact_copy_share": float(np.mean(to_train <= 1e-9)),
        "membership_inference_auc": mia,
        "note": "DCROverfittingProtection expects train and hold-out of similar size; with more "
        "training rows than hold-out rows, closer_to_train_share exceeds 0.5 even for a generator "
        "that copies nothing, so the balanced share (nearest real row's set, reweighted for the "
        "sets' sizes: `closer_to_train_balanced`) is the one to read: 0.5 is ideal, 1 = copies",
    }


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(
        evaluate.roc_auc(np.asarray(labels), np.asarray(scores, np.float32), np.ones(len(labels), bool))
    )


def _metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    m = evaluate.classification_metrics(y, proba[None, :], np.ones((1, len(y)), bool))
    return {k: float(m[k][0]) for k in UTILITY_METRICS}


def utility(
    x_train,
    y_train,
    x_holdout,
    y_holdout,
    x_syn,
    y_syn,
    *,
    seed: int = 0,
    our_classifier: bool = True,
    classifier_config=None,
) -> dict[str, Any]:
    """TSTR and TRTR scores on the held-out real rows for logistic regression and (optionally)
    our classifier (`classifier_config`, default the paper pipeline)."""
    out = {"logistic_regression": _lr_utility(x_train, y_train, x_holdout, y_holdout, x_syn, y_syn, seed)}
    if our_classifier:
        out["ours (AE → SGAN)"] = _ours_utility(
            x_train, y_train, x_holdout, y_holdout, x_syn, y_syn, classifier_config
        )
    return out


def _lr_utility(x_train, y_train, x_holdout, y_holdout, x_syn, y_syn, seed) -> dict[str, Any]:
    scores = {}
    for name, (x, y) in {"trtr": (x_train, y_train), "tstr": (x_syn, y_syn)}.items():
        model = make_baseline("logistic_regression", load_experiment("paper"), seed).fit(x, y)
        scores[name] = _metrics(y_holdout, model.predict_proba(x_holdout)[:, 1])
    return scores


def _ours_utility(x_train, y_train, x_holdout, y_holdout, x_syn, y_syn, config=None) -> dict[str, Any]:
    """Two runs of one fused call on the rows [train; synthetic; holdout]: run 0 trains on the
    real training rows (TRTR), run 1 on the synthetic rows (TSTR); both are scored on holdout."""
    import jax

    config = config or load_experiment("paper")
    x = np.concatenate([x_train, x_syn, x_holdout]).astype(np.float32)
    y = np.concatenate([y_train, y_syn, y_holdout]).astype(np.int32)
    n_tr, n_syn = len(x_train), len(x_syn)
    masks = np.zeros((2, len(x)), bool)
    masks[0, :n_tr], masks[1, n_tr : n_tr + n_syn] = True, True
    runs = table.make_runs(config, y, masks, labeled_masks=masks)
    one_device = engine.runs_mesh(jax.devices()[:1])
    proba = table.fit_predict(config, x, y, runs, x[n_tr + n_syn :], mesh=one_device)[1]
    return {"trtr": _metrics(y_holdout, proba[0]), "tstr": _metrics(y_holdout, proba[1])}


def match_prior(
    x: np.ndarray, y: np.ndarray, prior: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The largest random subset of rows (x, y) whose class shares are `prior` [K]: a balanced
    synthetic file compared with real rows would otherwise differ in the class mix alone."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(y, minlength=len(prior))
    n = min(counts[c] / prior[c] for c in range(len(prior)) if prior[c] > 0)
    take = lambda c: rng.choice(np.flatnonzero(y == c), int(np.floor(n * prior[c])), replace=False)
    keep = np.sort(np.concatenate([take(c) for c in range(len(prior))]))
    return x[keep], y[keep]


def report(
    x_train,
    y_train,
    x_holdout,
    y_holdout,
    x_syn,
    y_syn,
    *,
    seed: int = 0,
    our_classifier: bool = True,
    classifier_config=None,
) -> dict[str, Any]:
    """Fidelity (synthetic vs held-out real rows), utility and privacy of one synthetic set.
    The generator must have been fitted on (x_train, y_train) only."""
    prior = np.bincount(y_train, minlength=2) / len(y_train)
    x_fid, _ = match_prior(x_syn, y_syn, prior, seed)
    return {
        "n_train": len(x_train),
        "n_holdout": len(x_holdout),
        "n_synthetic": len(x_syn),
        # Whole-table fidelity on synthetic rows drawn to the training rows' class shares.
        "n_synthetic_for_fidelity": len(x_fid),
        "fidelity": fidelity(x_holdout, x_fid, seed),
        # What a perfect generator would score against so few held-out rows: the real training
        # rows in place of the synthetic ones (sampling noise, not a flaw of the generator).
        "fidelity_reference_real_train": {
            k: v for k, v in fidelity(x_holdout, x_train, seed).items() if k != "ks_complement"
        },
        "fidelity_by_class": {
            name: {
                k: v
                for k, v in fidelity(x_holdout[y_holdout == c], x_syn[y_syn == c], seed).items()
                if k != "ks_complement"
            }
            for c, name in enumerate(("benign", "malignant"))
        },
        "utility": utility(
            x_train,
            y_train,
            x_holdout,
            y_holdout,
            x_syn,
            y_syn,
            seed=seed,
            our_classifier=our_classifier,
            classifier_config=classifier_config,
        ),
        "privacy": privacy(x_train, x_holdout, x_syn),
    }


def to_markdown(rep: dict[str, Any], title: str = "Synthetic data report") -> str:
    """The report as Markdown; every number is read from `rep`."""
    f, p, ref = rep["fidelity"], rep["privacy"], rep["fidelity_reference_real_train"]
    pct = lambda v: f"{100 * v:.2f}"
    lines = [
        f"# {title}",
        "",
        f"{rep['n_synthetic']} synthetic rows against {rep['n_holdout']} held-out real rows the generator "
        f"never saw ({rep['n_train']} real training rows). Definitions: see "
        "`gan_jax/studies/synth_report.py` "
        "(SDMetrics names).",
        "",
        "## Fidelity",
        "",
        f"Whole-table fidelity uses {rep['n_synthetic_for_fidelity']} synthetic rows drawn to the "
        "training rows' class shares (the file itself may be class-balanced); per-class values are "
        "in the JSON (`fidelity_by_class`).",
        "",
        "Reference: the same metric with the real training rows in place of the synthetic rows "
        "(what a perfect generator could reach against this hold-out).",
        "",
        "| metric | synthetic | reference (real training rows) | ideal |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {f[k]:.3f} | {ref[k]:.3f} | {ideal} |" for label, k, ideal in FIDELITY_ROWS),
        "",
        "## Utility (scored on the held-out real rows, %)",
        "",
        "| classifier | trained on | accuracy | F1 | ROC-AUC |",
        "|---|---|---:|---:|---:|",
    ]
    for model, scores in rep["utility"].items():
        for which, label in (("trtr", "real (TRTR)"), ("tstr", "synthetic (TSTR)")):
            s = scores[which]
            lines.append(
                f"| {model} | {label} | {pct(s['accuracy'])} | {pct(s['f1'])} | {pct(s['roc_auc'])} |"
            )
    lines += [
        "",
        "## Privacy",
        "",
        "| metric | value | reference |",
        "|---|---:|---|",
        f"| median DCR to training rows | {p['dcr_to_train_median']:.4f} "
        f"| to held-out rows: {p['dcr_to_holdout_median']:.4f} |",
        f"| share closer to a training row than to any held-out row (balanced sizes) "
        f"| {pct(p['closer_to_train_share_balanced'])} % "
        f"| 50 % (unbalanced: {pct(p['closer_to_train_share'])} %) |",
        f"| near-copy share (DCR < {p['near_copy_threshold']:.4f}) | {pct(p['near_copy_share'])} % "
        f"| {NEAR_COPY_PERCENTILE:.0f} % for new real patients |",
        "| SDMetrics DCROverfittingProtection (balanced sizes) "
        f"| {p['dcr_overfitting_protection_balanced']:.3f} "
        f"| 1 (unbalanced: {p['dcr_overfitting_protection']:.3f}) |",
        f"| exact copies | {pct(p['exact_copy_share'])} % | 0 % |",
        f"| membership-inference ROC-AUC (DCR attack) | {p['membership_inference_auc']:.3f} | 0.5 |",
        "",
        f"Note: {p['note']}.",
    ]
    return "\n".join(lines) + "\n"


def write(rep: dict[str, Any], out: str, name: str = "synth_report", *, real=None, synthetic=None) -> None:
    """<out>/<name>.json and .md, and the figures when the rows are given."""
    rep = {**rep, "versions": rep.get("versions") or runtime.library_versions()}
    write_json(storage.join(out, f"{name}.json"), rep)
    storage.write_text(storage.join(out, f"{name}.md"), to_markdown(rep))
    if real is not None and synthetic is not None:
        with storage.open_uri(storage.join(out, f"{name}_histograms.png"), "wb") as f:
            figures.feature_histograms(real, synthetic, FEATURE_NAMES, f)
        with storage.open_uri(storage.join(out, f"{name}_correlations.png"), "wb") as f:
            figures.correlation_matrices(real, synthetic, f)


def report_for_file(
    uri: str, *, our_classifier: bool = True
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """(report, held-out real rows, synthetic rows) of a CSV written by `gan-jax synth`: the
    real rows and the train / hold-out split come from its sidecar."""
    meta = synth.read_metadata(uri)
    syn = load_dataset(uri, allow_synthetic=True)
    source = meta["data"]
    real = load_dataset(None if source.startswith("bundled:") else source)
    train_rows, holdout_rows = np.asarray(meta["train_rows"]), np.asarray(meta["holdout_rows"])
    if len(np.intersect1d(train_rows, holdout_rows)) or max(train_rows.max(), holdout_rows.max()) >= len(
        real.y
    ):
        raise ValueError(f"{storage.redact(uri)}: its sidecar's train/hold-out rows do not fit {source}")
    rep = report(
        real.x[train_rows],
        real.y[train_rows],
        real.x[holdout_rows],
        real.y[holdout_rows],
        syn.x,
        syn.y,
        seed=int(meta.get("seed", 0)),
        our_classifier=our_classifier,
    )
    rep.update(
        synthetic=storage.redact(uri),
        generator=meta.get("generator"),
        data=source,
        seed=meta.get("seed"),
        config=meta.get("config"),
    )
    return rep, real.x[holdout_rows], syn.x
