"""The synthetic-data report over many CV runs: one report per run (`synth_report.report`), each
metric's mean with a 95 % interval over the runs, and a verdict per goal made from those numbers.

Every comparison of generators (`gan-jax synth-report --runs`, `benchmarks/ctgan_bench.py`)
goes through `reports_per_run` and `summarize`, so a metric has one definition and one
interval wherever it is shown. A single run's detection AUC on about 60-110 held-out rows
varies by ±0.1 between runs; only the mean over runs, with its interval, is comparable.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import numpy as np

from gan_jax.artifacts import records, storage
from gan_jax.config import Config, load_experiment
from gan_jax.data import load_dataset
from gan_jax.evaluation import evaluate, stats
from gan_jax.studies import synth, synth_report
from gan_jax.studies.augmentation_study import interleaved_labels

# Numbers of each per-run report summarised over runs: (section, key).
SUMMARY_KEYS = (
    ("fidelity", "ks_complement_mean"),
    ("fidelity", "correlation_similarity"),
    ("fidelity", "detection_auc"),
    ("fidelity_reference_real_train", "detection_auc"),
    ("privacy", "closer_to_train_share_balanced"),
    ("privacy", "dcr_overfitting_protection_balanced"),
    ("privacy", "closer_to_train_share"),
    ("privacy", "dcr_overfitting_protection"),
    ("privacy", "dcr_to_train_median"),
    ("privacy", "dcr_to_holdout_median"),
    ("privacy", "near_copy_share"),
    ("privacy", "exact_copy_share"),
    ("privacy", "membership_inference_auc"),
)
UTILITY_KEYS = tuple(f"{which}.{m}" for which in ("trtr", "tstr") for m in synth_report.UTILITY_METRICS)


class Goal(NamedTuple):
    key: str  # a summary key
    label: str
    threshold: float  # met when the mean over runs is at most this


# Issue 22: synthetic rows hard to tell from real ones, and no closer to the training rows than
# to new patients beyond a margin (0.5 is ideal for both).
GOALS = (
    Goal("fidelity.detection_auc", "detection ROC-AUC", 0.75),
    Goal("privacy.closer_to_train_share_balanced", "share closer to training than to held-out rows", 0.60),
)


def synthetic_rows(config: Config, x, y, masks) -> tuple[np.ndarray, np.ndarray, float]:
    """(rows [R, n_max, F], labels [R, n_max], training seconds): one generator per run trained
    on that run's training rows (labels of `config.cv.labeled_fraction` of them), in one fused
    call; labels follow each run's labelled class shares (`interleaved_labels`)."""
    labeled = evaluate.labeled_masks(y, masks, config.cv.labeled_fraction, config.cv.seed)
    t0 = time.perf_counter()
    result = synth.fit_generators(config, x, y, masks, labeled_masks=labeled)
    jax.block_until_ready(result.state)
    seconds = time.perf_counter() - t0
    labels = interleaved_labels(np.asarray(result.state.fitted.prior)[:, 1], int(masks.sum(1).max()))
    return synth.sample(config, result.state, labels, seed=config.cv.seed), labels, seconds


def reports_per_run(x, y, masks, rows, labels, *, our_classifier: bool = False) -> list[dict[str, Any]]:
    """`synth_report.report` of each run r: its synthetic rows (as many as its training rows)
    against its held-out rows (~masks[r]), seed r."""
    out = []
    for r, m in enumerate(np.asarray(masks, bool)):
        n = int(m.sum())
        out.append(
            synth_report.report(
                x[m], y[m], x[~m], y[~m], rows[r, :n], labels[r, :n], seed=r, our_classifier=our_classifier
            )
        )
    return out


def per_run_values(reps: list[dict[str, Any]]) -> dict[str, list[float]]:
    """{"section.key": [value of each run]} of every summarised number, utility included
    ("utility.<classifier>.<trtr|tstr>.<metric>")."""
    values = {f"{s}.{k}": [float(rep[s][k]) for rep in reps] for s, k in SUMMARY_KEYS}
    for model in reps[0]["utility"]:
        for key in UTILITY_KEYS:
            which, metric = key.split(".")
            values[f"utility.{model}.{key}"] = [float(rep["utility"][model][which][metric]) for rep in reps]
    return values


def summarize(reps: list[dict[str, Any]], test_train_ratio: float) -> dict[str, dict[str, float]]:
    """{key: mean, std, 95 % interval, n} over runs (`evaluate.summarize`, Nadeau-Bengio
    corrected for runs that share training rows) of every number of `per_run_values`."""
    return {k: evaluate.summarize(v, test_train_ratio) for k, v in per_run_values(reps).items()}


def verdicts(summary: dict[str, dict[str, float]], goals=GOALS) -> list[dict[str, Any]]:
    """Each goal: met or not (by the mean over runs), the gap to its threshold, and whether the
    whole 95 % interval is on the goal's side."""
    out = []
    for g in goals:
        s = summary[g.key]
        out.append(
            {
                "goal": g.label,
                "key": g.key,
                "threshold": g.threshold,
                "mean": s["mean"],
                "ci95_low": s["ci95_low"],
                "ci95_high": s["ci95_high"],
                "met": s["mean"] <= g.threshold,
                "interval_within": s["ci95_high"] <= g.threshold,
                "gap": s["mean"] - g.threshold,
            }
        )
    return out


def verdict_line(v: dict[str, Any]) -> str:
    """One sentence per goal, from the numbers alone."""
    measured = f"{v['mean']:.3f} [{v['ci95_low']:.3f}, {v['ci95_high']:.3f}]"
    if v["met"]:
        whole = "the whole interval too" if v["interval_within"] else "not the whole interval"
        return f"{v['goal']} ≤ {v['threshold']:.2f}: **met** ({measured}; {whole})."
    return f"{v['goal']} ≤ {v['threshold']:.2f}: **not met** ({measured}; gap {v['gap']:+.3f})."


def paired(a: list[float], b: list[float], test_train_ratio: float) -> dict[str, float]:
    """a − b over the same runs (Nadeau-Bengio corrected t-test, 95 % interval)."""
    return stats.corrected_resampled_ttest(np.asarray(a), np.asarray(b), test_train_ratio)


def study(configs: dict[str, Config], x, y, masks) -> dict[str, Any]:
    """Each named generator config trained on the same runs and reported per run; the first is
    the one the goals are judged on, every other one is compared with it, paired over runs.

    Returns {"n_runs", "n_train", "n_holdout", "generators": {name: {config, summary, verdicts,
    train_seconds, per_run}}, "paired": [first − other, per utility and goal metric]}."""
    masks = np.asarray(masks, bool)
    ratio = float((~masks).sum() / masks.sum())
    gens = {}
    for name, config in configs.items():
        rows, labels, seconds = synthetic_rows(config, x, y, masks)
        reps = reports_per_run(x, y, masks, rows, labels)
        summary = summarize(reps, ratio)
        gens[name] = {
            "config": config.to_dict(),
            "summary": summary,
            "verdicts": verdicts(summary),
            "train_seconds_all_runs_fused": seconds,
            "per_run": per_run_values(reps),
        }
    first, *others = gens
    keys = [g.key for g in GOALS] + [k for k in gens[first]["per_run"] if ".tstr." in k]
    paired_rows = [
        {
            "a": first,
            "b": other,
            "metric": k,
            **paired(gens[first]["per_run"][k], gens[other]["per_run"][k], ratio),
        }
        for other in others
        for k in keys
    ]
    return {
        "n_runs": len(masks),
        "n_train": int(masks.sum(1).min()),
        "n_holdout": int((~masks).sum(1).min()),
        "test_train_ratio": ratio,
        "generators": gens,
        "paired": paired_rows,
    }


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"section.field": value} of a config's nested dict."""
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def _cell(s: dict[str, float]) -> str:
    return f"{s['mean']:.3f} [{s['ci95_low']:.3f}, {s['ci95_high']:.3f}]"


def to_markdown(rec: dict[str, Any], title: str = "Synthetic data report over CV runs") -> str:
    """The study as Markdown; every number is read from `rec`."""
    gens = rec["generators"]
    names = list(gens)
    lines = [
        f"# {title}",
        "",
        f"{rec['n_runs']} CV runs ({rec.get('folds', 'repeated stratified k-fold')}); per run, a generator "
        f"trained on the run's ≥ {rec['n_train']} training rows makes as many synthetic rows, scored "
        f"against the run's ≥ {rec['n_holdout']} held-out rows it never saw. Each cell: mean over runs "
        "[95 % interval, Nadeau-Bengio corrected]. Definitions: `gan_jax/studies/synth_report.py`.",
        f"Command: `{rec.get('command', '?')}`.",
        "",
        "## Verdict",
        "",
        *(f"- {verdict_line(v)}" for v in gens[names[0]]["verdicts"]),
        "",
        f"Judged on `{names[0]}`.",
        "",
        "## Metrics",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key in gens[names[0]]["summary"]:
        lines.append(f"| {key} | " + " | ".join(_cell(gens[n]["summary"][key]) for n in names) + " |")
    lines += [
        "",
        "Reference row `fidelity_reference_real_train.detection_auc`: the real training rows in place of "
        "the synthetic ones (what a perfect generator could reach against so few held-out rows).",
        "",
        "| generator | settings changed from the first | training s, all runs fused |",
        "|---|---|---:|",
    ]
    base = _flat(gens[names[0]]["config"])
    for n in names:
        diff = {k: v for k, v in _flat(gens[n]["config"]).items() if base.get(k) != v and k != "name"}
        lines.append(f"| {n} | {diff or '—'} | {gens[n]['train_seconds_all_runs_fused']:.1f} |")
    if rec["paired"]:
        lines += [
            "",
            f"## Paired over runs: {names[0]} − other (corrected t-test)",
            "",
            "| other | metric | Δ | 95 % interval | p |",
            "|---|---|---:|---|---:|",
        ]
        for p in rec["paired"]:
            lines.append(
                f"| {p['b']} | {p['metric']} | {p['mean_diff']:+.3f} | "
                f"[{p['ci95_low']:+.3f}, {p['ci95_high']:+.3f}] | {p['p']:.3g} |"
            )
    return "\n".join(lines) + "\n"


def run_over_runs(experiment: str, compare: list[str], n_runs: int, *, command: str) -> dict[str, Any]:
    """The study (`study`) of `experiment`'s generator, and each of `compare`, on the first
    `n_runs` runs of the experiment's CV folds, with its run record (command, commit, versions,
    device, load average before and after)."""
    configs = {name: load_experiment(name) for name in [experiment, *compare]}
    first = configs[experiment]
    data = load_dataset(first.data.uri)
    folds = evaluate.cv_folds(data.y, first.cv.n_folds, first.cv.n_repeats, first.cv.seed)
    if not 2 <= n_runs <= len(folds):
        raise ValueError(f"--runs must be in [2, {len(folds)}] for {experiment!r}, got {n_runs}")
    rec = records.run_record(command)
    rec.update(
        data=data.source,
        folds=f"first {n_runs} runs of {first.cv.n_folds}-fold × {first.cv.n_repeats}, seed {first.cv.seed}",
    )
    rec.update(study(configs, data.x, data.y, folds[:n_runs]))
    rec = records.finish_record(rec)
    return rec


def write(rec: dict[str, Any], out: str, name: str) -> None:
    """<out>/<name>.json (the record) and <out>/<name>.md."""
    records.write_json(storage.join(out, f"{name}.json"), rec)
    storage.write_text(storage.join(out, f"{name}.md"), to_markdown(rec))
