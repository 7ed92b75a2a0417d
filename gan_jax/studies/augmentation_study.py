"""The GAN-augmentation study: does adding synthetic rows to a training fold help a classifier?

For every run of the paper study's repeated stratified k-fold, a class-conditional generator
(`experiments/synth.py`) is trained on that run's training rows only (all runs in one fused
call); its rows are added to the same training fold at synthetic-to-real ratios 0, 0.5, 1 and 2
(n_synthetic = ratio × the run's real training rows), for logistic regression and our classifier
(the paper pipeline), with all labels and at a low labelled fraction (only that share of the
real training rows is labelled; the synthetic rows carry the labels they were generated for,
from a generator that read only the labelled rows' labels). Every condition is scored on the
run's real test rows. Ratio 0 is the baseline each ratio is compared with, paired by run
(Nadeau-Bengio corrected resampled t-test), Holm-corrected over all comparisons.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from gan_jax import runtime
from gan_jax.artifacts import records, storage
from gan_jax.artifacts.records import write_json
from gan_jax.config import Config, load_experiment
from gan_jax.data import load_dataset
from gan_jax.evaluation import evaluate, stats
from gan_jax.evaluation.baselines import make_baseline
from gan_jax.studies import synth
from gan_jax.training import table

RATIOS = (0.0, 0.5, 1.0, 2.0)
LOW_LABELED_FRACTION = 0.1
REGIMES = {"all labels": 1.0, f"{LOW_LABELED_FRACTION:.0%} labels": LOW_LABELED_FRACTION}
MODELS = ("logistic_regression", "ours (AE → SGAN)")
METRICS = ("accuracy", "f1", "roc_auc")
GROUP = 20  # runs per classifier call: rows grow as GROUP × synthetic rows, so calls stay small


def settings(quick: bool) -> tuple[Config, Config]:
    """(classifier config, generator config), the folds being the classifier config's; loaded by
    name (experiments/paper.py, experiments/synth.py): the library never imports experiments."""
    clf = load_experiment("paper", quick=quick)
    gen = load_experiment("synth", quick=quick)
    return clf, gen.replace(
        cv=gen.cv.replace(n_folds=clf.cv.n_folds, n_repeats=clf.cv.n_repeats, seed=clf.cv.seed)
    )


def interleaved_labels(malignant_share: np.ndarray, n: int) -> np.ndarray:
    """Labels [R, n] whose every prefix holds round(share × length) malignant rows (Bresenham
    order), so a ratio's synthetic rows are a prefix of the largest ratio's and stay stratified."""
    i = np.arange(1, n + 1)[None, :]
    p = np.asarray(malignant_share, np.float64)[:, None]
    return (np.floor(i * p + 0.5) - np.floor((i - 1) * p + 0.5)).astype(np.int32)


def generate(
    gen_config: Config, x, y, train_masks, labeled, n_max: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """(rows [R, n_max, F], labels [R, n_max], seconds to train all R generators in one call)."""
    t0 = time.perf_counter()
    result = synth.fit_generators(gen_config, x, y, train_masks, labeled_masks=labeled)
    jax.block_until_ready(result.state)
    seconds = time.perf_counter() - t0
    labels = interleaved_labels(np.asarray(result.state.fitted.prior)[:, 1], n_max)
    return synth.sample(gen_config, result.state, labels, seed=gen_config.cv.seed), labels, seconds


def _lr_proba(clf: Config, x, y, train_masks, labeled, syn_x, syn_y, n_syn) -> np.ndarray:
    """Logistic regression (scaler inside the pipeline) on each run's labelled real rows plus the
    first n_syn[r] synthetic rows; malignant probability [R, N] on every real row."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    out = []
    for r in range(len(train_masks)):
        xr = np.concatenate([x[labeled[r]], syn_x[r, : n_syn[r]]])
        yr = np.concatenate([y[labeled[r]], syn_y[r, : n_syn[r]]])
        model = make_baseline("logistic_regression", clf, clf.cv.seed + r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(xr, yr)
        out.append(model.predict_proba(x)[:, list(model.classes_).index(1)])
    return np.stack(out)


def _ours_proba(clf: Config, x, y, train_masks, labeled, syn_x, syn_y, n_syn) -> np.ndarray:
    """Our classifier on [real rows; each run's synthetic block], GROUP runs per fused call; a
    run's mask holds its real training rows and the first n_syn[r] rows of its own block."""
    n_runs, n_max = syn_x.shape[:2]
    out = []
    for lo in range(0, n_runs, GROUP):
        idx = np.arange(lo, min(lo + GROUP, n_runs))
        g = len(idx)
        xa = np.concatenate([x, syn_x[idx].reshape(g * n_max, -1)]).astype(np.float32)
        ya = np.concatenate([y, syn_y[idx].reshape(-1)]).astype(np.int32)
        block = np.zeros((g, g * n_max), bool)
        for j, r in enumerate(idx):
            block[j, j * n_max : j * n_max + n_syn[r]] = True
        tm = np.concatenate([train_masks[idx], block], axis=1)
        lm = np.concatenate([labeled[idx], block], axis=1)
        runs = table.make_runs(clf, ya, tm, labeled_masks=lm, run_ids=idx)
        out.append(table.fit_predict(clf, xa, ya, runs, x)[1])
    return np.concatenate(out)


def run_conditions(clf: Config, gen: Config, x, y, train_masks, log=print) -> dict[str, Any]:
    """Per-run test metrics {regime: {model: {ratio: {metric: [R]}}}} and timings."""
    n_train = train_masks.sum(1)
    n_max = int(np.floor(max(RATIOS) * n_train.max() + 0.5))
    test = ~train_masks
    per_run, timing = {}, {}
    for regime, fraction in REGIMES.items():
        labeled = evaluate.labeled_masks(y, train_masks, fraction, clf.cv.seed)
        syn_x, syn_y, gen_seconds = generate(
            gen.replace(**{"cv.labeled_fraction": fraction}), x, y, train_masks, labeled, n_max
        )
        timing[regime] = {"generator_seconds_all_runs": gen_seconds}
        log(f"{regime}: {len(train_masks)} generators trained in {gen_seconds:.1f} s")
        per_run[regime] = {m: {} for m in MODELS}
        for ratio in RATIOS:
            n_syn = np.floor(ratio * n_train + 0.5).astype(int)
            for model, fn in zip(MODELS, (_lr_proba, _ours_proba)):
                t0 = time.perf_counter()
                proba = fn(clf, x, y, train_masks, labeled, syn_x, syn_y, n_syn)
                m = evaluate.classification_metrics(y, proba, test)
                per_run[regime][model][str(ratio)] = {k: m[k].tolist() for k in METRICS}
                timing[regime][f"{model} ratio {ratio} seconds"] = time.perf_counter() - t0
            log(f"{regime}, ratio {ratio}: done")
    return {"per_run": per_run, "timing": timing}


def analyse(per_run: dict[str, Any], ratio_test_train: float) -> tuple[dict, list[dict]]:
    """(summaries {regime: {model: {ratio: {metric: summary}}}}, comparisons ratio vs 0)."""
    summary, comparisons = {}, []
    for regime, models in per_run.items():
        summary[regime] = {}
        for model, ratios in models.items():
            summary[regime][model] = {
                r: {k: evaluate.summarize(v, ratio_test_train) for k, v in ms.items()}
                for r, ms in ratios.items()
            }
            for r in ratios:
                if r == str(RATIOS[0]):
                    continue
                for k in METRICS:
                    t = stats.corrected_resampled_ttest(
                        ratios[r][k], ratios[str(RATIOS[0])][k], ratio_test_train
                    )
                    comparisons.append({"regime": regime, "model": model, "ratio": r, "metric": k, **t})
    for c, p in zip(comparisons, stats.holm([c["p"] for c in comparisons])):
        c["p_holm"] = p
        c["significant"] = p < stats.ALPHA
    return summary, comparisons


def verdict(summary: dict, comparisons: list[dict]) -> list[str]:
    """An overall sentence, then one per (regime, model), read from the tests."""
    up = sum(c["significant"] and c["mean_diff"] > 0 for c in comparisons)
    down = sum(c["significant"] and c["mean_diff"] < 0 for c in comparisons)
    below = sum(c["mean_diff"] < 0 for c in comparisons)
    effect = "improved" if up and not down else "worsened" if down and not up else "changed"
    overall = (
        f"Overall: {up + down} of {len(comparisons)} comparisons with ratio 0 are significant after Holm "
        f"({up} better, {down} worse); {below} of {len(comparisons)} point estimates are below ratio 0. "
    )
    if up + down == 0:
        overall += "Adding synthetic rows to the training fold did not measurably change either classifier, "
        overall += "with all labels or with few labels."
    else:
        overall += f"Synthetic rows {effect} some settings; see below."
    lines = [overall]
    for regime, models in summary.items():
        for model in models:
            mine = [c for c in comparisons if c["regime"] == regime and c["model"] == model]
            up = [c for c in mine if c["significant"] and c["mean_diff"] > 0]
            down = [c for c in mine if c["significant"] and c["mean_diff"] < 0]
            best = max(mine, key=lambda c: c["mean_diff"] if c["metric"] == "roc_auc" else -np.inf)
            name = f"{model}, {regime}"
            if not up and not down:
                lines.append(
                    f"{name}: no ratio changes any metric significantly (Holm-corrected p ≥ {stats.ALPHA}); "
                    f"best ROC-AUC change {100 * best['mean_diff']:+.2f} points at ratio {best['ratio']}."
                )
                continue
            fmt = lambda cs: ", ".join(
                f"{c['metric']} {100 * c['mean_diff']:+.2f} pts at ratio {c['ratio']}" for c in cs
            )
            parts = [f"improves {fmt(up)}" if up else "", f"worsens {fmt(down)}" if down else ""]
            lines.append(
                f"{name}: synthetic rows {' and '.join(p for p in parts if p)} (Holm p < {stats.ALPHA})."
            )
    return lines


def to_markdown(record: dict[str, Any]) -> str:
    """The study as Markdown; every number is read from `record` (results/augmentation.json)."""
    pct = lambda v: f"{100 * v:.2f}"
    generator = Config.from_dict(record["generator"]).synth.model
    lines = [
        "# GAN augmentation study",
        "",
        f"{record['n_runs']} runs ({record['n_repeats']} × stratified {record['n_folds']}-fold, seed "
        f"{record['seed']}), the paper study's folds. Generator: `{generator}` "
        f"(`experiments/synth.py`), trained on each run's training rows only; ratio = synthetic rows / "
        "real training rows. Scored on each run's real test rows. Means with 95 % CI "
        f"({evaluate.CI_METHOD}). Command: `{record['command']}`.",
        "",
        "## Verdict",
        "",
        *(f"- {v}" for v in record["verdict"]),
        "",
    ]
    for regime, models in record["summary"].items():
        lines += [
            f"## {regime}",
            "",
            "| model | ratio | " + " | ".join(METRICS) + " |",
            "|---|---:|" + "---:|" * len(METRICS),
        ]
        for model, ratios in models.items():
            for r, ms in ratios.items():
                cells = [
                    f"{pct(ms[k]['mean'])} [{pct(ms[k]['ci95_low'])}, {pct(ms[k]['ci95_high'])}]"
                    for k in METRICS
                ]
                lines.append(f"| {model} | {r} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Paired tests: ratio vs 0 (corrected resampled t-test, Holm over all "
        f"{len(record['comparisons'])})",
        "",
        "| labels | model | ratio | metric | Δ mean (pts) | 95 % CI | p | p (Holm) |",
        "|---|---|---:|---|---:|---|---:|---:|",
    ]
    for c in record["comparisons"]:
        lines.append(
            f"| {c['regime']} | {c['model']} | {c['ratio']} | {c['metric']} | {100 * c['mean_diff']:+.2f} | "
            f"[{100 * c['ci95_low']:+.2f}, {100 * c['ci95_high']:+.2f}] | {c['p']:.3g} | {c['p_holm']:.3g} |"
        )
    t = record["timing"]
    lines += ["", "## Time", ""]
    for regime, v in t.items():
        sec = v["generator_seconds_all_runs"]
        lines.append(
            f"- {regime}: {record['n_runs']} generators in one fused call: {sec:.1f} s "
            f"({sec / record['n_runs']:.2f} s per run)"
        )
    return "\n".join(lines) + "\n"


def figure(record: dict[str, Any], path: str) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regimes = list(record["summary"])
    fig, axes = plt.subplots(
        len(regimes), len(METRICS), figsize=(4.2 * len(METRICS), 3.4 * len(regimes)), squeeze=False
    )
    for i, regime in enumerate(regimes):
        for j, k in enumerate(METRICS):
            ax = axes[i, j]
            for model, ratios in record["summary"][regime].items():
                xs = [float(r) for r in ratios]
                s = [ratios[r][k] for r in ratios]
                mean = np.array([v["mean"] for v in s])
                err = np.array([[v["mean"] - v["ci95_low"], v["ci95_high"] - v["mean"]] for v in s]).T
                ax.errorbar(xs, 100 * mean, yerr=100 * err, marker="o", capsize=3, label=model)
            ax.set_title(f"{k}, {regime}", fontsize=10)
            ax.set_xlabel("synthetic / real training rows")
            ax.set_xticks([float(r) for r in RATIOS])
            ax.set_ylabel("%")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Adding synthetic rows to the training fold (mean, 95 % CI over CV runs)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    storage.write_bytes(path, buf.getvalue())


def run_augmentation_study(out: str = "results", quick: bool = False, log=print) -> dict[str, Any]:
    """Runs the study and writes <out>/augmentation.json, .md and .png. Returns the record.
    `quick`: 2 × 2-fold and few steps, a smoke run (its numbers mean nothing)."""
    rec = records.run_record()
    clf, gen = settings(quick)
    data = load_dataset(clf.data.uri)
    train_masks = evaluate.cv_folds(data.y, clf.cv.n_folds, clf.cv.n_repeats, clf.cv.seed)
    t0 = time.perf_counter()
    cond = run_conditions(clf, gen, data.x, data.y, train_masks, log=log)
    ratio = float((~train_masks).sum() / train_masks.sum())
    summary, comparisons = analyse(cond["per_run"], ratio)
    record = {
        **records.finish_record(rec),
        "quick": quick,
        "data": data.source,
        "seed": clf.cv.seed,
        "n_folds": clf.cv.n_folds,
        "n_repeats": clf.cv.n_repeats,
        "n_runs": len(train_masks),
        "test_train_ratio": ratio,
        "ratios": list(RATIOS),
        "regimes": REGIMES,
        "metrics": list(METRICS),
        "classifier": clf.to_dict(),
        "generator": gen.to_dict(),
        "summary": summary,
        "comparisons": comparisons,
        "verdict": verdict(summary, comparisons),
        "timing": cond["timing"],
        "total_seconds": time.perf_counter() - t0,
        "per_run": cond["per_run"],
    }
    write_json(storage.join(out, "augmentation.json"), record)
    storage.write_text(storage.join(out, "augmentation.md"), to_markdown(record))
    figure(record, storage.join(out, "augmentation.png"))
    return record


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    runtime.split_host_devices()
    runtime.enable_compilation_cache()
    run_augmentation_study(args.out, args.quick)
