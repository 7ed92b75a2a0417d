"""Scaling benchmark of sweeps: the paper pipeline (experiments/paper.py, bundled WDBC, 10-fold
CV) with random hyperparameter settings, every setting × fold one run.

(a) devices: the same 80 runs (8 settings × 10 folds) with the runs axis sharded over 1, 2, 4, 8
    XLA CPU devices, each in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=N
    (simulated devices: on a machine with fewer cores they share the cores);
(b) runs per compiled call: 10, 100, 1,000, 10,000 runs (1 to 1,000 settings × 10 folds) in ONE
    `table.train_runs` call each (one compiled program per phase: log_every = the longest
    phase), runs/s; sizes whose estimated memory exceeds half of the free memory are skipped
    and said so;
(c) the sweep in one call against one call per setting (10 runs each) in the same process:
    the loop is timed on a measured subset of settings and extrapolated to all of them (said
    so in the output);
(d) run blocks (`table.train_runs(block_runs=...)`): the same runs in one call with other
    block sizes, unblocked included, to show what blocking buys and how the default was
    chosen. (b) and (c) use the default ("auto": blocks on CPU, none on GPU/TPU).

The parts run in the order b, c, a, d and the result files are rewritten after each, so a run
stopped early keeps what it measured (the Markdown says which parts are missing).

Step counts are scaled by --steps-scale (default 0.1: AE 40 + SGAN 60 steps instead of 400 +
600) so the full benchmark fits a shared 2-core machine; the output says which scale ran.
Every call includes scoring (predict + metrics of all runs). os.getloadavg() is recorded
around each part: other engineers' jobs share the machine.

Run:    python -m benchmarks.bench_scale                       # ~15 min on 2 loaded cores
        python -m benchmarks.bench_scale --steps-scale 1       # the paper's full steps (~1 h)
        python -m benchmarks.bench_scale --quick               # smoke run (tiny config)
Writes: results/bench_scale.json, results/bench_scale.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from benchmarks import harness
from gan_jax import runtime
from gan_jax.config import Config, load_experiment
from gan_jax.data import load_dataset
from gan_jax.evaluation import evaluate, sweep
from gan_jax.training import blocks, engine, table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_FOLDS = 10
SPACE = [
    "ae_lr=1e-3:1e-2:log",
    "d_lr=1e-4:1e-2:log",
    "g_lr=1e-4:1e-2:log",
    "unsupervised_weight=0.1:1",
    "labeled_fraction=0.1,0.25,0.5,1.0",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="paper")
    p.add_argument("--quick", action="store_true", help="tiny config, few runs (smoke run, tests)")
    p.add_argument(
        "--steps-scale", type=float, help="multiply the config's step counts (default 0.1; quick 1)"
    )
    p.add_argument(
        "--sizes", help="runs per call, comma-separated multiples of 10 (default 10,100,1000,10000)"
    )
    p.add_argument("--devices", help="simulated device counts for (a) (default 1,2,4,8; quick 1,2)")
    p.add_argument("--device-runs", type=int, help="runs in (a) (default 80; quick 20)")
    p.add_argument(
        "--loop-settings", type=int, help="settings timed one call each in (c) (default 30; quick 2)"
    )
    p.add_argument(
        "--block-runs",
        default="auto",
        help="runs per device per block in (a)-(c): auto "
        "(default: blocks.default_block_runs), none, or an int",
    )
    p.add_argument(
        "--block-sizes", help="block sizes timed in (d) (default none,4,auto,32; quick none,auto,2)"
    )
    p.add_argument("--block-sweep-runs", type=int, help="runs per call in (d) (default 1000; quick 10)")
    p.add_argument("--parts", default="a,b,c,d", help="parts to run (default a,b,c,d)")
    p.add_argument("--out", default="results", help="folder for bench_scale.json/.md")
    p.add_argument("--render", metavar="JSON", help="only rewrite the .md from a bench_scale.json")
    p.add_argument("--child-devices", action="store_true", help=argparse.SUPPRESS)  # (a)'s subprocess
    args = p.parse_args(argv)
    quick = args.quick
    args.block_sizes_given = args.block_sizes is not None
    defaults = {
        "steps_scale": (0.1, 1.0),
        "sizes": ("10,100,1000,10000", "10,40"),
        "devices": ("1,2,4,8", "1,2"),
        "device_runs": (80, 20),
        "loop_settings": (30, 2),
        "block_sizes": ("none,4,auto,32", "none,auto,2"),
        "block_sweep_runs": (1000, 10),
    }
    for name, (full, small) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    args.sizes = [int(s) for s in str(args.sizes).split(",")]
    args.devices = [int(s) for s in str(args.devices).split(",")]
    args.block_runs = _block_runs(p, args.block_runs)
    args.parts = args.parts.split(",")
    if not set(args.parts) <= set("abcd"):
        p.error(f"--parts {','.join(args.parts)}: expected a comma-separated subset of a,b,c,d")
    args.block_sizes = [_block_runs(p, b) for b in str(args.block_sizes).split(",") if b]
    if any(s % N_FOLDS for s in [*args.sizes, args.device_runs, args.block_sweep_runs]):
        p.error(f"run counts must be multiples of {N_FOLDS} (settings × {N_FOLDS} folds)")
    return args


def _block_runs(p: argparse.ArgumentParser, text: str) -> int | str | None:
    """'auto' | 'none' | a positive int, as `table.train_runs(block_runs=...)` takes it."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    if not text.isdigit() or int(text) < 1:
        p.error(f"block size {text!r}: expected auto, none or an integer >= 1")
    return int(text)


def bench_config(args) -> Config:
    """The experiment with scaled step counts and one chunk per phase (one call per phase)."""
    base = load_experiment(args.experiment)
    if args.quick:
        base = base.replace(
            **{
                "model.latent_dim": 4,
                "model.ae_hidden": (8,),
                "model.disc_hidden": (8, 8),
                "model.gen_hidden": (8,),
                "model.noise_dim": 4,
                "schedule.ae_steps": 10,
                "schedule.gan_steps": 10,
                "schedule.batch_size": 16,
            }
        )
    ae, gan = (max(1, round(s * args.steps_scale)) for s in (base.schedule.ae_steps, base.schedule.gan_steps))
    return base.replace(
        **{
            "schedule.ae_steps": ae,
            "schedule.gan_steps": gan,
            "schedule.log_every": max(ae, gan),
            "cv.n_folds": N_FOLDS,
            "cv.n_repeats": 1,
        }
    )


class Bench:
    """Data, folds and 1,000+ random settings shared by every part."""

    def __init__(self, args):
        self.config = bench_config(args)
        data = load_dataset(self.config.data.uri)
        self.x, self.y = data.x, data.y
        self.folds = evaluate.cv_folds(self.y, N_FOLDS, 1, self.config.cv.seed)
        n = max([*args.sizes, args.device_runs, args.block_sweep_runs, N_FOLDS * (args.loop_settings + 1)])
        self.settings = sweep.random_search(self.config, sweep.parse_space(SPACE), n // N_FOLDS, seed=0)
        self.block_runs = args.block_runs

    def call(self, settings: list, mesh=None, **block) -> dict:
        """One fused call: train + score len(settings) × 10 runs, in blocks of `block_runs` runs
        per device (default: the benchmark's --block-runs); wall and CPU seconds, blocks."""
        block_runs = block.get("block_runs", self.block_runs)
        per_run = table.run_bytes(self.config, self.x, self.y)
        n_blocks = blocks.n_run_blocks(
            per_run, mesh or engine.runs_mesh(), len(settings) * N_FOLDS, block_runs
        )
        runs = sweep.sweep_runs(self.y, settings, self.folds)
        eval_masks = np.tile(~self.folds, (len(settings), 1))
        t0, c0 = time.perf_counter(), time.process_time()
        _, timing = sweep.train_and_score(
            self.config, self.x, self.y, runs, eval_masks, len(settings), mesh=mesh, block_runs=block_runs
        )
        # CPU seconds of this process (all threads): less sensitive to other jobs than wall time.
        return {
            "wall_s": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0,
            "n_blocks": n_blocks,
            **timing,
        }


def free_memory_bytes() -> int:
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def runs_per_call(bench: Bench, sizes: list[int], save=lambda rows: None) -> list[dict]:
    """(b): first call (with compilation) and, up to 1,000 runs, a second steady call; `save`
    gets the rows so far after each size (the large sizes are slow: a stopped run keeps them)."""
    per_run_bytes = table.state_bytes(bench.config, bench.x.shape[1])
    rows = []
    for size in sizes:
        # State (Adam moments inside; donated, so updated in place) and a copy while gathering,
        # plus masks and predictions [runs, N].
        need = 2 * size * per_run_bytes + size * 8 * len(bench.y)
        row = {"runs": size, "settings": size // N_FOLDS, "est_bytes": need, "load_before": os.getloadavg()}
        if need > free_memory_bytes() / 2:
            rows.append(
                {**row, "skipped": f"needs ~{need / 1e9:.1f} GB, free {free_memory_bytes() / 1e9:.1f} GB"}
            )
            continue
        first = bench.call(bench.settings[: size // N_FOLDS])
        steady = bench.call(bench.settings[: size // N_FOLDS]) if size <= 1000 else None
        timed = steady or first
        rows.append(
            {
                **row,
                "first_call_s": first["wall_s"],
                "steady_call_s": steady and steady["wall_s"],
                "first_call_cpu_s": first["cpu_s"],
                "steady_call_cpu_s": steady and steady["cpu_s"],
                "runs_per_s": size / timed["wall_s"],
                "per_run_s": timed["wall_s"] / size,
                "runs_per_s_is": "steady call" if steady else "first call, compilation included",
                "n_blocks": first["n_blocks"],
                "cpu_s_per_run": timed["cpu_s"] / size,
                "load_after": os.getloadavg(),
            }
        )
        save(rows)
    return rows


def sweep_vs_loop(bench: Bench, n_settings: int, loop_settings: int, rows: list[dict]) -> dict:
    """(c): all settings in one call against one call (10 runs) per setting.

    The one call is (b)'s row of that size (measured again if (b) skipped it). The loop is
    timed on `loop_settings` of the same settings; its compilation is (b)'s 10-run first call
    minus its steady call, so both sides are compared with and without compilation."""
    load_before = os.getloadavg()
    by_runs = {r["runs"]: r for r in rows if "skipped" not in r}
    one = by_runs.get(n_settings * N_FOLDS)
    if one is None:
        c = bench.call(bench.settings[:n_settings])
        one = {"first_call_s": c["wall_s"], "first_call_cpu_s": c["cpu_s"], "steady_call_s": None}
    ten = by_runs.get(N_FOLDS)
    if ten is None:  # (b) did not run 10 runs per call: measure its compilation here
        first = bench.call(bench.settings[:1])["wall_s"]
        ten = {"first_call_s": first, "steady_call_s": bench.call(bench.settings[:1])["wall_s"]}
    loop_compile = ten["first_call_s"] - ten["steady_call_s"]
    calls = [bench.call([s]) for s in bench.settings[:loop_settings]]
    times = [c["wall_s"] for c in calls]
    per_setting = float(np.mean(times))
    one_cpu = one.get("steady_call_cpu_s") or one.get("first_call_cpu_s")
    loop_steady = n_settings * per_setting
    out = {
        "settings": n_settings,
        "runs": n_settings * N_FOLDS,
        "one_call_first_s": one["first_call_s"],
        "one_call_steady_s": one["steady_call_s"],
        "loop_per_setting_s": per_setting,
        "loop_setting_times_s": times,
        "loop_compile_s": loop_compile,
        "loop_steady_s_estimated": loop_steady,
        "loop_first_s_estimated": loop_compile + loop_steady,
        "speedup_with_compilation": (loop_compile + loop_steady) / one["first_call_s"],
        "speedup_steady": loop_steady / one["steady_call_s"] if one["steady_call_s"] else None,
        "loop_cpu_s_per_run": float(np.mean([c["cpu_s"] for c in calls])) / N_FOLDS,
        "one_call_cpu_s_per_run": one_cpu / (n_settings * N_FOLDS) if one_cpu else None,
        "one_call_cpu_is": "steady call" if one.get("steady_call_cpu_s") else "first call (with compilation)",
        "how": f"one train_runs call of every setting × fold vs one call (10 runs) per setting; the loop "
        f"is measured on {len(times)} settings and extrapolated to {n_settings} (n × mean); its "
        "compilation is the 10-run program's first call minus its steady call; scoring included on "
        "both sides; same process, same step counts, same devices",
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    return out


def block_sizes(bench: Bench, sizes: list, n_runs: int, rows: list[dict]) -> list[dict]:
    """(d): `n_runs` runs in one call per block size (first call and steady call); the default
    block size reuses (b)'s row of that size when there is one."""
    settings = bench.settings[: n_runs // N_FOLDS]
    by_runs = {r["runs"]: r for r in rows if "skipped" not in r}
    out = []
    for block_runs in sizes:
        load = os.getloadavg()
        row = {
            "block_runs": "none" if block_runs is None else block_runs,
            "runs": n_runs,
            "load_before": load,
        }
        if block_runs == bench.block_runs and n_runs in by_runs:
            b = by_runs[n_runs]
            out.append(
                {
                    **row,
                    "n_blocks": b["n_blocks"],
                    "first_call_s": b["first_call_s"],
                    "steady_call_s": b["steady_call_s"],
                    "steady_call_cpu_s": b["steady_call_cpu_s"],
                    "from": "(b)",
                }
            )
            continue
        first = bench.call(settings, block_runs=block_runs)
        steady = bench.call(settings, block_runs=block_runs)
        out.append(
            {
                **row,
                "n_blocks": first["n_blocks"],
                "first_call_s": first["wall_s"],
                "steady_call_s": steady["wall_s"],
                "steady_call_cpu_s": steady["cpu_s"],
            }
        )
    return out


def devices_scaling(args) -> list[dict]:
    """(a): one subprocess per simulated device count."""
    rows = []
    for n in args.devices:
        env = {
            **os.environ,
            "PYTHONPATH": ROOT,
            "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={n}",
        }
        argv = [
            sys.executable,
            "-m",
            "benchmarks.bench_scale",
            "--child-devices",
            "--experiment",
            args.experiment,
            "--steps-scale",
            str(args.steps_scale),
            "--device-runs",
            str(args.device_runs),
        ]
        argv += ["--block-runs", str(args.block_runs).lower()] + (["--quick"] if args.quick else [])
        load = os.getloadavg()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"device-count child {n} failed:\n{proc.stderr[-2000:]}")
        rows.append({**json.loads(proc.stdout.strip().splitlines()[-1]), "load_before": load})
    return rows


def child_devices(args) -> dict:
    bench = Bench(args)
    settings = bench.settings[: args.device_runs // N_FOLDS]
    first = bench.call(settings)
    steady = bench.call(settings)
    return {
        "devices": len(jax.devices()),
        "runs": args.device_runs,
        "n_blocks": first["n_blocks"],
        "first_call_s": first["wall_s"],
        "steady_call_s": steady["wall_s"],
        "per_run_s": steady["wall_s"] / args.device_runs,
    }


def _times(loop_over_one: float) -> str:
    """'2.5× faster' / '2.5× slower' for the one call, from loop time / one-call time."""
    if loop_over_one >= 1:
        return f"{loop_over_one:.1f}× faster"
    return f"{1 / loop_over_one:.1f}× slower"


def _devices_md(rows: list[dict]) -> list[str]:
    return [
        "(a) Simulated devices (subprocesses, XLA_FLAGS device count; they share the physical cores):",
        "",
        "| devices | runs | blocks | s per run (steady) | first call (s) | load (1 min) |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['devices']} | {r['runs']} | {r.get('n_blocks', 1)} | {r['per_run_s']:.4f} | "
            f"{r['first_call_s']:.1f} | {r['load_before'][0]:.1f} |"
            for r in rows
        ),
    ]


def _runs_per_call_md(rows: list[dict]) -> list[str]:
    lines = [
        "(b) Runs per compiled call (one call per phase; blocks: how many blocks of runs the call "
        "trains one after another):",
        "",
        "| runs | settings | blocks | first call (s) | steady call (s) | runs/s | CPU s per run "
        "| est. memory | load (1 min) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['runs']} | {r['settings']} | | skipped: {r['skipped']} | | | | | |")
            continue
        steady = f"{r['steady_call_s']:.1f}" if r["steady_call_s"] else "–"
        star = "" if r["steady_call_s"] else " *"
        lines.append(
            f"| {r['runs']} | {r['settings']} | {r.get('n_blocks', 1)} | {r['first_call_s']:.1f} | "
            f"{steady} | {r['runs_per_s']:.1f}{star} | "
            f"{r.get('cpu_s_per_run', float('nan')):.4f}{star} | "
            f"{r['est_bytes'] / 1e9:.2f} GB | {r['load_before'][0]:.1f} |"
        )
    return [*lines, "", "\\* first call, compilation included (no second call at this size)."]


def _sweep_vs_loop_md(s: dict, rec: dict) -> list[str]:
    steady = (
        f" Steady (compiled): one call {s['one_call_steady_s']:.1f} s vs "
        f"{s['loop_steady_s_estimated']:.1f} s → one call is {_times(s['speedup_steady'])}."
        if s["speedup_steady"]
        else ""
    )
    return [
        f"(c) {s['settings']} settings × 10 folds = {s['runs']} runs, scoring included. With compilation: "
        f"**one call {s['one_call_first_s']:.1f} s** vs one call per setting "
        f"**{s['loop_first_s_estimated']:.1f} s (estimated**: {s['loop_compile_s']:.1f} s compile + "
        f"{s['settings']} × {s['loop_per_setting_s']:.3f} s, the mean of {len(s['loop_setting_times_s'])} "
        f"measured settings) → one call is {_times(s['speedup_with_compilation'])}.{steady}",
        "",
        f"CPU seconds per run (this process, all threads; less sensitive to other jobs): one call "
        f"{s['one_call_cpu_s_per_run'] or float('nan'):.4f} ({s['one_call_cpu_is']}), one call per setting "
        f"{s['loop_cpu_s_per_run']:.4f}"
        + (
            f": one call takes {one_cpu / s['loop_cpu_s_per_run']:.2f}× the loop's CPU seconds per run"
            if (one_cpu := s["one_call_cpu_s_per_run"])
            else ""
        )
        + f". Load average (1 min) {s['load_before'][0]:.1f} before the loop, "
        f"{s['load_after'][0]:.1f} after it"
        + (
            f"; {one['load_before'][0]:.1f} before the one call, {one['load_after'][0]:.1f} after it"
            if (one := _row(rec, s["runs"]))
            else ""
        )
        + " (wall seconds compare fairly only at equal loads).",
    ]


def _row(rec: dict, runs: int) -> dict | None:
    """(b)'s measured row of `runs` runs, if any."""
    return next((r for r in rec.get("runs_per_call") or [] if r["runs"] == runs and "load_after" in r), None)


def _blocks_md(rows: list[dict]) -> list[str]:
    runs = rows[0]["runs"]
    return [
        f"(d) Block sizes: {runs} runs in one call, runs per device per block (none: all runs in one "
        "vmapped batch, the trainer before blocks; auto: the default):",
        "",
        "| block (runs per device) | blocks | first call (s) | steady call (s) | steady CPU s per run | "
        "load (1 min) |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['block_runs']}{' (default, from (b))' if r.get('from') else ''} | {r['n_blocks']} | "
            f"{r['first_call_s']:.1f} | {r['steady_call_s']:.1f} | {r['steady_call_cpu_s'] / runs:.4f} | "
            f"{r['load_before'][0]:.1f} |"
            for r in rows
        ),
    ]


PARTS = {  # record key -> (title, Markdown), in the order the file shows them
    "devices": ("(a) devices", _devices_md),
    "runs_per_call": ("(b) runs per call", _runs_per_call_md),
    "sweep_vs_loop": ("(c) one call vs one call per setting", _sweep_vs_loop_md),
    "blocks": ("(d) block sizes", _blocks_md),
}


def markdown(rec: dict) -> str:
    c = Config.from_dict(rec["config"]).schedule  # any readable layout: records from before sections too
    lines = [
        f"Sweep scaling, {rec['experiment']} pipeline with **step counts × {rec['steps_scale']}** "
        f"(AE {c.ae_steps} + SGAN {c.gan_steps} steps per run; the paper config has "
        f"{rec['full_steps']['ae_steps']} + {rec['full_steps']['gan_steps']}), random settings × 10 folds, "
        f"{rec['device']['count']} × {rec['device']['kind']}, {rec['host']['cpu_count']} cores, "
        f"`{rec['command']}`, commit {rec['git_commit'][:12]}. Runs train in blocks of "
        f"{rec.get('block_runs_per_device', 'all')} runs per device (--block-runs "
        f"{rec.get('block_runs', 'none')}; `blocks.default_block_runs`) unless a row says otherwise.",
    ]
    for key, (title, part) in PARTS.items():
        why = rec.get(f"{key}_skipped", "the run stopped before it")
        shown = (part(rec[key], rec) if key == "sweep_vs_loop" else part(rec[key])) if rec.get(key) else None
        lines += ["", *(shown or [f"{title}: not measured ({why})."])]
    end = rec["load_average"].get("after")
    lines += [
        "",
        f"Load average (1, 5, 15 min) at start {tuple(round(v, 2) for v in rec['load_average']['before'])}"
        + (f", end {tuple(round(v, 2) for v in end)}" if end else "")
        + ": the machine is shared, and a load above the core count means these timings are slowed by "
        "other jobs.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, writes `<out>/bench_scale.json` and `.md` after every part, returns
    the record."""
    runtime.split_host_devices()  # one XLA CPU device per core; before JAX starts its backends
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.render:
        return harness.rewrite_markdown(args.render, markdown)
    if not os.environ.get("GAN_JAX_BENCH_CACHE"):
        # An empty persistent cache, shared with (a)'s subprocesses: first calls compile for real.
        os.environ["GAN_JAX_BENCH_CACHE"] = tempfile.mkdtemp(prefix="bench_scale_cache_")
    runtime.enable_compilation_cache(os.environ["GAN_JAX_BENCH_CACHE"])
    if args.child_devices:
        print(json.dumps(child_devices(args)))
        return {}
    record = harness.record(argv, module="benchmarks.bench_scale")
    bench = Bench(args)
    full = load_experiment(args.experiment)
    platform_name = engine.runs_mesh().devices.flat[0].platform
    record.update(
        {
            "benchmark": "bench_scale",
            "experiment": args.experiment,
            "quick": args.quick,
            "steps_scale": args.steps_scale,
            "full_steps": {"ae_steps": full.schedule.ae_steps, "gan_steps": full.schedule.gan_steps},
            "config": bench.config.to_dict(),
            "search_space": SPACE,
            "host": {"cpu_count": os.cpu_count(), "machine": platform.machine()},
            "state_bytes_per_run": table.state_bytes(bench.config, bench.x.shape[1]),
            "block_runs": str(args.block_runs).lower(),
            "block_runs_per_device": (
                blocks.default_block_runs(table.run_bytes(bench.config, bench.x, bench.y), platform_name)
                if args.block_runs == "auto"
                else args.block_runs
            ),
        }
    )
    parts = [  # the essentials first: a run stopped early keeps them
        (
            "runs_per_call",
            lambda: runs_per_call(bench, args.sizes, save=lambda rows: save("runs_per_call", rows)),
        ),
        (
            "sweep_vs_loop",
            lambda: sweep_vs_loop(
                bench, max(args.sizes) // N_FOLDS, args.loop_settings, record.get("runs_per_call", [])
            ),
        ),
        ("devices", lambda: devices_scaling(args)),
        (
            "blocks",
            lambda: block_sizes(
                bench, args.block_sizes, args.block_sweep_runs, record.get("runs_per_call", [])
            ),
        ),
    ]
    if platform_name != "cpu" and not args.block_sizes_given:
        parts.pop()  # blocks are off by default off the CPU: nothing to compare unasked
        record["blocks_skipped"] = f"blocks are off by default on {platform_name}; pass --block-sizes"
    for key, (title, _) in PARTS.items():
        if title[1] not in args.parts:
            record[f"{key}_skipped"] = f"not in --parts {','.join(args.parts)}"
    parts = [(key, measure) for key, measure in parts if PARTS[key][0][1] in args.parts]

    def save(key: str, value) -> None:
        record[key] = value
        if key == "runs_per_call":
            record["largest_measured_runs_per_call"] = max(
                (r["runs"] for r in value if "skipped" not in r), default=0
            )
        done = harness.finish(record)
        harness.write(args.out, "bench_scale", done, markdown(done))

    for key, measure in parts:
        save(key, measure())
    return harness.finish(record)


if __name__ == "__main__":
    rec = main()
    if rec:
        print(markdown(rec))
