"""The tuned study: the semi-supervised GAN against tuned baselines at each labelled fraction.

Nothing is compared at fixed settings: at every labelled fraction and every outer fold, the
SGAN (over its compiled structures × numeric settings, `gan_jax.evaluation.sweep`) and every
baseline (its own grid) choose their settings on the same inner folds of the outer fold's
labelled rows (`gan_jax.evaluation.nested_scarce`), are refitted on the outer training fold and
scored once on its test rows. The outer-fold scores are compared paired (corrected resampled
t-test) with the SGAN against every baseline at every fraction, Holm-corrected over the whole
family. `headline` states, per fraction, the SGAN against the best tuned baseline.

Run: python -m benchmarks.tuned_study --experiment tuned   (experiments/tuned.py)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from gan_jax.artifacts.records import masks_digest
from gan_jax.config import Config, load_experiment
from gan_jax.data import Dataset
from gan_jax.evaluation import evaluate, nested_scarce, stats, sweep
from gan_jax.studies.formats import pct

SGAN = "SGAN (tuned)"
COMPARED = ("accuracy", "roc_auc")
SELECTION = (
    "each model is tuned twice from the same inner runs: by inner accuracy for the accuracy "
    "comparison and by inner ROC-AUC for the ROC-AUC comparison (a setting that ranks well can "
    "still put every case in one class at the 0.5 threshold)"
)


@dataclasses.dataclass(frozen=True)
class TunedStudyConfig:
    """One tuned study.

    base: the SGAN's shared settings (data, seed, scaler, widths); `structures` change it.
    structures: (name, {dotted Config path: value}) pairs, one compiled program each
      (schedule.gen_loss, model.latent_dim, schedule.gan_steps, schedule.batch_size,
      schedule.ssl_extras).
    space: (name, values) pairs of `sweep.SWEEPABLE` numeric settings, searched as a grid in
      every structure (per-run data: no recompilation). The first value of each should be the
      base's, so ties go to the paper's settings.
    """

    name: str
    base: Config
    structures: tuple[tuple[str, dict[str, Any]], ...]
    space: tuple[tuple[str, tuple], ...]
    fractions: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 1.0)
    n_folds: int = 5
    n_repeats: int = 2
    n_inner: int = 3
    baselines: tuple[str, ...] = tuple(nested_scarce.SCARCE_BASELINES)

    def __post_init__(self):
        if not self.structures or not self.fractions:
            raise ValueError(f"tuned study {self.name!r}: needs at least one structure and one fraction")

    def structure_settings(self) -> dict[str, tuple[Config, list[sweep.Setting]]]:
        """name -> (the structure's config, its grid of numeric settings)."""
        space = {k: list(v) for k, v in self.space}
        out = {}
        for name, changes in self.structures:
            cfg = self.base.replace(name=name, **changes)
            out[name] = (cfg, sweep.grid(cfg, space))
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["base"] = self.base.to_dict()
        return d


def load_study(spec: str, quick: bool = False) -> TunedStudyConfig:
    """The TunedStudyConfig an experiment file's `get_config` returns ("tuned", "tuned:full",
    a .py path; `quick` adds "quick" to the argument), as `config.load_experiment` does for a
    Config.

    Raises:
      ValueError: no get_config, or it returned another type.
    """
    return load_experiment(spec, quick, kind=TunedStudyConfig)


def run_tuned_study(
    cfg: TunedStudyConfig, data: Dataset, outer: np.ndarray | None = None, *, progress: bool = False
) -> dict[str, Any]:
    """Runs the study; returns its record (JSON-able, without the run record's provenance).

    Args:
      outer: [O, N] outer training masks (default: the config's repeated stratified k-fold of
        data.y; given, e.g. to keep the folds fixed while test rows are perturbed).
    """
    t0 = time.perf_counter()
    x, y, seed = data.x, data.y, cfg.base.cv.seed
    if outer is None:
        outer = evaluate.cv_folds(y, cfg.n_folds, cfg.n_repeats, seed)
    labeled = np.stack([evaluate.labeled_masks(y, outer, f, seed) for f in cfg.fractions])  # [F, O, N]
    plan = nested_scarce.InnerPlan(y, outer, labeled, cfg.n_inner, seed)
    structures = cfg.structure_settings()
    t_sgan = time.perf_counter()
    sgan = nested_scarce.tune_sgan(structures, x, y, outer, labeled, plan, COMPARED, progress=progress)
    t_base = time.perf_counter()
    base = nested_scarce.tune_baselines(x, y, outer, labeled, plan, COMPARED, seed, cfg.baselines)
    t_end = time.perf_counter()
    ratio = float((~outer).sum() / outer.sum())
    models = {SGAN: sgan, **base}
    per_fraction = []
    for i, f in enumerate(cfg.fractions):
        entry_models = {}
        for name, m in models.items():
            by = m["by"]  # each compared metric from the model tuned by that metric
            entry_models[name] = {
                "summary": {k: evaluate.summarize(by[k]["metrics"][k][i], ratio) for k in COMPARED},
                "runs": {k: np.asarray(by[k]["metrics"][k][i]).tolist() for k in COMPARED},
                "chosen": {k: by[k]["chosen"][i] for k in COMPARED},
                "every_metric": {
                    sel: {k: evaluate.summarize(by[sel]["metrics"][k][i], ratio) for k in evaluate.METRICS}
                    for sel in COMPARED
                },
            }
        per_fraction.append(
            {
                "fraction": f,
                "labeled_per_run_mean": float(labeled[i].sum(1).mean()),
                "labeled_masks_sha256": masks_digest(labeled[i]),
                "inner_folds_per_outer_fold": plan.folds_per_cell()[i].tolist(),
                "models": entry_models,
            }
        )
    n_settings = sum(len(s) for _, s in structures.values())
    return {
        "experiment": cfg.name,
        "study_config": cfg.to_dict(),
        "fractions": list(cfg.fractions),
        "n_outer": len(outer),
        "outer": f"{cfg.n_repeats} × repeated stratified {cfg.n_folds}-fold",
        "n_inner_max": cfg.n_inner,
        "selection": SELECTION,
        "n_structures": len(structures),
        "n_sgan_settings": n_settings,
        "n_sgan_inner_runs": n_settings * len(plan.train),
        "baseline_grids": {k: nested_scarce.SCARCE_BASELINES[k][1] for k in cfg.baselines},
        "folds_sha256": masks_digest(outer),
        "test_train_ratio": ratio,
        "per_fraction": per_fraction,
        "comparisons": stats.compare(per_fraction, SGAN, COMPARED, ratio, group="fraction", adjust=True),
        "holm": "Holm-Bonferroni over every (fraction, baseline, metric) test in `comparisons`",
        "seconds": {"sgan": t_base - t_sgan, "baselines": t_end - t_base, "total": t_end - t0},
        "sgan_timing": sgan["timing"],
    }


def best_baseline(entry: dict[str, Any], metric: str) -> str:
    """The baseline with the highest mean outer-fold `metric` at this fraction."""
    others = {k: m["summary"][metric]["mean"] for k, m in entry["models"].items() if k != SGAN}
    return max(others, key=others.get)


def headline_rows(study: dict[str, Any]) -> list[dict[str, Any]]:
    """Per fraction and metric: the SGAN, the best tuned baseline by that metric, and their
    paired test (Holm-adjusted over the study's whole family)."""
    rows = []
    for entry in study["per_fraction"]:
        f = entry["fraction"]
        for metric in COMPARED:
            best = best_baseline(entry, metric)
            test = next(
                c
                for c in study["comparisons"]
                if c["fraction"] == f and c["b"] == best and c["metric"] == metric
            )
            s = {k: entry["models"][k]["summary"][metric] for k in (SGAN, best)}
            rows.append(
                {
                    "fraction": f,
                    "metric": metric,
                    "best": best,
                    "sgan": s[SGAN],
                    "other": s[best],
                    "test": test,
                }
            )
    return rows


def _verdict(rows: list[dict[str, Any]]) -> str:
    significant = lambda r, sign: r["test"]["p_holm"] < stats.ALPHA and sign * r["test"]["mean_diff"] > 0
    better = sorted({r["fraction"] for r in rows if significant(r, 1)})
    worse = sorted({r["fraction"] for r in rows if significant(r, -1)})
    fr = lambda fs: ", ".join(f"{100 * f:g} %" for f in fs)
    than = "the best tuned baseline in accuracy or ROC-AUC (Holm-adjusted p < 0.05)"
    if better:
        sentence = f"**Does the GAN help?** Yes at {fr(better)} labelled: there the tuned SGAN is "
        sentence += f"significantly better than {than}"
    else:
        sentence = "**Does the GAN help?** No: at no labelled fraction is the tuned SGAN significantly "
        sentence += f"better than {than}"
    return sentence + (f"; it is significantly worse at {fr(worse)}." if worse else ".")


def headline(study: dict[str, Any]) -> list[str]:
    """The lead of README.md and results/README.md: per fraction, the SGAN against the best
    tuned baseline (chosen by mean outer-fold accuracy, and separately by ROC-AUC)."""
    rows = headline_rows(study)
    cell = lambda s: f"{pct(s['mean'], 2)} [{pct(s['ci95_low'], 2)}, {pct(s['ci95_high'], 2)}]"
    lines = [
        f"Tuned SGAN against the best tuned baseline at each labelled fraction (`results/tuned_study.json`: "
        f"nested CV, {study['outer']} outer folds, up to {study['n_inner_max']} inner folds on the labelled "
        "rows choose every model's settings, by accuracy for accuracy and by ROC-AUC for ROC-AUC; the "
        f"SGAN searches "
        f"{study['n_sgan_settings']} settings over {study['n_structures']} structures). The best baseline is "
        "the one with the highest mean outer-fold score, picked separately for accuracy and for ROC-AUC. "
        "Mean [95 % CI], %; p is Holm-adjusted over all "
        f"{len(study['comparisons'])} SGAN-vs-baseline tests.",
        "",
        "| labelled | metric | tuned SGAN | best tuned baseline | difference (pp) | p (Holm) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {100 * r['fraction']:g} % | {r['metric']} | {cell(r['sgan'])} | {r['best']} "
            f"{cell(r['other'])} | {100 * r['test']['mean_diff']:+.2f} | {r['test']['p_holm']:.3g} |"
        )
    if study.get("partial"):
        lines.insert(0, "**Partial run** (only the fractions below; rerun without `--fractions` for all). ")
    return [*lines, "", _verdict(rows)]


def markdown(study: dict[str, Any]) -> str:
    """tuned_study.md: the headline, every model per fraction, every test, the chosen settings."""
    lines = ["# Tuned study: SGAN vs tuned baselines per labelled fraction", "", *headline(study), ""]
    names = list(study["per_fraction"][0]["models"])
    lines += ["## Every model (accuracy / ROC-AUC, %, mean [95 % CI])", ""]
    lines += ["| labelled | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for e in study["per_fraction"]:
        cells = [" / ".join(_ci(e["models"][n]["summary"][k]) for k in COMPARED) for n in names]
        lines.append(
            f"| {100 * e['fraction']:g} % (≈{e['labeled_per_run_mean']:.0f} rows) | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "## Paired tests (tuned SGAN minus baseline, corrected resampled t-test, Holm)", ""]
    lines += [
        "| labelled | baseline | metric | difference (pp) | 95 % CI (pp) | p | p (Holm) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in study["comparisons"]:
        lines.append(
            f"| {100 * c['fraction']:g} % | {c['b']} | {c['metric']} | {100 * c['mean_diff']:+.2f} | "
            f"[{100 * c['ci95_low']:+.2f}, {100 * c['ci95_high']:+.2f}] | {c['p']:.3g} | {c['p_holm']:.3g} |"
        )
    lines += ["", "## Settings chosen in each outer fold (by the inner folds only)", ""]
    for e in study["per_fraction"]:
        folds = e["inner_folds_per_outer_fold"]
        lines.append(f"- {100 * e['fraction']:g} % labelled (inner folds per outer fold: {folds}):")
        for name in names:
            for sel, chosen in e["models"][name]["chosen"].items():
                lines.append(f"  - {name}, by {sel}: " + "; ".join(_chosen(c) for c in chosen))
    lines += ["", _extras_note(study)]
    return "\n".join(lines) + "\n"


def _ci(s: dict[str, float]) -> str:
    return f"{pct(s['mean'])} [{pct(s['ci95_low'])}, {pct(s['ci95_high'])}]"


def _chosen(c: dict[str, Any]) -> str:
    if "structure" in c:
        s = c["setting"]
        keys = ("d_lr", "g_lr", "unsupervised_weight", "entropy_weight", "consistency_weight", "ema_decay")
        return c["structure"] + " " + ",".join(f"{k}={s[k]:g}" for k in keys if k in s)
    return ",".join(f"{k.split('__')[-1]}={v}" for k, v in c.items())


def _extras_note(study: dict[str, Any]) -> str:
    """How often the inner folds chose each semi-supervised extra (a weight > 0)."""
    chosen = [c for e in study["per_fraction"] for cs in e["models"][SGAN]["chosen"].values() for c in cs]
    share = lambda k: np.mean([c["setting"].get(k, 0) > 0 for c in chosen])
    return (
        "Semi-supervised extras chosen by the inner folds, share of (fraction, outer fold, "
        "selection metric) choices: "
        f"entropy minimisation {100 * share('entropy_weight'):.0f} %, mean-teacher consistency "
        f"{100 * share('consistency_weight'):.0f} %. Whether a chosen extra helps is what the outer "
        "scores above measure; an extra never chosen did not help on the inner folds."
    )
