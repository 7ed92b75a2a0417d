"""CTGAN and TVAE (Xu et al. 2019, the `ctgan` package) beside our class-conditional GAN, on the
same runs, at equal numbers of updates.

The runs are the first K of the synthesiser experiment's folds (`experiments/synth.py`), the
runs `gan-jax synth-report --runs K` reports on, so our generator's rows and numbers are the same
in both files. Per run, every generator trains on the run's training rows only and makes as many
rows as that; each is scored by the one per-run report (`gan_jax.studies.synth_runs`) on the
run's held-out rows, and summarised over runs with 95 % intervals.

Equal updates: ours takes `synth.steps` generator updates (one discriminator update each).
CTGAN takes `max(n // batch, 1)` generator updates per epoch (ctgan's `steps_per_epoch`); its
batch must be a multiple of its pac (10), so it gets the multiple of 10 nearest our batch and
`epochs = ceil(synth.steps / steps_per_epoch)`. TVAE takes `ceil(n / batch)` updates per epoch
(a DataLoader without drop_last) at our batch. `equal_update_schedule` computes both; each run's
exact count is in the JSON. (At ctgan's defaults, batch 500 and 300 epochs, 455 rows give 300
updates.)

Needs the optional extra: pip install 'gan_jax[ctgan]' (PyTorch; the CPU wheel is enough).

Run:    python -m benchmarks.ctgan_bench --out results          (--quick: 2 runs, a smoke test)
Result: results/ctgan_bench.json and .md, written by that command.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any, NamedTuple

import numpy as np

from benchmarks import harness
from gan_jax import runtime
from gan_jax.config import load_experiment
from gan_jax.data import FEATURE_NAMES, load_dataset
from gan_jax.evaluation import evaluate, stats
from gan_jax.studies import synth_runs

BASELINES = ("ctgan", "tvae")
CTGAN_PAC = 10  # ctgan's default: the discriminator sees packs of 10 rows (PacGAN)
COMPARED = ("fidelity.detection_auc", "privacy.closer_to_train_share_balanced") + tuple(
    f"utility.logistic_regression.tstr.{m}" for m in ("accuracy", "f1", "roc_auc")
)


class Schedule(NamedTuple):
    batch_size: int
    epochs: int
    updates_per_epoch: int
    updates: int  # epochs × updates_per_epoch, the first count >= the target


def equal_update_schedule(kind: str, n_rows: int, target_updates: int, our_batch: int) -> Schedule:
    """The batch and epochs that give `kind` ("ctgan" or "tvae") at least `target_updates`
    generator (TVAE: model) updates on `n_rows` rows, as few more as the epoch grain allows."""
    if target_updates < 1 or n_rows < 1:
        raise ValueError(f"need target_updates >= 1 and n_rows >= 1, got {target_updates}, {n_rows}")
    if kind == "ctgan":
        batch = max(CTGAN_PAC, CTGAN_PAC * round(our_batch / CTGAN_PAC))
        per_epoch = max(n_rows // batch, 1)
    elif kind == "tvae":
        batch = our_batch
        per_epoch = math.ceil(n_rows / batch)
    else:
        raise ValueError(f"unknown generator {kind!r}; expected one of {BASELINES}")
    epochs = math.ceil(target_updates / per_epoch)
    return Schedule(batch, epochs, per_epoch, epochs * per_epoch)


def fit_baseline(kind: str, x: np.ndarray, y: np.ndarray, schedule: Schedule, seed: int):
    import pandas as pd
    import torch
    from ctgan import CTGAN, TVAE

    torch.manual_seed(seed)
    cls = CTGAN if kind == "ctgan" else TVAE
    model = cls(epochs=schedule.epochs, batch_size=schedule.batch_size, enable_gpu=False)
    model.set_random_state(seed)
    frame = pd.DataFrame(x, columns=FEATURE_NAMES).assign(diagnosis=np.where(y == 1, "M", "B"))
    model.fit(frame, discrete_columns=["diagnosis"])
    return model


def sample_baseline(kind: str, model, labels: np.ndarray, max_tries: int = 50) -> np.ndarray:
    """Rows [len(labels), F] in the order of `labels`, keeping rows whose generated diagnosis is
    the class asked for (CTGAN's condition is a hint; TVAE has none)."""
    rows = np.zeros((len(labels), len(FEATURE_NAMES)), np.float32)
    for c, code in enumerate("BM"):
        need, got = int(np.sum(labels == c)), []
        for _ in range(max_tries):
            if sum(len(g) for g in got) >= need:
                break
            n = 2 * need + 10
            frame = (
                model.sample(n, condition_column="diagnosis", condition_value=code)
                if kind == "ctgan"
                else model.sample(n)
            )
            got.append(frame.loc[frame["diagnosis"] == code, list(FEATURE_NAMES)].to_numpy(np.float32))
        else:
            raise RuntimeError(f"{kind} made too few {code} rows in {max_tries} draws")
        if need:
            rows[labels == c] = np.concatenate(got)[:need]
    return rows


def train_baselines(gen, x, y, masks, labels) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """{kind: rows [K, n_max, F]} and timing/schedule per kind, one run at a time."""
    rows, info = {}, {}
    for kind in BASELINES:
        out, seconds, scheds = [], [], []
        for r, m in enumerate(masks):
            sched = equal_update_schedule(kind, int(m.sum()), gen.synth.steps, gen.synth.batch_size)
            t0 = time.perf_counter()
            model = fit_baseline(kind, x[m], y[m], sched, gen.cv.seed + r)
            seconds.append(time.perf_counter() - t0)
            out.append(sample_baseline(kind, model, labels[r]))
            scheds.append(sched._asdict())
            print(f"{kind} run {r}: {sched.updates} updates in {seconds[-1]:.1f} s", flush=True)
        rows[kind] = np.stack(out)
        info[kind] = {"train_seconds_each": seconds, "schedules": scheds}
    return rows, info


def compare(per_run: dict[str, dict[str, list[float]]], ratio: float) -> list[dict[str, Any]]:
    """ours − each baseline on the COMPARED metrics, paired over runs, Holm over all rows."""
    rows = [
        {
            "b": kind,
            "metric": k,
            **stats.corrected_resampled_ttest(per_run["ours"][k], per_run[kind][k], ratio),
        }
        for kind in BASELINES
        for k in COMPARED
    ]
    for row, p in zip(rows, stats.holm([r["p"] for r in rows])):
        row["p_holm"] = p
    return rows


def to_markdown(rec: dict[str, Any]) -> str:
    names = list(rec["summary"])
    cell = lambda s: f"{s['mean']:.3f} [{s['ci95_low']:.3f}, {s['ci95_high']:.3f}]"
    upd = {k: sorted({s["updates"] for s in rec["timing"][k]["schedules"]}) for k in BASELINES}
    ours = rec["generator"]["synth"]
    lines = [
        "# CTGAN and TVAE beside our conditional GAN, at equal updates",
        "",
        f"{rec['n_runs']} runs ({rec['folds']}); every generator trained on each run's training rows only "
        f"and scored on its held-out rows; {rec['device']['count']} × {rec['device']['kind']}. "
        f"Command: `{rec['command']}`.",
        "",
        "## Updates and time",
        "",
        "| generator | batch | epochs | updates | training s per run |",
        "|---|---:|---:|---:|---:|",
        f"| ours ({ours['model']}) | {ours['batch_size']} | — | {ours['steps']} | "
        f"{rec['timing']['ours']['train_seconds_per_run']:.2f} (fused) |",
    ]
    for k in BASELINES:
        s = rec["timing"][k]["schedules"][0]
        lines.append(
            f"| {k} | {s['batch_size']} | {s['epochs']} | {'/'.join(map(str, upd[k]))} | "
            f"{np.mean(rec['timing'][k]['train_seconds_each']):.1f} |"
        )
    lines += [
        "",
        "Updates: see `equal_update_schedule` (CTGAN: n // batch per epoch, batch a multiple of its "
        "pac 10; TVAE: ceil(n / batch)).",
        "",
        "## Report (mean over runs [95 % interval]; synthetic rows = real training rows in number)",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for key in rec["summary"]["ours"]:
        lines.append(f"| {key} | " + " | ".join(cell(rec["summary"][n][key]) for n in names) + " |")
    lines += [
        "",
        f"## Paired: ours − other (corrected t-test, Holm over {len(rec['tests'])})",
        "",
        "| other | metric | Δ | 95 % interval | p (Holm) |",
        "|---|---|---:|---|---:|",
    ]
    for t in rec["tests"]:
        lines.append(
            f"| {t['b']} | {t['metric']} | {t['mean_diff']:+.3f} | "
            f"[{t['ci95_low']:+.3f}, {t['ci95_high']:+.3f}] | {t['p_holm']:.3g} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Runs the comparison, writes `<out>/ctgan_bench.json` and `.md`, returns the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results")
    parser.add_argument("--runs", type=int, default=10, help="first K runs of the synth folds (default 10)")
    parser.add_argument("--quick", action="store_true", help="2 runs, the tiny generator config (smoke test)")
    args = parser.parse_args(argv)
    runtime.split_host_devices()
    runtime.enable_compilation_cache()
    rec = harness.record(argv, module="benchmarks.ctgan_bench")
    n_runs = 2 if args.quick else args.runs
    gen = load_experiment("synth", quick=args.quick)
    data = load_dataset(gen.data.uri)
    masks = evaluate.cv_folds(data.y, gen.cv.n_folds, gen.cv.n_repeats, gen.cv.seed)[:n_runs]
    ours, labels, ours_seconds = synth_runs.synthetic_rows(gen, data.x, data.y, masks)
    rows, timing = train_baselines(gen, data.x, data.y, masks, labels)
    rows["ours"] = ours
    timing["ours"] = {
        "train_seconds_all_runs_fused": ours_seconds,
        "train_seconds_per_run": ours_seconds / n_runs,
    }
    ratio = float((~masks).sum() / masks.sum())
    reps = {
        k: synth_runs.reports_per_run(data.x, data.y, masks, rows[k], labels) for k in ("ours", *BASELINES)
    }
    import ctgan

    rec.update(
        n_runs=n_runs,
        folds=f"first {n_runs} runs of {gen.cv.n_folds}-fold × {gen.cv.n_repeats}, seed {gen.cv.seed}",
        data=data.source,
        generator=gen.to_dict(),
        ctgan_version=ctgan.__version__,
        timing=timing,
        summary={k: synth_runs.summarize(r, ratio) for k, r in reps.items()},
        per_run={k: synth_runs.per_run_values(r) for k, r in reps.items()},
    )
    rec["tests"] = compare(rec["per_run"], ratio)
    rec = harness.finish(rec)
    harness.write(args.out, "ctgan_bench", rec, to_markdown(rec))
    print(to_markdown(rec))
    return rec


if __name__ == "__main__":
    main()
