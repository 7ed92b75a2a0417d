"""The study's Markdown report (results/README.md), generated from the study JSON only."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from gan_jax.artifacts import storage
from gan_jax.evaluation import evaluate, stats
from gan_jax.studies import label_study, tuned_study
from gan_jax.studies.formats import PAPER, pct


def best_baseline(study: dict[str, Any]) -> str:
    """The scikit-learn baseline with the highest mean accuracy (ties: higher ROC-AUC)."""
    sk = {k: m["summary"] for k, m in study["models"].items() if m["kind"] == "sklearn"}
    if not sk:
        return PAPER
    return max(sk, key=lambda k: (sk[k]["accuracy"]["mean"], sk[k]["roc_auc"]["mean"]))


def _cell(s: dict[str, float]) -> str:
    return f"{pct(s['mean'], 2)} ± {pct(s['std'], 2)} [{pct(s['ci95_low'], 2)}, {pct(s['ci95_high'], 2)}]"


def metrics_table(study: dict[str, Any]) -> list[str]:
    head = "| model | " + " | ".join(evaluate.METRICS) + " |"
    lines = [head, "|" + "---|" * (len(evaluate.METRICS) + 1)]
    for name, model in study["models"].items():
        kind = "" if model["kind"] == "gan_jax" else " (sklearn)"
        lines.append(
            f"| {name}{kind} | " + " | ".join(_cell(model["summary"][k]) for k in evaluate.METRICS) + " |"
        )
    claims = study["paper_claims"]
    cells = [pct(claims[k], 2) if k in claims else "not reported" for k in evaluate.METRICS]
    lines.append(
        "| **paper's claim** (single undisclosed split, not a measurement of ours) | "
        + " | ".join(cells)
        + " |"
    )
    return lines


def comparisons_table(study: dict[str, Any]) -> list[str]:
    lines = [
        "| paper pipeline vs | metric | mean difference (pp) | corrected 95 % CI (pp) | p |",
        "|---|---|---|---|---|",
    ]
    for c in study["comparisons"]:
        lines.append(
            f"| {c['b']} | {c['metric']} | {100 * c['mean_diff']:+.2f} | "
            f"[{100 * c['ci95_low']:+.2f}, {100 * c['ci95_high']:+.2f}] | {c['p']:.3g} |"
        )
    return lines


def _comparison(study: dict[str, Any], other: str, metric: str = "accuracy") -> dict[str, Any]:
    return next(c for c in study["comparisons"] if c["b"] == other and c["metric"] == metric)


def _effect(study: dict[str, Any], other: str, what: str) -> str:
    """A sentence on whether the paper pipeline differs from `other` in accuracy and ROC-AUC."""
    parts = []
    for metric in ("accuracy", "roc_auc"):
        c = _comparison(study, other, metric)
        verdict = (
            "no significant difference"
            if c["p"] >= stats.ALPHA
            else ("significantly better with it" if c["mean_diff"] > 0 else "significantly worse with it")
        )
        parts.append(f"{metric} {100 * c['mean_diff']:+.2f} pp (p = {c['p']:.3g}, {verdict})")
    return f"- **{what}**: paper pipeline minus '{other}': " + "; ".join(parts) + "."


def verdict(study: dict[str, Any]) -> list[str]:
    models = study["models"]
    ours = models[PAPER]["summary"]
    best = best_baseline(study)
    claims = study["paper_claims"]
    lines = [
        f"- **What the pipeline achieves**: accuracy {pct(ours['accuracy']['mean'], 2)} % "
        f"(95 % CI {pct(ours['accuracy']['ci95_low'], 2)}–{pct(ours['accuracy']['ci95_high'], 2)} %), "
        f"F1 {pct(ours['f1']['mean'], 2)} %, ROC-AUC {pct(ours['roc_auc']['mean'], 2)} % over "
        f"{ours['accuracy']['n']} runs of {study['n_repeats']} × {study['n_folds']}-fold CV.",
    ]
    if "no autoencoder" in models:
        lines.append(_effect(study, "no autoencoder", "Does the autoencoder help?"))
    if "no GAN (supervised)" in models:
        lines.append(_effect(study, "no GAN (supervised)", "Does the GAN help?"))
    if best != PAPER:
        lines.append(_effect(study, best, f"Against the best baseline ({best})"))
    inside = [k for k, v in claims.items() if ours[k]["ci95_low"] <= v <= ours[k]["ci95_high"]]
    p, r = claims["precision"], claims["recall"]
    runs = models[PAPER]["runs"]
    reach = ", ".join(f"{k} {np.mean(np.asarray(runs[k]) >= v) * 100:.0f} %" for k, v in claims.items())
    lines.append(
        f"- **The paper's claims**: of its four numbers, {len(inside)} ({', '.join(inside) or 'none'}) "
        "fall inside our 95 % CI of the mean. The paper reports one split, so compare single folds "
        f"too: the share of our {len(runs['accuracy'])} CV folds that reach each claimed number is "
        f"{reach}. Its F1 is not consistent with its own precision and recall: "
        f"2PR/(P+R) = {pct(2 * p * r / (p + r), 2)} %, not the claimed {pct(claims['f1'], 2)} %. "
        "A single undisclosed split cannot be checked; our numbers are what this pipeline reaches "
        "under repeated stratified CV."
    )
    lines.append(
        "- **What 'semi-supervised' means here**: in this table every training row is labelled "
        "(labelled fraction 100 %), so the SGAN's real/fake term only regularises a supervised "
        "classifier. Where labels are scarce, see the label-scarcity study below."
    )
    return lines


def _optional_json(uri: str) -> dict[str, Any] | None:
    try:
        return json.loads(storage.read_text(uri))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _optional_text(uri: str) -> str | None:
    try:
        return storage.read_text(uri)
    except FileNotFoundError:
        return None


def _figure4_cell(name: str, latency: dict[str, Any] | None) -> str:
    if latency is None:
        return f"not run (`{name}.json` missing)"
    run = latency["runs"]["model"]
    t = np.array([w["t_s"] for w in run["windows"]])
    p99 = np.array([w["p99_ms"] for w in run["windows"]], float)
    ok = np.isfinite(p99)  # a window without requests has no p99
    trend = np.polyfit(t[ok] / 60, p99[ok], 1)[0] if ok.sum() > 1 else float("nan")
    cell = (
        f"{run['duration_s'] / 60:.0f} min, {run['req_per_s']:,.0f} requests/s, "
        f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms, {run['failed']} failed; "
        f"p99 trend {trend:+.3f} ms/min"
    )
    if "last_vs_first_minute_p99" in run:
        cell += f"; last/first-minute p99 {run['last_vs_first_minute_p99']:.2f}"
    return cell + f" (`{name}.json`)"


def figures_section(study: dict[str, Any], out: str) -> list[str]:
    """The paper's three figures beside ours, each with the command that regenerates it."""
    ours, claims = study["models"][PAPER]["summary"], study["paper_claims"]
    fig3 = ", ".join(
        f"{k} {pct(ours[k]['mean'], 2)} [{pct(ours[k]['ci95_low'], 2)}, {pct(ours[k]['ci95_high'], 2)}]"
        for k in claims
    )
    soak = _optional_json(f"{out}/latency_soak.json")
    fig4 = f"short run: {_figure4_cell('latency', _optional_json(f'{out}/latency.json'))}"
    if soak is not None:
        fig4 += f"; soak: {_figure4_cell('latency_soak', soak)}"
    energy = _optional_json(f"{out}/energy.json")
    if energy is None:
        fig5 = "not run (`energy.json` missing)"
    else:
        fits = {k: t["fit"]["joules_per_task"] for k, t in energy["tasks"].items()}
        fig5 = ", ".join(f"{k}: {j:.3g} J per task" for k, j in fits.items())
        fig5 += f"; source **{energy['label']}** (`energy.json`)"
    return [
        "| figure | the paper (its claim; method not stated) | ours, measured here | regenerate |",
        "|---|---|---|---|",
        "| 3: metrics | bars of four numbers from one undisclosed split: "
        + ", ".join(f"{k} {pct(v, 2)}" for k, v in claims.items())
        + f" | mean [95 % CI] % over {ours['accuracy']['n']} CV runs: {fig3} (`figure3_metrics.png`) "
        "| `gan-jax reproduce` |",
        "| 4: latency over time | rises roughly linearly from ~150 ms to over 200 ms "
        f"| {fig4} (`figure4_latency*.png`) | `python -m benchmarks.load_test --bundle runs/bundle` "
        "(soak: `--duration 600 --tag soak`) |",
        f"| 5: energy vs number of tasks | energy against 10-100 tasks | {fig5} "
        "(`figure5_energy.png`) | `python -m benchmarks.energy_bench --bundle runs/bundle` |",
        "",
        "All of this folder at once, one job after another: `python -m benchmarks.regenerate_results` "
        "(`--list`: each step, its command and time; `--only`: some). Every file here traces to the run "
        "record (command, commit, versions, device, load) in its JSON; `python -m "
        "benchmarks.stale_results` lists those whose code changed since.",
    ]


SECTIONS = (  # other commands' Markdown, each under its own heading
    ("tuned_study.md", "Tuned study: every model, test and chosen setting"),
    ("augmentation.md", "Does adding GAN-made synthetic rows help?"),
    ("synth_report.md", "Synthetic patients: fidelity, utility, privacy"),
    ("ctgan_bench.md", "CTGAN beside our conditional GAN"),
    ("bench_scale.md", "Sweeps: scaling with devices and runs per call"),
    ("bench_scale_devices_blocks/bench_scale.md", "Sweeps: devices and run blocks"),
    ("image_study.md", "Images: the conv SGAN on synthetic nuclei"),
    ("bench_images.md", "Images: training throughput"),
)


def _demote_headings(markdown: str) -> str:
    """A fragment's headings two levels down, so they nest under this README's sections."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.splitlines())


def _wall_time_line(study: dict[str, Any]) -> str:
    if "wall_seconds" not in study:
        return ""
    load = study.get("load_average_at_end")
    cores = f"; load average (1, 5, 15 min) at the end: {', '.join(f'{v:.1f}' for v in load)}" if load else ""
    return (
        f"The whole reproduction (ablations, baselines and the label-scarcity study) took "
        f"{study['wall_seconds']:.0f} s wall on this machine ({study['device']['count']} XLA "
        f"devices{cores}; a load above the core count means other jobs slowed it)."
    )


TUNED_MISSING = (
    "The tuned comparison (`results/tuned_study.json`, written by `python -m benchmarks.tuned_study`) "
    "is not in this results folder yet; until it is, no result here compares tuned models."
)
OLDER = (
    "Older results below: the paper's fixed settings, nothing tuned (the label-scarcity rows among "
    "them compare untuned models; the headline above supersedes them)."
)


def _tuned_headline(out: str, level: str) -> list[str]:
    """The headline every results page leads with: the tuned SGAN against the best tuned
    baseline per labelled fraction (`tuned_study.headline`), then the label of what follows."""
    tuned = _optional_json(f"{out}/tuned_study.json")
    body = tuned_study.headline(tuned) if tuned else [TUNED_MISSING]
    return [f"{level} Headline: does the semi-supervised GAN beat tuned baselines?", "", *body, "", OLDER, ""]


def _label_section(out: str) -> list[str]:
    labels = _optional_json(f"{out}/label_study.json")
    return [*label_study.markdown(labels), ""] if labels else []


def study_markdown(study: dict[str, Any], out: str = "results") -> str:
    """results/README.md: tables, paired tests, verdict, figures and the speed benchmark."""
    d = study["device"]
    lines = [
        "# Results: reproduction of Ramar & Rathna on WDBC",
        "",
        f"Written by `{study['command']}` (commit `{study['git_commit']}`, {d['count']} × {d['kind']}, "
        f"jax {study['versions'].get('jax')}). Every number below comes from `study.json` in this "
        "folder; rerunning the command with the same seed reproduces them exactly.",
        "",
        "The library versions are recorded in `study.json` (`versions`); README.md's set-up section "
        "names the lock file that installs exactly them (generated by `python -m benchmarks.readme`, "
        "which checks the two against each other).",
        "",
        f"Data: {study['data']}; {study['n_repeats']} × repeated stratified {study['n_folds']}-fold CV "
        f"(seed {study['seed']}); every model, ablation and baseline sees exactly the same folds "
        f"(sha256 of the fold masks: `{study['folds_sha256'][:16]}…`); every scaler, autoencoder and "
        "GAN is fitted on the training part of each fold only; nothing is tuned.",
        "",
        *_tuned_headline(out, "##"),
        "## Verdict",
        "",
        *verdict(study),
        "",
        "## Metrics (%, mean ± std [95 % CI] over CV runs)",
        "",
        "Positive class = malignant; precision/recall/F1 are binary for that class; a case is "
        "malignant when P(malignant) >= 0.5, for every model and baseline. CI: " + evaluate.CI_METHOD + ".",
        "",
        *metrics_table(study),
        "",
        "## Paired comparisons (corrected resampled t-test, same runs)",
        "",
        *comparisons_table(study),
        "",
        "## The paper's figures beside ours",
        "",
        *figures_section(study, out),
        "",
        "## Figures",
        "",
        "- Figure 3 (paper: a bar chart of its four claimed metrics): `figure3_metrics.png` — ours "
        "with 95 % CI error bars beside the best baseline and the paper's claim (hatched: no interval).",
        "- `confusion_matrix.png`: the paper pipeline's test predictions summed over all runs.",
        "",
        "![Figure 3](figure3_metrics.png)",
        "",
        *_label_section(out),
        "## Training time of each model in this study",
        "",
        f"The whole reproduction (ablations, baselines and the label-scarcity study) took "
        f"{study['wall_seconds']:.0f} s wall on this machine."
        if "wall_seconds" in study
        else "",
        "",
        "| model | wall time (s, incl. compilation) |",
        "|---|---|",
        *[f"| {k} | {m['seconds']:.1f} |" for k, m in study["models"].items()],
    ]
    for fragment in (
        "bench_train.md",
        "latency.md",
        "latency_soak.md",
        "latency_http_vs_grpc.md",
        "energy.md",
    ):
        text = _optional_text(f"{out}/{fragment}")
        if text:
            lines += ["", text.strip()]
    for fragment, title in SECTIONS:
        text = _optional_text(f"{out}/{fragment}")
        if text:
            lines += ["", f"## {title} (`{fragment}`)", "", _demote_headings(text.strip())]
    return "\n".join(lines) + "\n"


# -- the README's results block, generated from results/ ------------------------------------

README_BEGIN, README_END = "<!-- results:begin (python -m benchmarks.readme) -->", "<!-- results:end -->"


def readme_results(out: str = "results") -> str:
    """The top of README.md: the tuned SGAN against the best tuned baseline per labelled
    fraction, then (labelled as older, untuned) what the paper config reaches and what it costs;
    every number read from a file in `out`."""
    study = json.loads(storage.read_text(f"{out}/study.json"))
    s = study["models"][PAPER]["summary"]
    cell = lambda k: f"{pct(s[k]['mean'], 2)} [{pct(s[k]['ci95_low'], 2)}, {pct(s[k]['ci95_high'], 2)}]"
    lines = [
        README_BEGIN,
        *_tuned_headline(out, "###"),
        f"| paper config (`experiments/paper.py`), {s['accuracy']['n']} runs of "
        f"{study['n_repeats']}×{study['n_folds']}-fold CV | accuracy % | F1 % | ROC-AUC % |",
        "|---|---|---|---|",
        f"| measured, mean [95 % CI] (`results/study.json`) | {cell('accuracy')} | {cell('f1')} | "
        f"{cell('roc_auc')} |",
        "| the paper's claim (one undisclosed split) | "
        + " | ".join(
            pct(study["paper_claims"][k], 2) if k in study["paper_claims"] else "—"
            for k in ("accuracy", "f1", "roc_auc")
        )
        + " |",
        "",
    ]
    bench = _optional_json(f"{out}/bench_train.json")
    if bench is not None:
        f, load = bench["fused"], bench["load_average"]["max_1min"]
        lines.append(
            f"Cost on this {f['cores']}-core CPU (`results/bench_train.json`, load average up to "
            f"{load:.1f}): training all {f['runs']} runs {f['first_call_s']:.0f} s in a fresh process "
            f"with an empty compilation cache, {f['training_wall_s']:.0f} s once compiled "
            f"({f['cpu_s_per_run']:.3f} CPU-s per run)."
        )
    if "wall_seconds" in study:
        lines.append(_wall_time_line(study))
    n_head = len(_tuned_headline(out, "###")) + 5  # the headline, then the paper config's table
    head, prose = lines[:n_head], [line for line in lines[n_head:] if line]
    return "\n".join([*head, "", "\n\n".join(prose), README_END])
