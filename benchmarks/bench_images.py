"""Throughput benchmark of the image path (gan_jax.training.image and image_fit on the synthetic nuclei set
read
through its TFDS array_record source), in images per second, for each compute dtype:

(a) fit: `image_fit.fit` as a training run calls it: one jitted step per batch (state
    donated, batch split over the "data" mesh axis), batches from the prefetching
    `ImageBatches`, losses pulled to the host every `log_every` steps only;
(b) loop: the same step (`image_fit.step_fn`'s own step function) jitted without donation
    and called from a naive per-step loop: each batch read and `device_put` on the host in the
    loop (no prefetch), every loss read with `float()` (a host sync per step). Same devices,
    same sharding, same batches, so (a)/(b) compares equal resources, and both start each round
    from the same state at the same batch position: their parameters must agree;
(c) fused: `image.train_runs` as the image study calls it, with R = the number of
    local devices runs (one per device): R independent models, each drawing batches of
    `batch_size` from all rows in-graph out of the device-resident images, `lax.scan` over a
    round's steps, `vmap` over the runs, state donated. Its images/s are summed over the runs
    (R × batch × steps ÷ s): the same devices doing R models' work, not (a)'s one model.

Each (dtype, phase) — "ae" (autoencoder, eq. 4) and "gan" (SGAN, eqs. 5-8) — is timed in
steady state: the first call (with its compilation, timed apart through `jax.monitoring`) is
not in the rates; then `--rounds` rounds of (b), (a), (c): `steps` steps each for (a) and (b),
steps ÷ R (at least --min-steps) for (c), about the same images.

MFU: FLOPs per step from XLA's cost analysis of the compiled step, × steps/s, ÷ the ceiling: a
square matmul in the same dtype, sharded over the same devices, measured in this run. Also the
input pipeline alone (`ImageBatches` onto the devices, from the TFDS source and from memory),
so its images/s can be set against training's.

Run:    python -m benchmarks.bench_images            # full: the default conv models (IMAGES), 64×64
        python -m benchmarks.bench_images --quick    # smoke run (tiny config, a tiny TFDS set)
Writes: <out>/bench_images.json and <out>/bench_images.md (default out: results)
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from benchmarks import harness
from benchmarks.bench_train import compile_clock
from gan_jax import runtime
from gan_jax.config import IMAGES, Config
from gan_jax.data import nuclei
from gan_jax.data.images import ArraySource
from gan_jax.training import engine, image, image_fit
from gan_jax.training.input_pipeline import ImageBatches, read_all

PHASES = ("ae", "gan")
QUICK_SPLITS = {"train": 64}  # the --quick TFDS set: 64 images of 8×8
# Vendor spec-sheet peaks, dense (no sparsity), TFLOP/s: NOT measurements. FP32 is the
# non-tensor-core figure; f32 matmuls at JAX's default precision may use TF32 tensor cores.
# Matched against jax's device_kind in order (so "H100 PCIe" before "H100", "L40S" before "L4").
VENDOR_PEAK_TFLOPS = (
    (r"H100.*PCIe", {"bfloat16": 756.0, "float32": 51.0}),
    (r"H100|H200|GH200", {"bfloat16": 989.0, "float32": 67.0}),
    (r"A100", {"bfloat16": 312.0, "float32": 19.5}),
    (r"L40S", {"bfloat16": 362.0, "float32": 91.6}),
    (r"\bL4\b", {"bfloat16": 121.0, "float32": 30.3}),
)
VENDOR_PEAK_SOURCE = "NVIDIA data sheet, dense (no sparsity); a spec figure, not a measurement"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny config, few steps (smoke runs, tests)")
    p.add_argument("--dtypes", default="float32,bfloat16", help="compute dtypes, comma-separated")
    p.add_argument("--rounds", type=int, help="interleaved rounds of (b) then (a) (default 2; quick 1)")
    p.add_argument(
        "--budget-s",
        type=float,
        help="seconds aimed at per trainer per round; sets the "
        "steps from the first call's step time (default 20; quick 0)",
    )
    p.add_argument("--min-steps", type=int, default=1, help="steps per round at least")
    p.add_argument("--max-steps", type=int, help="steps per round at most (default 500; quick 2)")
    p.add_argument(
        "--fused-steps",
        type=int,
        help="steps per round of (c) (default: (a)'s steps ÷ runs, at least --min-steps)",
    )
    p.add_argument(
        "--fused-phases",
        default="ae,gan",
        help="phases that time (c), comma-separated (default ae,gan); the others record it as not measured",
    )
    p.add_argument(
        "--matmul-size",
        type=int,
        help="side of the ceiling matmul (default 8192 on GPU/TPU, 2048 on CPU; quick 128)",
    )
    p.add_argument("--pipeline-batches", type=int, help="batches timed per source (default 200; quick 4)")
    p.add_argument("--data-dir", help="TFDS data folder (default: a new temporary folder)")
    p.add_argument(
        "--cache-dir",
        help="persistent compilation cache (default: a new empty folder, so first calls compile cold)",
    )
    p.add_argument(
        "--vendor-peak-kind",
        help="look the vendor peak up for this device kind, not the "
        "device's own (exercises the GPU branch on CPU; the output says so)",
    )
    p.add_argument("--out", default="results", help="folder for bench_images.json/.md")
    p.add_argument("--render", metavar="JSON", help="only rewrite the .md from a bench_images.json")
    args = p.parse_args(argv)
    defaults = {
        "rounds": (2, 1),
        "budget_s": (20.0, 0.0),
        "max_steps": (500, 2),
        "pipeline_batches": (200, 4),
    }
    for name, (full, small) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if args.quick else full)
    if args.matmul_size is None:
        args.matmul_size = 128 if args.quick else 2048 if jax.default_backend() == "cpu" else 8192
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    args.fused_phases = [f.strip() for f in args.fused_phases.split(",") if f.strip()]
    if not set(args.fused_phases) <= set(PHASES):
        p.error(f"--fused-phases: {args.fused_phases} not all in {list(PHASES)}")
    if args.fused_steps is not None and args.fused_steps < 1:
        p.error(f"--fused-steps must be >= 1, got {args.fused_steps}")
    bad = [d for d in args.dtypes if d not in ("float32", "bfloat16")]
    if bad:
        p.error(f"--dtypes: {bad} not supported; expected float32 and/or bfloat16")
    if (
        min(args.rounds, args.min_steps, args.max_steps, args.pipeline_batches) < 1
        or args.min_steps > args.max_steps
    ):
        p.error("--rounds, --min-steps, --max-steps, --pipeline-batches must be >= 1, min <= max steps")
    return args


def bench_config(quick: bool, dtype: str) -> Config:
    base = image.TINY if quick else IMAGES  # IMAGES: the default conv models, 64×64
    return base.replace(**{"model.compute_dtype": dtype})


def load_source(args, data_dir: str):
    """The nuclei train split through its TFDS array_record source (written on first use)."""
    if args.quick:
        return nuclei.load("train", data_dir=data_dir, size=8, split_sizes=QUICK_SPLITS)
    return nuclei.load("train", data_dir=data_dir)


def timed(fn) -> dict:
    """Wall s, this process's CPU s and compile s of fn(), blocked until its result is ready."""
    t0, c0 = time.perf_counter(), time.process_time()
    with compile_clock() as compile_s:
        result = jax.block_until_ready(fn())
    return {
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "compile": compile_s[0],
        "result": result,
        "load_1min": os.getloadavg()[0],
    }


# --- (a) image_fit.fit ------------------------------------------------------------------


def phase_steps(phase: str, start: int, n: int) -> dict:
    """The trainers' ae_steps/gan_steps that run n more steps of `phase` only, from step `start`."""
    return (
        {"ae_steps": start + n, "gan_steps": 0} if phase == "ae" else {"ae_steps": 0, "gan_steps": start + n}
    )


def fit_steps(config, source, mesh, phase: str, state, n: int):
    """n more steps of `phase` through `image_fit.fit`, from `state` (None: a fresh init)."""
    start = 0 if state is None else int(jax.device_get(state.step))
    return image_fit.fit(config, source, mesh=mesh, state=state, **phase_steps(phase, start, n))[0]


# --- (b) the naive per-step loop -----------------------------------------------------------


def loop_trainer(config, source, mesh, phase: str, state):
    """Returns (run(state, n) -> state, compile timing): (b) for `phase`, compiled ahead of time
    for `state`'s shapes (so its compilation is timed without running a step)."""
    step = jax.jit(image_fit.step_fn(config, phase, mesh).__wrapped__)  # no donation, no pinned shardings
    sharding = image_fit.batch_sharding(mesh)
    replicated = NamedSharding(mesh, PartitionSpec())
    labeled = jax.device_put(jnp.ones(len(source), bool), replicated)  # fit's default: all labelled
    key = jax.device_put(jax.random.key(config.cv.seed), replicated)
    host = ImageBatches(source, config.schedule.batch_size, seed=config.cv.seed, prefetch=1, num_threads=1)
    host.close()  # no reader threads: only host_batch (a read in the calling thread) is used
    first = jax.device_put(host.host_batch(0), sharding)
    compiled = timed(lambda: step.lower(state, first, labeled, key).compile())

    def run(state, n: int):
        position = int(jax.device_get(state.step))
        for p in range(position, position + n):
            batch = jax.device_put(host.host_batch(p), sharding)
            state, metrics = compiled["result"](state, batch, labeled, key)
            for value in metrics.values():
                float(value)  # what a loop that logs/NaN-checks every step does: a host sync
        return state

    return run, compiled


# --- (c) the fused run-vmapped trainer ------------------------------------------------------


def fused_runs(config, labels: np.ndarray) -> engine.RunSpec:
    """(c)'s runs: one per local device, each training on every row with every label (like (a)),
    each its own model (its own key: init, batch draws, noise)."""
    every_row = np.ones((jax.local_device_count(), len(labels)), bool)
    return image.make_runs(config, labels, every_row, every_row)


def fused_trainer(config, images: np.ndarray, labels: np.ndarray, runs, phase: str):
    """Returns run(state, n) -> state: (c), n more steps of `phase` for every run through
    `image.train_runs` as a study calls it (one fused chunk of n steps: the images
    placed on the devices, batches drawn in-graph, lax.scan over steps, vmap over runs sharded
    over all devices, one host sync), from `state` (None: a fresh init of every run)."""
    mesh = engine.runs_mesh()

    def run(state, n: int):
        start = 0 if state is None else int(np.asarray(jax.device_get(state.step))[0])
        steps = phase_steps(phase, start, n)
        # The engine's own schedule: one phase only (a config's schedule always has GAN steps).
        schedule = engine.Schedule((("ae", steps["ae_steps"]), ("gan", steps["gan_steps"])), n)
        data = image.image_data(config, images, labels)
        return engine.train_runs(image.TRAINER, config, schedule, data, runs, mesh=mesh, state=state).state

    return run


def fused_step_facts(config, images: np.ndarray, labels: np.ndarray, runs, phase: str, state) -> dict:
    """One fused step of all runs: its FLOPs (XLA's cost analysis of the whole, unpartitioned
    one-step chunk: one step, so a loop counted once is still exact) and, from the compiled
    per-device program, how many convolutions vmap over the runs made grouped
    (feature_group_count > 1) and how many all-gathers the partitioner added."""
    chunk = engine.fused_chunk_fn(image.TRAINER, image.program(config.structure(), phase), phase, 1)
    lowered = chunk.lower(state, runs, (images, np.asarray(labels, np.int32)))
    compiled = lowered.compile().as_text()
    groups = [int(n) for n in re.findall(r"feature_group_count=(\d+)", compiled)]
    return {
        "flops": _cost(lowered.cost_analysis()),
        "convolutions": compiled.count(" convolution("),
        "grouped_convolutions": sum(n > 1 for n in groups),
        "all_gathers": compiled.count(" all-gather("),
    }


# --- FLOPs, the matmul ceiling, vendor peaks -----------------------------------------------


def _cost(analysis) -> float:
    """FLOPs from a cost analysis (a dict, or a list of one dict per module in older JAX)."""
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis["flops"])


def step_flops(config, source, mesh, phase: str, state) -> dict:
    """FLOPs of one step of (a): the whole step's (XLA's analysis of the unpartitioned program)
    and the FLOPs the devices execute (the compiled per-device program × devices; higher when
    work is replicated on every device instead of split over the batch)."""
    replicated = NamedSharding(mesh, PartitionSpec())
    with ImageBatches(source, config.schedule.batch_size, sharding=image_fit.batch_sharding(mesh)) as batches:
        batch = next(batches)
    labeled = jax.device_put(jnp.ones(len(source), bool), replicated)
    lowered = image_fit.step_fn(config, phase, mesh).lower(state, batch, labeled, jax.random.key(0))
    model = _cost(lowered.cost_analysis())
    executed = _cost(lowered.compile().cost_analysis()) * mesh.size
    return {"model": model, "executed": executed, "replicated_work_factor": executed / model}


def matmul_ceiling(mesh, dtype: str, size: int, repeats: int = 5, min_batch_s: float = 0.2) -> dict:
    """Best FLOP/s of a [size, size] @ [size, size] matmul in `dtype`, rows split over the mesh's
    devices (so it uses them all, like the step), over `repeats` timed batches of calls."""
    size = size // mesh.size * mesh.size
    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.device_put(jax.random.normal(key_a, (size, size), dtype), image_fit.batch_sharding(mesh))
    b = jax.device_put(jax.random.normal(key_b, (size, size), dtype), NamedSharding(mesh, PartitionSpec()))
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, b))  # compile
    t0 = time.perf_counter()
    jax.block_until_ready(dot(a, b))
    calls = max(1, math.ceil(min_batch_s / max(time.perf_counter() - t0, 1e-9)))
    flops, rates = 2.0 * size**3, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready([dot(a, b) for _ in range(calls)])
        rates.append(flops * calls / (time.perf_counter() - t0))
    how = (
        f"best of {repeats} batches of {calls} jnp.dot calls [{size}, {size}] @ [{size}, {size}] "
        f"in {dtype}, rows split over {mesh.size} devices"
    )
    return {
        "size": size,
        "flops_per_call": flops,
        "calls_per_batch": calls,
        "flops_per_s_all": rates,
        "flops_per_s": max(rates),
        "is": how,
    }


def vendor_peak(device_kind: str, dtype: str) -> float | None:
    """The vendor's peak FLOP/s for a known GPU (spec sheet, not measured), else None."""
    for pattern, peaks in VENDOR_PEAK_TFLOPS:
        if re.search(pattern, device_kind):
            return peaks[dtype] * 1e12
    return None


# --- input pipeline alone -------------------------------------------------------------------


def pipeline_rate(source, batch_size: int, mesh, n_batches: int) -> dict:
    """Images/s of `ImageBatches` (shuffled reads in threads, prefetch, device_put onto the mesh),
    each batch blocked until on the devices; the first batch (thread start-up) is not timed."""
    with ImageBatches(source, batch_size, sharding=image_fit.batch_sharding(mesh)) as batches:
        jax.block_until_ready(next(batches))
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n_batches):
            jax.block_until_ready(next(batches))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "batches": n_batches,
        "batch_size": batch_size,
        "wall_s": wall,
        "cpu_s": cpu,
        "images_per_s": n_batches * batch_size / wall,
        "source": source.source,
    }


# --- one (dtype, phase) -----------------------------------------------------------------------


def bench_phase(config, source, mesh, phase: str, args, data: dict) -> dict:
    """First call of (a) (compilation), (b) compiled ahead of time, a first call of (c) (its
    chunk compiled for the timed length), then rounds of (b), (a), (c). (c) runs
    steps ÷ runs steps per round (at least --min-steps; or --fused-steps): about (a)'s images per
    round. A phase not in --fused-phases runs rounds of (b), (a) only."""
    say = _progress(f"{config.model.compute_dtype} {phase}")
    first = say("(a) first call", timed(lambda: fit_steps(config, source, mesh, phase, None, 1)))
    state = first["result"]
    run_loop, loop_compile = loop_trainer(config, source, mesh, phase, state)
    say("(b) compiled", loop_compile)
    per_step = max(first["wall"] - first["compile"], 1e-9)
    steps = int(min(args.max_steps, max(args.min_steps, args.budget_s // per_step)))
    flops = step_flops(config, source, mesh, phase, state)
    runs = fused_runs(config, data["label"])
    run_fused = fused_trainer(config, data["image"], data["label"], runs, phase)
    fused_steps = args.fused_steps or max(args.min_steps, steps // len(runs.train_mask))
    with_fused = phase in args.fused_phases
    if with_fused:
        fused_first = say("(c) first call", timed(lambda: run_fused(None, fused_steps)))
        fused_state = fused_first["result"]
        fused_facts = fused_step_facts(config, data["image"], data["label"], runs, phase, fused_state)
    rounds = []
    for i in range(args.rounds):
        # (b) does not donate: `state` stays valid for (a); (c) donates `fused_state`
        loop = say(f"round {i + 1} (b) {steps} steps", timed(lambda s=state: run_loop(s, steps)))
        fit = say(
            f"round {i + 1} (a)", timed(lambda s=state: fit_steps(config, source, mesh, phase, s, steps))
        )
        fused = (
            say(
                f"round {i + 1} (c) {fused_steps} steps",
                timed(lambda s=fused_state: run_fused(s, fused_steps)),
            )
            if with_fused
            else None
        )
        diff = _max_abs_diff(fit["result"], loop["result"])
        rounds.append({"fit": fit, "loop": loop, "fused": fused, "max_abs_diff_state": diff})
        state = fit["result"]
        fused_state = fused["result"] if with_fused else None
    fused = {"runs": len(runs.train_mask), "steps": fused_steps}
    if with_fused:
        fused.update(first=fused_first, **fused_facts)
    return {
        "first": first,
        "loop_compile": loop_compile,
        "steps": steps,
        "flops": flops,
        "rounds": rounds,
        "fused": fused,
    }


def _progress(prefix: str):
    """say(what, timing) -> timing: one stderr line per timed call, so a long run shows where its
    time goes (the GAN step on a 2-core CPU takes tens of seconds)."""

    def say(what: str, timing: dict) -> dict:
        print(
            f"bench_images: {prefix} {what}: {timing['wall']:.1f} s (compile {timing['compile']:.1f} s), "
            f"load {timing['load_1min']:.1f}",
            file=sys.stderr,
            flush=True,
        )
        return timing

    return say


def _max_abs_diff(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


# --- the record: every number derived from the measurements -------------------------------


def _rate(calls: list[dict], images_per_call: int, steps_per_call: int) -> dict:
    wall, cpu, n = sum(c["wall"] for c in calls), sum(c["cpu"] for c in calls), len(calls)
    return {
        "images_per_s": images_per_call * n / wall,
        "steps_per_s": steps_per_call * n / wall,
        "wall_s": [c["wall"] for c in calls],
        "cpu_s": [c["cpu"] for c in calls],
        "cores_busy": cpu / wall,
        "compile_in_timed_s": max(c["compile"] for c in calls),
    }


def summarize_phase(raw: dict, batch_size: int, ceiling: float, peak: float | None) -> dict:
    steps, rounds = raw["steps"], raw["rounds"]
    fit = _rate([r["fit"] for r in rounds], batch_size * steps, steps)
    loop = _rate([r["loop"] for r in rounds], batch_size * steps, steps)
    fit.update(first_call_s=raw["first"]["wall"], compile_s=raw["first"]["compile"])
    loop.update(compile_s=raw["loop_compile"]["wall"])
    flops = raw["flops"]
    achieved = flops["model"] * fit["steps_per_s"]
    fused = summarize_fused(raw, batch_size, ceiling)
    return {
        "steps_per_round": steps,
        "rounds": len(rounds),
        "fit": fit,
        "loop": loop,
        "fit_vs_loop": fit["images_per_s"] / loop["images_per_s"],
        "fit_vs_loop_per_round": [r["loop"]["wall"] / r["fit"]["wall"] for r in rounds],
        "max_abs_diff_state_fit_vs_loop": max(r["max_abs_diff_state"] for r in rounds),
        "flops_per_step_model": flops["model"],
        "flops_per_step_executed": flops["executed"],
        "replicated_work_factor": flops["replicated_work_factor"],
        "achieved_model_flops_per_s": achieved,
        "mfu": achieved / ceiling,
        "executed_utilisation": flops["executed"] * fit["steps_per_s"] / ceiling,
        "mfu_vs_vendor_peak": None if peak is None else achieved / peak,
        "fused": fused,
        "fused_vs_loop": fused["images_per_s"] / loop["images_per_s"] if fused["measured"] else None,
        "fused_vs_fit": fused["images_per_s"] / fit["images_per_s"] if fused["measured"] else None,
        "load_1min": [c["load_1min"] for r in rounds for c in (r["loop"], r["fit"], r["fused"]) if c],
    }


def summarize_fused(raw: dict, batch_size: int, ceiling: float) -> dict:
    """(c)'s rates: images/s summed over its runs (runs × batch × steps ÷ s); its steps are fused
    steps (every run one step); MFU from the fused step's FLOPs (all runs)."""
    f = raw["fused"]
    if "first" not in f:
        return {"measured": False, "why": "its phase is not in --fused-phases", "runs": f["runs"]}
    rate = _rate([r["fused"] for r in raw["rounds"]], f["runs"] * batch_size * f["steps"], f["steps"])
    achieved = f["flops"] * rate["steps_per_s"]
    rate.update(
        measured=True,
        runs=f["runs"],
        steps_per_round=f["steps"],
        first_call_s=f["first"]["wall"],
        compile_s=f["first"]["compile"],
        flops_per_fused_step=f["flops"],
        flops_vs_runs_times_fit_step=f["flops"] / (f["runs"] * raw["flops"]["model"]),
        convolutions_per_device=f["convolutions"],
        grouped_convolutions_per_device=f["grouped_convolutions"],
        all_gathers_per_device=f["all_gathers"],
        achieved_model_flops_per_s=achieved,
        mfu=achieved / ceiling,
    )
    return rate


def _hlo(fused: dict) -> str:
    if not fused["measured"]:
        return ""
    return (
        f"; (c)'s compiled step per device: {fused['grouped_convolutions_per_device']} of "
        f"{fused['convolutions_per_device']} convolutions grouped, "
        f"{fused['all_gathers_per_device']} all-gathers"
    )


def _measured(fused: dict, key: str) -> str:
    return f"{fused[key]:.2f}" if fused["measured"] else "not measured"


def cpu_info() -> dict:
    """The CPU's model name and its bf16 instruction-set flags (Linux /proc/cpuinfo)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = sorted(f for f in fields.get("flags", "").split() if "bf16" in f)
    return {"name": fields.get("model name", "unknown"), "bf16_flags": flags}


def bf16_vs_f32(dtypes: dict) -> dict | None:
    """bfloat16 ÷ float32 of the measured ceiling and of (a)'s images/s per phase (None unless
    both ran)."""
    if not {"float32", "bfloat16"} <= set(dtypes):
        return None
    f32, bf16 = dtypes["float32"], dtypes["bfloat16"]
    out = {"ceiling": bf16["ceiling"]["flops_per_s"] / f32["ceiling"]["flops_per_s"]}
    for phase in f32["phases"]:
        out[phase] = (
            bf16["phases"][phase]["fit"]["images_per_s"] / f32["phases"][phase]["fit"]["images_per_s"]
        )
    return out


def run_benchmark(args, source) -> dict:
    mesh = image_fit.data_mesh()
    kind = args.vendor_peak_kind or jax.devices()[0].device_kind
    data = read_all(source)
    memory = ArraySource(**_arrays(data), source=f"{source.source} (in memory)")
    out = {"dtypes": {}, "pipeline": {}}
    for dtype in args.dtypes:
        config = bench_config(args.quick, dtype)
        ceiling = matmul_ceiling(mesh, dtype, args.matmul_size)
        peak = vendor_peak(kind, dtype)
        phases = {}
        for phase in PHASES:
            raw = bench_phase(config, source, mesh, phase, args, data)
            phases[phase] = summarize_phase(raw, config.schedule.batch_size, ceiling["flops_per_s"], peak)
            r = phases[phase]
            print(
                f"bench_images: {dtype} {phase}: (a) {r['fit']['images_per_s']:.2f} images/s, (b) "
                f"{r['loop']['images_per_s']:.2f}, (c) {_measured(r['fused'], 'images_per_s')} "
                f"({r['fused']['runs']} runs), MFU {100 * r['mfu']:.2f} %, load "
                f"{os.getloadavg()[0]:.1f}",
                file=sys.stderr,
                flush=True,
            )
        out["dtypes"][dtype] = {"ceiling": ceiling, "vendor_peak_flops_per_s": peak, "phases": phases}
    out["vendor_peak"] = {
        "device_kind": kind,
        "assumed": args.vendor_peak_kind is not None,
        "source": VENDOR_PEAK_SOURCE,
        "known": vendor_peak(kind, "float32") is not None,
    }
    batch = bench_config(args.quick, args.dtypes[0]).schedule.batch_size
    for name, src in (("tfds", source), ("memory", memory)):
        out["pipeline"][name] = pipeline_rate(src, batch, mesh, args.pipeline_batches)
    train_rates = {
        f"{d}/{p}": r["fit"]["images_per_s"] for d, v in out["dtypes"].items() for p, r in v["phases"].items()
    }
    tfds_rate = out["pipeline"]["tfds"]["images_per_s"]
    out["pipeline_vs_training"] = {k: tfds_rate / v for k, v in train_rates.items()}
    out["pipeline_is_not_the_bottleneck"] = min(out["pipeline_vs_training"].values()) > 1.0
    return out


def _arrays(batch: dict) -> dict:
    return {"images": batch["image"], "label_array": batch["label"]}


def notes() -> list[str]:
    return [
        "(b) is the same step (image_fit.step_fn's function) jitted without donation and called from "
        "a per-step Python loop that reads and device_puts each batch in the loop (no prefetch) and "
        "reads every loss with float() (a host sync per step); same devices, sharding and batches as (a).",
        "(c) is image.train_runs, the fused trainer of the image study, with one run per "
        "local device: it trains that many INDEPENDENT models (each its own init, batches and noise), "
        "each drawing batches of the same size from all rows in-graph out of the device-resident "
        "images (no input pipeline), lax.scan over a round's steps, vmap over the runs (sharded one "
        "per device), one host sync per round; each timed call also places the images on the devices. "
        "(a) and (b) train ONE model data-parallel (its batch split over the devices). So (c)/(a) "
        "compares images processed per second on the same devices, not the same training: a round of "
        "(c) advances R models by steps ÷ R steps each, a round of (a) one model by `steps` steps. "
        "(c)'s images/s = runs × batch × steps ÷ s; its MFU is from XLA's cost analysis of its "
        "one-step chunk (all runs), like (a)'s.",
        "Two things make (c) slow on a CPU. First, (c)'s steps run inside lax.scan, an XLA While "
        "loop, and XLA:CPU runs convolutions inside a loop body much slower (jax-ml/jax issue "
        "12868); results/bench_conv_scan.md times the same steps alone, in a scan and in an "
        "unrolled scan. Second, vmap over the runs' weights turns each convolution into a grouped "
        "convolution (feature_group_count = runs per call), whose operands XLA's SPMD partitioner "
        "gathers instead of keeping the runs sharding (openxla/xla issue 47945); the counts of "
        "grouped convolutions and all-gathers are read from (c)'s compiled one-step program. "
        "--fused-phases limits (c) to the phases named, where it would not finish in the time at hand.",
        "MFU = the step's FLOPs (XLA cost analysis of the whole, unpartitioned step) × steps/s of (a) ÷ "
        "the ceiling measured here (a sharded square matmul in the same dtype on the same devices). "
        "`replicated_work_factor` = FLOPs the devices execute (compiled per-device program × devices) "
        "÷ the step's FLOPs: above 1, part of the step is computed on every device instead of split.",
        "The input pipeline was timed alone; during training its reader threads share the CPU with the step.",
    ]


def dtype_line(rec: dict) -> str:
    """The bf16 vs f32 sentence, from the measured ratios (and, on CPU, its bf16 support)."""
    r = rec["bfloat16_vs_float32"]
    if r is None:
        return "bfloat16 vs float32: not compared (only one dtype ran)."
    phases = ", ".join(f"{p} images/s ×{v:.2f}" for p, v in r.items() if p != "ceiling")
    line = f"bfloat16 ÷ float32, measured here: matmul ceiling ×{r['ceiling']:.2f}, {phases}."
    if rec["device"]["platform"] == "cpu":
        flags = ", ".join(rec["device"]["bf16_flags"]) or "none"
        line += (
            " bf16 is meant for GPU/TPU. On a CPU, XLA computes most bf16 element-wise ops in f32 "
            "(converting around them) and only matmuls/convolutions can use the CPU's own bf16 "
            f"units where it has them (this CPU's bf16 flags: {flags}); reported as measured, not "
            "assumed."
        )
    return line


# --- Markdown -------------------------------------------------------------------------------


def markdown(rec: dict) -> str:
    """The Markdown summary; every number comes from `rec` (the JSON written beside it)."""
    dev, load = rec["device"], rec["load_average"]
    g = lambda v: f"{v / 1e9:.3g}"
    lines = [
        f"Image-path training throughput on {dev['description']}, `{rec['command']}`, commit "
        f"{rec['git_commit'][:12]}. Data: {rec['data']['source']} ({rec['data']['images']} images "
        f"{'×'.join(map(str, rec['data']['image_shape']))}), batch "
        f"{Config.from_dict(rec['config']).schedule.batch_size}.",
        "",
        "| dtype | phase | (a) fit images/s | (b) loop images/s | (a)/(b) | steps × rounds | (a) compile s "
        "| GFLOP/step | MFU | ceiling GFLOP/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for dtype, d in rec["dtypes"].items():
        for phase, r in d["phases"].items():
            fit, loop, ceiling = r["fit"], r["loop"], d["ceiling"]["flops_per_s"]
            lines.append(
                f"| {dtype} | {phase} | {fit['images_per_s']:.2f} | {loop['images_per_s']:.2f} | "
                f"{r['fit_vs_loop']:.2f} | {r['steps_per_round']} × {r['rounds']} | {fit['compile_s']:.1f} | "
                f"{g(r['flops_per_step_model'])} | {100 * r['mfu']:.1f} % | {g(ceiling)} |"
            )
    lines += [
        "",
        "(c) the fused trainer (`train_image_runs`), R independent models at once, images/s summed "
        "over the runs (see the notes: not the same training as (a)):",
        "",
        "| dtype | phase | runs | (c) fused images/s | (c)/(b) | (c)/(a) | steps × rounds | (c) compile s "
        "| GFLOP/fused step | ÷ (runs × (a)'s) | MFU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for dtype, d in rec["dtypes"].items():
        for phase, r in d["phases"].items():
            c = r["fused"]
            if not c["measured"]:
                lines.append(f"| {dtype} | {phase} | {c['runs']} | not measured: {c['why']} |" + " – |" * 7)
                continue
            lines.append(
                f"| {dtype} | {phase} | {c['runs']} | {c['images_per_s']:.2f} | {r['fused_vs_loop']:.2f} | "
                f"{r['fused_vs_fit']:.2f} | {c['steps_per_round']} × {r['rounds']} | {c['compile_s']:.1f} | "
                f"{g(c['flops_per_fused_step'])} | {c['flops_vs_runs_times_fit_step']:.2f} | "
                f"{100 * c['mfu']:.1f} % |"
            )
    lines.append("")
    for dtype, d in rec["dtypes"].items():
        peak = d["vendor_peak_flops_per_s"]
        for phase, r in d["phases"].items():
            assumed = (
                f", ASSUMED {rec['vendor_peak']['device_kind']!r}" if rec["vendor_peak"]["assumed"] else ""
            )
            vendor = (
                (
                    f"; against the vendor's spec-sheet peak ({g(peak)} GFLOP/s, not measured{assumed}): "
                    f"{100 * r['mfu_vs_vendor_peak']:.2f} %"
                )
                if peak
                else ""
            )
            lines.append(
                f"- {dtype} {phase}: cores busy (a) {r['fit']['cores_busy']:.2f}, "
                f"(b) {r['loop']['cores_busy']:.2f}, (c) {_measured(r['fused'], 'cores_busy')}; "
                f"executed/step FLOPs {r['replicated_work_factor']:.2f}; "
                f"max |state (a) − (b)| {r['max_abs_diff_state_fit_vs_loop']:.2g}{vendor}{_hlo(r['fused'])}."
            )
    pipe = rec["pipeline"]
    lines += [
        "",
        f"Input pipeline alone (`ImageBatches` onto {dev['count']} devices, "
        f"batch {pipe['tfds']['batch_size']}): "
        f"TFDS array_record source {pipe['tfds']['images_per_s']:.0f} images/s, in memory "
        f"{pipe['memory']['images_per_s']:.0f} images/s; pipeline ÷ training (a): "
        + ", ".join(f"{k} {v:.1f}×" for k, v in rec["pipeline_vs_training"].items())
        + (" — not the bottleneck." if rec["pipeline_is_not_the_bottleneck"] else " — THE BOTTLENECK."),
        "",
        f"- {dtype_line(rec)}",
        *(f"- {n}" for n in rec["notes"]),
        f"- Machine load (1-min load average): {load['before'][0]:.2f} before, {load['after'][0]:.2f} after, "
        f"peak {load['max_1min']:.2f}, on {load['cores']} cores"
        + (
            ": other jobs competed for these cores, so these timings are pessimistic."
            if load["oversubscribed"]
            else "."
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, writes `<out>/bench_images.json` and `.md`, returns the record."""
    runtime.split_host_devices()  # one XLA CPU device per core; before JAX starts its backends
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.render:
        return harness.rewrite_markdown(args.render, markdown)
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="bench_images_jax_cache_")
    runtime.enable_compilation_cache(cache_dir)
    rec = harness.record(argv, module="benchmarks.bench_images")
    data_dir = args.data_dir or tempfile.mkdtemp(prefix="bench_images_tfds_")
    source = load_source(args, data_dir)
    raw = run_benchmark(args, source)
    dev, cpu, cores = rec["device"], cpu_info(), rec["load_average"]["cores"]
    name = cpu["name"] if dev["platform"] == "cpu" else dev["kind"]
    dev.update(
        name=name,
        bf16_flags=cpu["bf16_flags"],
        cores=cores,
        description=f"{dev['count']} × {dev['platform']} ({name}), {cores} cores",
    )
    samples = [x for d in raw["dtypes"].values() for p in d["phases"].values() for x in p["load_1min"]]
    rec.update(
        {
            "benchmark": "bench_images",
            "quick": args.quick,
            "config": bench_config(args.quick, args.dtypes[0]).to_dict(),
            "data": {
                "source": source.source,
                "images": len(source),
                "image_shape": list(source.image_shape),
                "synthetic": bool(source.metadata.get("synthetic")),
            },
            **raw,
            "bfloat16_vs_float32": bf16_vs_f32(raw["dtypes"]),
            "notes": notes(),
        }
    )
    rec = harness.finish(rec, samples)
    harness.write(args.out, "bench_images", rec, markdown(rec))
    for folder, given in ((cache_dir, args.cache_dir), (data_dir, args.data_dir)):
        if given is None:
            shutil.rmtree(folder, ignore_errors=True)
    return rec


if __name__ == "__main__":
    print(markdown(main()))
