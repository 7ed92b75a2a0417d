"""CTGAN (Xu et al. 2019, the `ctgan` package) beside our class-conditional GAN, on the same runs.

For the first K runs of the paper study's folds (repeat 0, K folds), both generators are
trained on each run's training rows only: ours (`experiments/synth.py`) for all K runs in one
fused call, CTGAN (its defaults, CPU) once per run. Then, per run and generator: the synthetic
data report (`gan_jax.studies.synth_report`, logistic-regression utility) on the run's test rows, and the
augmentation rows of `gan_jax.studies.augmentation_study` (ratios 0, 0.5, 1, 2, all labels, logistic
regression and our classifier). Also: training time per fold and generation rows/s for both, in
this one process on this machine.

Needs the optional extra: pip install 'gan_jax[ctgan]' (PyTorch; CPU wheel is enough).

Run:    python -m benchmarks.ctgan_bench --out results          (--quick: 2 runs, a smoke test)
Result: results/ctgan_bench.json and .md, written by that command.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks import harness
from gan_jax import runtime
from gan_jax.artifacts import storage
from gan_jax.data import FEATURE_NAMES, load_dataset
from gan_jax.evaluation import evaluate, stats
from gan_jax.studies import augmentation_study as aug
from gan_jax.studies import synth, synth_report

GENERATORS = ("ours", "ctgan")
REPORT_KEYS = {
    "fidelity": ("ks_complement_mean", "correlation_similarity", "detection_auc"),
    "privacy": (
        "dcr_to_train_median",
        "near_copy_share",
        "closer_to_train_share_balanced",
        "membership_inference_auc",
    ),
}


def fit_ctgan(x: np.ndarray, y: np.ndarray, epochs: int, seed: int):
    import pandas as pd
    import torch
    from ctgan import CTGAN

    torch.manual_seed(seed)
    model = CTGAN(epochs=epochs, enable_gpu=False)
    model.set_random_state(seed)
    frame = pd.DataFrame(x, columns=FEATURE_NAMES).assign(diagnosis=np.where(y == 1, "M", "B"))
    model.fit(frame, discrete_columns=["diagnosis"])
    return model


def sample_ctgan(model, labels: np.ndarray) -> np.ndarray:
    """Rows [len(labels), F] in the order of `labels`: conditional sampling per class, keeping
    rows whose generated diagnosis is the class asked for (CTGAN's condition is a hint)."""
    rows = np.zeros((len(labels), len(FEATURE_NAMES)), np.float32)
    for c, code in enumerate("BM"):
        need = int(np.sum(labels == c))
        got = []
        while sum(len(g) for g in got) < need:
            frame = model.sample(2 * need + 10, condition_column="diagnosis", condition_value=code)
            got.append(frame.loc[frame["diagnosis"] == code, list(FEATURE_NAMES)].to_numpy(np.float32))
        rows[labels == c] = np.concatenate(got)[:need]
    return rows


def train_both(args, gen_config, x, y, masks):
    """Synthetic rows {generator: [K, n_max, F]}, labels [K, n_max] and timings."""
    k = len(masks)
    n_max = int(np.floor(max(aug.RATIOS) * masks.sum(1).max() + 0.5))
    labeled = evaluate.labeled_masks(y, masks, 1.0, gen_config.cv.seed)
    t0 = time.perf_counter()
    result = synth.fit_generators(gen_config, x, y, masks, labeled_masks=labeled)
    import jax

    jax.block_until_ready(result.state)
    ours_train = time.perf_counter() - t0
    labels = aug.interleaved_labels(np.asarray(result.state.fitted.prior)[:, 1], n_max)
    ours_rows = synth.sample(gen_config, result.state, labels, seed=gen_config.cv.seed)  # warm-up too
    t0 = time.perf_counter()
    synth.sample(gen_config, result.state, labels, seed=gen_config.cv.seed + 1)
    ours_rate = labels.size / (time.perf_counter() - t0)
    ctgan_rows, ctgan_train, ctgan_rate = [], [], []
    for r in range(k):
        t0 = time.perf_counter()
        model = fit_ctgan(x[masks[r]], y[masks[r]], args.ctgan_epochs, gen_config.cv.seed + r)
        ctgan_train.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ctgan_rows.append(sample_ctgan(model, labels[r]))
        ctgan_rate.append(labels.shape[1] / (time.perf_counter() - t0))
        print(f"ctgan run {r}: trained in {ctgan_train[-1]:.1f} s", flush=True)
    timing = {
        "ours": {
            "train_seconds_all_runs_fused": ours_train,
            "train_seconds_per_run": ours_train / k,
            "generation_rows_per_second": ours_rate,
        },
        "ctgan": {
            "train_seconds_per_run": float(np.mean(ctgan_train)),
            "train_seconds_each": ctgan_train,
            "generation_rows_per_second": float(np.mean(ctgan_rate)),
            "epochs": args.ctgan_epochs,
        },
    }
    return {"ours": ours_rows, "ctgan": np.stack(ctgan_rows)}, labels, labeled, timing


def reports(x, y, masks, rows, labels) -> dict:
    out = {}
    for g in GENERATORS:
        out[g] = []
        for r, m in enumerate(masks):
            n = int(m.sum())  # as many synthetic rows as real training rows (ratio 1)
            rep = synth_report.report(
                x[m], y[m], x[~m], y[~m], rows[g][r, :n], labels[r, :n], seed=r, our_classifier=False
            )
            out[g].append(rep)
    return out


def augmentation(clf, x, y, masks, labeled, rows, labels) -> dict:
    per_run = {g: {m: {} for m in aug.MODELS} for g in GENERATORS}
    for g in GENERATORS:
        for ratio in aug.RATIOS:
            n_syn = np.floor(ratio * masks.sum(1) + 0.5).astype(int)
            for model, fn in zip(aug.MODELS, (aug._lr_proba, aug._ours_proba)):
                proba = fn(clf, x, y, masks, labeled, rows[g], labels, n_syn)
                m = evaluate.classification_metrics(y, proba, ~masks)
                per_run[g][model][str(ratio)] = {k: m[k].tolist() for k in aug.METRICS}
    return per_run


def summarize(reps, per_run, ratio) -> tuple[dict, list]:
    keys = [(part, k) for part, ks in REPORT_KEYS.items() for k in ks]
    table = {
        g: {f"{p}.{k}": float(np.mean([rep[p][k] for rep in reps[g]])) for p, k in keys} for g in GENERATORS
    }
    for g in GENERATORS:
        for which in ("trtr", "tstr"):
            for k in aug.METRICS:
                vals = [rep["utility"]["logistic_regression"][which][k] for rep in reps[g]]
                table[g][f"utility.logistic_regression.{which}.{k}"] = float(np.mean(vals))
    tests = []
    for model in aug.MODELS:
        for r in (str(v) for v in aug.RATIOS[1:]):
            for k in aug.METRICS:
                a, b = per_run["ctgan"][model][r][k], per_run["ours"][model][r][k]
                tests.append(
                    {"model": model, "ratio": r, "metric": k, **stats.corrected_resampled_ttest(a, b, ratio)}
                )
    for t, p in zip(tests, stats.holm([t["p"] for t in tests])):
        t["p_holm"] = p
    return table, tests


def _study_time_line(rec: dict) -> list[str]:
    s = rec.get("augmentation_study_generator_seconds")
    if not s:
        return []
    return [
        "",
        f"From results/augmentation.json (another process at another time on this shared machine, "
        "so not comparable with the rows above): ours trained all "
        f"{s['n_runs']} CV runs' generators in one fused call in {s['seconds']:.1f} s "
        f"({s['seconds'] / s['n_runs']:.2f} s per run).",
    ]


def to_markdown(rec: dict) -> str:
    t, tm = rec["report_means"], rec["timing"]
    lines = [
        "# CTGAN beside our conditional GAN",
        "",
        f"{rec['n_runs']} runs (repeat 0 of the paper study's {rec['n_folds']}-fold, seed {rec['seed']}); "
        "both generators trained on each run's training rows only, in one process on "
        f"{rec['device']['count']} × {rec['device']['kind']}. Command: `{rec['command']}`.",
        "",
        "## Speed",
        "",
        "| generator | training s per fold | generation rows/s | note |",
        "|---|---:|---:|---|",
        f"| ours ({rec['generator']['synth_model']}, {rec['generator']['synth_steps']} steps) | "
        f"{tm['ours']['train_seconds_per_run']:.2f} | {tm['ours']['generation_rows_per_second']:.0f} | "
        f"all {rec['n_runs']} runs in one fused call: {tm['ours']['train_seconds_all_runs_fused']:.1f} s "
        "(incl. compilation) |",
        f"| CTGAN ({tm['ctgan']['epochs']} epochs) | {tm['ctgan']['train_seconds_per_run']:.2f} | "
        f"{tm['ctgan']['generation_rows_per_second']:.0f} | one run at a time (PyTorch, CPU) |",
        *_study_time_line(rec),
        "",
        "Not equal resources: ours runs the folds batched on all host devices; CTGAN one fold at a "
        "time with PyTorch's own CPU threads.",
        "",
        "## Report (mean over runs; synthetic rows = real training rows in number)",
        "",
        "| metric | ours | CTGAN |",
        "|---|---:|---:|",
    ]
    for key in t["ours"]:
        lines.append(f"| {key} | {t['ours'][key]:.4f} | {t['ctgan'][key]:.4f} |")
    lines += [
        "",
        "## Augmentation (mean test metric over runs, %; all labels)",
        "",
        "| model | ratio | " + " | ".join(f"{k} ours | {k} CTGAN" for k in aug.METRICS) + " |",
        "|---|---:|" + "---:|" * (2 * len(aug.METRICS)),
    ]
    for model in aug.MODELS:
        for r in (str(v) for v in aug.RATIOS):
            cells = [
                f"{100 * np.mean(rec['augmentation'][g][model][r][k]):.2f}"
                for k in aug.METRICS
                for g in GENERATORS
            ]
            lines.append(f"| {model} | {r} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Paired CTGAN − ours (corrected resampled t-test, Holm over {len(rec['tests'])}; with "
        f"{rec['n_runs']} runs these tests have little power):",
        "",
        "| model | ratio | metric | Δ (pts) | p (Holm) |",
        "|---|---:|---|---:|---:|",
    ]
    for c in rec["tests"]:
        delta = f"{100 * c['mean_diff']:+.2f}"
        lines.append(f"| {c['model']} | {c['ratio']} | {c['metric']} | {delta} | {c['p_holm']:.3g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Runs the comparison, writes `<out>/ctgan_bench.json` and `.md`, returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results")
    parser.add_argument("--runs", type=int, default=10, help="first K runs of the paper folds (default 10)")
    parser.add_argument("--ctgan-epochs", type=int, default=300, help="CTGAN epochs (default: its 300)")
    parser.add_argument("--quick", action="store_true", help="2 runs, 5 CTGAN epochs, tiny configs")
    args = parser.parse_args(argv)
    runtime.split_host_devices()
    runtime.enable_compilation_cache()
    rec = harness.record(argv, module="benchmarks.ctgan_bench")
    if args.quick:
        args.runs, args.ctgan_epochs = 2, 5
    clf, gen = aug.settings(args.quick)
    data = load_dataset(clf.data.uri)
    masks = evaluate.cv_folds(data.y, clf.cv.n_folds, clf.cv.n_repeats, clf.cv.seed)[: args.runs]
    rows, labels, labeled, timing = train_both(args, gen, data.x, data.y, masks)
    reps = reports(data.x, data.y, masks, rows, labels)
    per_run = augmentation(clf, data.x, data.y, masks, labeled, rows, labels)
    ratio = float((~masks).sum() / masks.sum())
    table, tests = summarize(reps, per_run, ratio)
    import ctgan

    rec.update(
        {
            "n_runs": args.runs,
            "n_folds": clf.cv.n_folds,
            "seed": clf.cv.seed,
            "data": data.source,
            "generator": gen.to_dict(),
            "classifier": clf.to_dict(),
            "ctgan_version": ctgan.__version__,
            "timing": timing,
            "report_means": table,
            "tests": tests,
            "augmentation": per_run,
            "reports": reps,
        }
    )
    study = storage.join(args.out, "augmentation.json")
    if storage.exists(study):
        st = json.loads(storage.read_text(study))
        first = next(iter(st["timing"].values()))
        rec["augmentation_study_generator_seconds"] = {
            "n_runs": st["n_runs"],
            "seconds": first["generator_seconds_all_runs"],
        }
    rec = harness.finish(rec)
    harness.write(args.out, "ctgan_bench", rec, to_markdown(rec))
    print(to_markdown(rec))
    return rec


if __name__ == "__main__":
    main()
