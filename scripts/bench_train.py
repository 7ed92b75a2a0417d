"""Training-speed benchmark of the paper pipeline (experiments/paper.py, bundled WDBC, its
10 × 10-fold CV masks), all in one process and one run:

(a) fused: `train.train_runs` trains every CV run in one jitted `lax.scan`, `vmap`ped over runs,
    with the runs axis sharded over one CPU device per core (`runtime.split_host_devices`);
(b) loop: the same model, one run at a time, with `jit(ae_step)` / `jit(gan_step)` (the pure
    step functions of gan_jax/train.py) called from a Python for-loop (flax-example style);
(c) sklearn: `MLPClassifier` with the discriminator's hidden sizes, same batch size and
    learning rate, for the classifier's epochs-equivalent, on the same folds.

The three are interleaved in rounds (one fused call, a few loop runs, a few sklearn fits), so
load from other jobs on the shared machine falls on all three alike; every round's ratios are
kept. Compile time is reported apart from per-run time: first call minus the steady call, once with
an empty persistent compilation cache (cold) and once with it filled but JAX's in-memory
caches cleared (warm). FLOPs come from XLA's cost analysis of the compiled programs, next to a
measured dense-matmul FLOP/s of this machine.

Run:    python scripts/bench_train.py            # full: 100 runs, a few minutes on 2 CPU cores
        python scripts/bench_train.py --quick    # smoke run (tiny config)
Writes: results/bench_train.json, results/bench_train.md
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax import runtime  # noqa: E402

# One XLA CPU device per core, so sharding the runs axis uses every core; must precede JAX.
runtime.split_host_devices()

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

from gan_jax import evaluate, preprocess, train  # noqa: E402
from gan_jax.config import Config, load_experiment  # noqa: E402
from gan_jax.data import load_dataset  # noqa: E402

TARGETS = {"study_wall_s_max": 60.0, "fused_vs_loop_min": 3.0, "fused_vs_sklearn_min": 5.0}
LOAD_NOTE = (
    "os.getloadavg() (1, 5, 15 min) of the whole machine. Other engineers' jobs may have run on "
    "the same 2 cores during this benchmark; a load above the core count means the timings "
    "here were slowed by contention and are pessimistic."
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="paper", help="experiment name or .py file")
    p.add_argument("--quick", action="store_true", help="tiny config and few runs (smoke/test)")
    p.add_argument("--repeats", type=int, help="rounds of (a), (b), (c) interleaved (default 3; quick 1)")
    p.add_argument("--loop-runs", type=int, help="runs of (b) per round (default 2; quick 1)")
    p.add_argument("--sklearn-runs", type=int, help="fits of (c) per round (default 4; quick 1)")
    p.add_argument("--matmul-size", type=int, help="square matmul size (default 1024; quick 256)")
    p.add_argument("--cache-dir", help="persistent compilation cache (default: a fresh, empty "
                   "temporary folder, so the first call is a true cold compile)")  # fmt: skip
    p.add_argument("--out", default="results", help="folder for bench_train.json/.md")
    args = p.parse_args(argv)
    defaults = {"loop_runs": (2, 1), "sklearn_runs": (4, 1), "repeats": (3, 1), "matmul_size": (1024, 256)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    if min(args.loop_runs, args.sklearn_runs, args.repeats) < 1:
        p.error("--repeats, --loop-runs and --sklearn-runs must be >= 1")
    return args


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, this process's CPU s over all its threads, result): CPU / wall is how many
    cores the call really got, which other jobs on the machine can lower."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - t0, time.process_time() - c0, out


# --- (a) the fused trainer ---------------------------------------------------------------------


def clear_in_memory_caches() -> None:
    """Drops JAX's in-memory executables (and train.py's cached jit wrappers), so the next call
    compiles again and can only be saved by the persistent cache."""
    jax.clear_caches()
    train.fused_chunk_fn.cache_clear()
    train._init_fn.cache_clear()


def fused_timer(config: Config, x: np.ndarray, y: np.ndarray, masks: np.ndarray) -> Callable[[], dict]:
    """One call = one `train.train_runs` on all runs (init included), blocked until the state
    is ready; the chunk callbacks split its wall time by phase (the first ae chunk has init)."""

    def call() -> dict:
        marks = [("start", time.perf_counter())]
        on_chunk = lambda _state, entry: marks.append((entry["phase"], time.perf_counter()))
        wall, cpu, state = _timed(lambda: train.train_runs(config, x, y, masks, on_chunk=on_chunk).state)
        return {"wall": wall, "cpu": cpu, "state": state, "phase_wall": _phase_wall(marks)}

    return call


def _phase_wall(marks: list[tuple[str, float]]) -> dict[str, float]:
    """Seconds per phase from (phase, time) marks taken after each chunk's host sync."""
    out: dict[str, float] = {}
    for (_, t0), (phase, t1) in zip(marks, marks[1:]):
        out[phase] = out.get(phase, 0.0) + t1 - t0
    return out


def fused_record(cold: dict, warm: dict, steady: list[dict], n_runs: int) -> dict:
    walls = [c["wall"] for c in steady]
    mean = float(np.mean(walls))  # the mean, as for (b) and (c): no best-of advantage
    cpu = float(np.mean([c["cpu"] for c in steady]))
    phases = steady[0]["phase_wall"]
    return {
        "runs": n_runs,
        "devices": len(jax.devices()),
        "per_run_s": mean / n_runs,
        "steady_wall_s": mean,
        "steady_wall_all_s": walls,
        "steady_cpu_per_wall": sum(c["cpu"] for c in steady) / sum(walls),
        "phase_wall_s": {p: float(np.mean([c["phase_wall"][p] for c in steady])) for p in phases},
        "first_call_cold_cache_s": cold["wall"],
        "first_call_warm_cache_s": warm["wall"],
        "compile_cold_cache_s": cold["wall"] - mean,
        "compile_warm_cache_s": warm["wall"] - mean,
        # CPU-second versions: compilation is mostly one thread, so these shift far less than
        # the wall-clock differences when other jobs take cores away.
        "cpu_s_per_run": cpu / n_runs,
        "compile_cold_cache_cpu_s": cold["cpu"] - cpu,
        "compile_warm_cache_cpu_s": warm["cpu"] - cpu,
        "how": "train.train_runs(config, x, y, masks) incl. init, blocked until the state is "
        "ready; per run = mean steady call / runs; compile = first call - mean steady call, "
        "cold = empty persistent cache, warm = filled persistent cache after jax.clear_caches()",
    }


# --- (b) one run at a time, jitted step in a Python loop ----------------------------------------


class LoopFns(NamedTuple):
    init: Callable  # (x, run) -> state
    prepare: dict[str, Callable]  # phase -> (state, run, x) -> (train_idx, n_train, inputs)
    step: dict[str, Callable]  # phase -> un-jitted (state, key, inputs, y, train_idx, n_train)


def loop_fns(config: Config, n_features: int) -> LoopFns:
    """The per-step functions of (b), built on train.ae_step / train.gan_step. Data preparation
    (scaled rows, latent codes, the training-row index) runs once per phase, outside the step,
    as a flax-style input pipeline would; the step key is fold_in(run key, global step) as in
    the fused trainer, so (b) trains the same model as (a)."""
    models = train.build_models(config, n_features)

    def prepare(phase, state, run, x):
        train_idx = jnp.argsort(~run.train_mask, stable=True)  # training rows first
        inputs = (
            preprocess.apply(state.scaler, x) if phase == "ae" else train.classifier_inputs(config, state, x)
        )
        return train_idx, jnp.sum(run.train_mask), inputs

    def step(phase, state, key, inputs, y, train_idx, n_train):
        sample = lambda k, size: train._sample(k, train_idx, n_train, size)
        k = jax.random.fold_in(key, state.step)
        if phase == "ae":
            state, metrics = train.ae_step(models, config, state, k, inputs, sample)
        else:
            state, metrics = train.gan_step(models, config, state, k, inputs, y, sample)
        return state._replace(step=state.step + 1), metrics

    return LoopFns(
        init=jax.jit(functools.partial(train.init_state, config)),
        prepare={p: jax.jit(functools.partial(prepare, p)) for p in train.PHASES},
        step={p: functools.partial(step, p) for p in train.PHASES},
    )


def train_one_run_loop(config: Config, fns: LoopFns, jitted: dict, x, y, run: train.RunData):
    """One run: a Python loop of jitted steps; metrics reach the host once per `log_every` steps
    (as in the fused trainer), so the loop is not slowed by per-step syncs."""
    state = fns.init(x, run)
    for phase, _, n_steps in train.phase_schedule(config):
        train_idx, n_train, inputs = fns.prepare[phase](state, run, x)
        metrics = []
        for _ in range(n_steps):
            state, m = jitted[phase](state, run.key, inputs, y, train_idx, n_train)
            metrics.append(m)
        jax.device_get(metrics)
    return state


def loop_timer(config: Config, x: np.ndarray, y: np.ndarray, masks: np.ndarray) -> Callable[[int], dict]:
    """One call = run r trained alone by (b); the first call carries the compilation."""
    fns = loop_fns(config, x.shape[1])
    # Jitted once, outside every loop, with the state donated (big_vision / flax style).
    jitted = {p: jax.jit(f, donate_argnums=(0,)) for p, f in fns.step.items()}
    xd, yd = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    keys = train.run_keys(config.seed, np.arange(len(masks)))

    def call(r: int) -> dict:
        run = train.RunData(keys[r], jnp.asarray(masks[r]))
        wall, cpu, state = _timed(lambda: train_one_run_loop(config, fns, jitted, xd, yd, run))
        return {"wall": wall, "cpu": cpu, "run": r, "disc_params": state.disc_params}

    return call


def loop_record(config: Config, first: dict, timed: list[dict], fused_state) -> dict:
    walls = [c["wall"] for c in timed]
    per_run = float(np.mean(walls))
    fused_disc = lambda r: jax.tree.map(lambda a: a[r], fused_state.disc_params)
    diff = max(_max_abs_diff(c["disc_params"], fused_disc(c["run"])) for c in [first, *timed])
    return {
        "runs_timed": len(timed),
        "per_run_s": per_run,
        "run_times_s": walls,
        "first_run_s": first["wall"],
        "compile_s": first["wall"] - per_run,
        "cpu_s_per_run": float(np.mean([c["cpu"] for c in timed])),
        "compile_cpu_s": first["cpu"] - float(np.mean([c["cpu"] for c in timed])),
        "cpu_per_wall": sum(c["cpu"] for c in timed) / sum(walls),
        "step_calls_per_run": config.total_steps,
        "max_abs_diff_disc_params_vs_fused": diff,
        "how": "one run at a time on one device: jit(init), jit(prepare) per phase, then "
        "jit(step, donate_argnums=0) on train.ae_step / train.gan_step in a Python for-loop; per "
        "run = mean of the timed runs; the first run (run 0) carries compilation: compile_s = "
        "its time - per run",
    }


def _max_abs_diff(a, b) -> float:
    return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# --- (c) scikit-learn MLPClassifier ------------------------------------------------------------


def sklearn_epochs(config: Config, n_train: int) -> int:
    """Epochs-equivalent of the classifier's training: its labelled samples (GAN steps × batch)
    over the training fold. The AE and generator work is left out, which favours sklearn."""
    return max(1, round(config.gan_steps * config.batch_size / n_train))


def sklearn_timer(config: Config, x: np.ndarray, y: np.ndarray, masks: np.ndarray) -> Callable[[int], dict]:
    """One call = (c) fitted on run r's training rows (scaler fitted inside the fold)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    def call(r: int) -> dict:
        mask = masks[r]
        n_epochs = sklearn_epochs(config, int(mask.sum()))
        # n_iter_no_change > max_iter: no early stop, so every epoch runs.
        mlp = MLPClassifier(
            config.disc_hidden, batch_size=config.batch_size, learning_rate_init=config.d_lr,
            max_iter=n_epochs, tol=0.0, n_iter_no_change=n_epochs + 1, random_state=config.seed + r,
        )  # fmt: skip
        scaler = MinMaxScaler() if config.scaler == "minmax" else StandardScaler()
        model = Pipeline([("scale", scaler), ("model", mlp)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            wall, cpu, _ = _timed(functools.partial(_fit, model, x[mask], y[mask]))
        return {"wall": wall, "cpu": cpu, "epochs": n_epochs, "epochs_run": int(mlp.n_iter_)}

    return call


def sklearn_record(timed: list[dict]) -> dict:
    walls = [c["wall"] for c in timed]
    return {
        "runs_timed": len(timed),
        "per_run_s": float(np.mean(walls)),
        "run_times_s": walls,
        "cpu_per_wall": sum(c["cpu"] for c in timed) / sum(walls),
        "cpu_s_per_run": float(np.mean([c["cpu"] for c in timed])),
        "epochs": [c["epochs"] for c in timed],
        "epochs_run": [c["epochs_run"] for c in timed],
        "how": "Pipeline(fold-fitted scaler, MLPClassifier(disc_hidden, batch_size, lr=d_lr, "
        "adam)) fit on the run's training rows (30 scaled features), one run at a time; epochs = "
        "round(gan_steps * batch_size / n_train), early stopping off; fit time only",
    }


def _fit(model, x: np.ndarray, y: np.ndarray) -> None:
    model.fit(x, y)  # returns None, so _timed has no estimator to block on


# --- the three trainers, interleaved -----------------------------------------------------------


def bench_trainers(config: Config, x, y, masks: np.ndarray, args) -> tuple[dict, dict, dict, list]:
    """Cold calls first; then `repeats` rounds of one steady fused call, `loop_runs` runs of (b)
    and `sklearn_runs` fits of (c), so that load from other jobs on the machine falls on all
    three alike; last, a fused call with only the persistent cache warm."""
    fused, loop, sk = (
        fused_timer(config, x, y, masks),
        loop_timer(config, x, y, masks),
        sklearn_timer(config, x, y, masks),
    )
    n = len(masks)
    cold, loop_first = fused(), loop(0)
    rounds = []
    for i in range(args.repeats):
        f = fused()
        lp = [loop((1 + i * args.loop_runs + j) % n) for j in range(args.loop_runs)]
        sc = [sk((i * args.sklearn_runs + j) % n) for j in range(args.sklearn_runs)]
        rounds.append({"fused": f, "loop": lp, "sklearn": sc, "load_1min": os.getloadavg()[0]})
    clear_in_memory_caches()
    warm = fused()
    steady = [r["fused"] for r in rounds]
    timed_loop = [c for r in rounds for c in r["loop"]]
    timed_sk = [c for r in rounds for c in r["sklearn"]]
    return (
        fused_record(cold, warm, steady, n),
        loop_record(config, loop_first, timed_loop, warm["state"]),
        sklearn_record(timed_sk),
        [_round_summary(r, n) for r in rounds],
    )


def _round_summary(r: dict, n_runs: int) -> dict:
    fused = r["fused"]["wall"] / n_runs
    loop, sk = np.mean([c["wall"] for c in r["loop"]]), np.mean([c["wall"] for c in r["sklearn"]])
    return {
        "fused_per_run_s": fused,
        "loop_per_run_s": float(loop),
        "sklearn_per_run_s": float(sk),
        "fused_vs_loop": float(loop / fused),
        "fused_vs_sklearn": float(sk / fused),
        "load_1min_after": r["load_1min"],
    }


# --- FLOPs ----------------------------------------------------------------------------------


def _flops(compiled) -> float:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # older JAX returns one dict per module
    return float(cost["flops"])


def _sharded_inputs(config: Config, x, y, masks: np.ndarray):
    """(state, runs, x, y) exactly as train_runs builds them (padded, runs axis sharded)."""
    mesh = train.runs_mesh()
    take = np.concatenate([np.arange(len(masks)), np.full(-len(masks) % mesh.size, len(masks) - 1)])
    by_run, rep = NamedSharding(mesh, PartitionSpec("runs")), NamedSharding(mesh, PartitionSpec())
    runs = jax.device_put(train.RunData(train.run_keys(config.seed, take), masks[take]), by_run)
    xd = jax.device_put(jnp.asarray(x, jnp.float32), rep)
    yd = jax.device_put(jnp.asarray(y, jnp.int32), rep)
    return jax.device_put(train._init_fn(config)(xd, runs), by_run), runs, xd, yd


def step_flops(config: Config, state, n_features: int, n_rows: int) -> dict[str, float]:
    """FLOPs of one training step of every run at once: the scan body of the fused trainer."""
    fns = loop_fns(config, n_features)
    n_runs = state.step.shape[0]
    spec = lambda shape, dtype: jax.ShapeDtypeStruct(shape, dtype)
    state_spec = jax.tree.map(lambda a: spec(a.shape, a.dtype), state)
    key, idx, n = spec((n_runs, 2), jnp.uint32), spec((n_runs, n_rows), jnp.int32), spec((n_runs,), jnp.int32)
    y = spec((n_rows,), jnp.int32)
    dims = {"ae": n_features, "gan": config.latent_dim if config.use_autoencoder else n_features}
    out = {}
    for phase, fn in fns.step.items():
        vmapped = jax.vmap(fn, in_axes=(0, 0, 0, None, 0, 0))
        inputs = spec((n_runs, n_rows, dims[phase]), jnp.float32)
        out[phase] = _flops(jax.jit(vmapped).lower(state_spec, key, inputs, y, idx, n).compile())
    return out


def fused_flops(config: Config, x, y, masks: np.ndarray) -> dict:
    """Total FLOPs of one fused training of all runs (padding included: the machine runs it).

    XLA's HloCostAnalysis counts a while-loop body once, whatever the trip count (a 10-step and
    a 200-step chunk report the same FLOPs), and reports a sharded program per device. So a
    chunk of n steps costs devices × reported + (n - 1) × (one vmapped step over all runs)."""
    state, runs, xd, yd = _sharded_inputs(config, x, y, masks)
    per_step = step_flops(config, state, x.shape[1], x.shape[0])
    n_dev = len(jax.devices())
    chunk_cache: dict[tuple[str, int], float] = {}
    by_phase = dict.fromkeys(train.PHASES, 0.0)
    for phase, _, n in train.phase_schedule(config):
        if (phase, n) not in chunk_cache:
            compiled = train.fused_chunk_fn(config, phase, n).lower(state, runs, xd, yd).compile()
            chunk_cache[(phase, n)] = n_dev * _flops(compiled)
        by_phase[phase] += chunk_cache[(phase, n)] + (n - 1) * per_step[phase]
    total = sum(by_phase.values())
    return {
        "total": total,
        "by_phase": by_phase,
        "per_run": total / len(masks),
        "per_step_all_runs": per_step,
        "padded_runs": int(state.step.shape[0]),
        "method": "compiled.cost_analysis()['flops']: per chunk, devices × flops of the sharded "
        "chunk program (body counted once by XLA) + (n_steps - 1) × flops of the same step "
        "vmapped over all runs; the init program is left out",
    }


def matmul_flops(size: int, reps: int = 10) -> dict:
    """Best-of-`reps` FLOP/s of a jitted float32 size×size matmul on one device, and of one such
    matmul per device at once (a batch sharded over all devices): the machine's dense peak."""
    devices = jax.devices()
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    one = jax.jit(lambda u, v: u @ v)
    mesh = train.runs_mesh()
    batch = jax.device_put(jnp.stack([a] * len(devices)), NamedSharding(mesh, PartitionSpec("runs")))
    many = jax.jit(lambda u, v: jnp.einsum("bij,bjk->bik", u, v))

    def best(fn, arg, flops):
        jax.block_until_ready(fn(arg, arg))  # compile
        return flops / min(_timed(lambda: fn(arg, arg))[0] for _ in range(reps))

    flops = 2.0 * size**3
    one_device, all_devices = best(one, a, flops), best(many, batch, flops * len(devices))
    return {
        "size": size,
        "one_device_flops_per_s": one_device,
        "all_devices_flops_per_s": all_devices,
        # XLA's CPU matmul may already use every core from one device; the better one is the peak.
        "peak_flops_per_s": max(one_device, all_devices),
        "how": f"jit(a @ b), float32 {size}x{size}, best of {reps}; all devices: one matmul per "
        "device in one sharded call",
    }


# --- report ---------------------------------------------------------------------------------


def _range(values: list[float]) -> list[float]:
    return [float(min(values)), float(max(values))]


def summarize(args, config, fused: dict, loop: dict, sk: dict, rounds: list, flops: dict, peak: dict) -> dict:
    """Speedups, target checks and achieved FLOP/s, all derived from the measured numbers."""
    achieved = flops["total"] / fused["steady_wall_s"]
    # The "incl_cold_compile" ratios charge the fused trainer its cold compile, spread over its runs.
    cold_per_run = fused["first_call_cold_cache_s"] / fused["runs"]
    speedup = {
        "fused_vs_loop": loop["per_run_s"] / fused["per_run_s"],
        "fused_vs_sklearn": sk["per_run_s"] / fused["per_run_s"],
        "fused_incl_cold_compile_vs_loop": loop["per_run_s"] / cold_per_run,
        "fused_incl_cold_compile_vs_sklearn": sk["per_run_s"] / cold_per_run,
        # CPU seconds per run (all threads): less moved by other jobs than wall time, but it
        # ignores that the fused trainer spreads its CPU time over every core.
        "cpu_fused_vs_loop": loop["cpu_s_per_run"] / fused["cpu_s_per_run"],
        "cpu_fused_vs_sklearn": sk["cpu_s_per_run"] / fused["cpu_s_per_run"],
        "fused_vs_loop_round_range": _range([r["fused_vs_loop"] for r in rounds]),
        "fused_vs_sklearn_round_range": _range([r["fused_vs_sklearn"] for r in rounds]),
    }
    study = fused["first_call_cold_cache_s"]
    targets = {
        "applies": not args.quick and config.n_runs == 100,
        "study_wall_s": study,
        "study_wall_met": study <= TARGETS["study_wall_s_max"],
        "fused_vs_loop_met": speedup["fused_vs_loop"] >= TARGETS["fused_vs_loop_min"],
        "fused_vs_sklearn_met": speedup["fused_vs_sklearn"] >= TARGETS["fused_vs_sklearn_min"],
        "limits": TARGETS,
        "study_wall_is": "the fused trainer's first call on all runs (AE + SGAN, init and "
        "compilation included) with the persistent cache as recorded in cache_was_empty",
    }
    phases = fused["phase_wall_s"]
    flops_out = {
        **flops,
        "achieved_flops_per_s": achieved,
        "achieved_by_phase_flops_per_s": {p: flops["by_phase"][p] / phases[p] for p in phases},
        # The same model's FLOPs over (b)'s time: its rate on one device, one run at a time.
        "loop_achieved_flops_per_s": flops["per_run"] / loop["per_run_s"],
        "matmul": peak,
        "fraction_of_matmul_peak": achieved / peak["peak_flops_per_s"],
    }
    return {"speedup": speedup, "targets": targets, "flops": flops_out}


def markdown(record: dict) -> str:
    f, lp, sk = record["fused"], record["loop"], record["sklearn"]
    s, t, fl = record["speedup"], record["targets"], record["flops"]
    load = record["load_average"]
    rows = [
        ("(a) fused: scan + vmap, runs sharded over "
         f"{f['devices']} CPU devices", f["per_run_s"], f["runs"], f"{f['compile_cold_cache_s']:.2f}", 1.0),
        ("(b) jitted step in a Python loop, one run at a time", lp["per_run_s"], lp["runs_timed"],
         f"{lp['compile_s']:.2f}", s["fused_vs_loop"]),
        ("(c) scikit-learn MLPClassifier "
         f"({sk['epochs'][0]} epochs)", sk["per_run_s"], sk["runs_timed"], "–", s["fused_vs_sklearn"]),
    ]  # fmt: skip
    lines = [
        f"Training speed, {record['config']['name']} pipeline (AE {record['config']['ae_steps']} + "
        f"SGAN {record['config']['gan_steps']} steps per run), {record['device']['count']} × "
        f"{record['device']['kind']}, `{record['command']}`, commit {record['git_commit'][:12]}.",
        "",
        "| trainer | s per run | runs timed | compile (s) | fused is × faster |",
        "|---|---:|---:|---:|---:|",
        *(f"| {n} | {p:.4f} | {k} | {c} | {x:.1f} |" for n, p, k, c, x in rows),
        "",
        f"- Whole study ({f['runs']} runs, first call incl. compilation, persistent cache "
        f"{'empty' if record['cache_was_empty'] else 'not empty'}): {t['study_wall_s']:.1f} s "
        f"(target ≤ {t['limits']['study_wall_s_max']:.0f} s: {'met' if t['study_wall_met'] else 'missed'}); "
        f"with a warm persistent cache {f['first_call_warm_cache_s']:.1f} s "
        f"(compile {f['compile_warm_cache_s']:.2f} s).",
        f"- Speedup range over the {len(record['rounds'])} interleaved rounds: vs (b) "
        f"{s['fused_vs_loop_round_range'][0]:.1f}–{s['fused_vs_loop_round_range'][1]:.1f}×, vs (c) "
        f"{s['fused_vs_sklearn_round_range'][0]:.1f}–{s['fused_vs_sklearn_round_range'][1]:.1f}×.",
        f"- {'Targets' if t['applies'] else 'Targets (quick run: a smoke test, no evidence either way)'}"
        f": fused ≥ {t['limits']['fused_vs_loop_min']:.0f}× (b): "
        f"{'met' if t['fused_vs_loop_met'] else 'missed'}; ≥ {t['limits']['fused_vs_sklearn_min']:.0f}× (c): "
        f"{'met' if t['fused_vs_sklearn_met'] else 'missed'}.",
        f"- Achieved {fl['achieved_flops_per_s'] / 1e9:.2f} GFLOP/s "
        f"({fl['per_run'] / 1e9:.2f} GFLOP per run) vs measured {fl['matmul']['size']}² matmul "
        f"{fl['matmul']['peak_flops_per_s'] / 1e9:.1f} GFLOP/s, the best of one device / all devices "
        f"({100 * fl['fraction_of_matmul_peak']:.1f} %).",
        "- Per phase (fused): "
        + ", ".join(
            f"{p} {fl['achieved_by_phase_flops_per_s'][p] / 1e9:.1f} GFLOP/s" for p in f["phase_wall_s"]
        )
        + f"; (b) reaches {fl['loop_achieved_flops_per_s'] / 1e9:.1f} GFLOP/s on one device.",
        f"- Cores really used (process CPU s / wall s): (a) {f['steady_cpu_per_wall']:.2f}, "
        f"(b) {lp['cpu_per_wall']:.2f}, (c) {sk['cpu_per_wall']:.2f}. CPU s per run: (a) "
        f"{f['cpu_s_per_run']:.3f}, (b) {lp['cpu_s_per_run']:.3f}, (c) {sk['cpu_s_per_run']:.3f} "
        f"(fused uses {s['cpu_fused_vs_loop']:.1f}× less CPU than (b), {s['cpu_fused_vs_sklearn']:.1f}× "
        f"less than (c)); cold compile {f['compile_cold_cache_cpu_s']:.1f} CPU s, warm "
        f"{f['compile_warm_cache_cpu_s']:.1f} CPU s.",
        f"- Load average before / after: {load['before'][0]:.2f} / {load['after'][0]:.2f} "
        f"(1 min) on {record['host']['cpu_count']} cores; other jobs may have shared the machine.",
    ]
    return "\n".join(lines) + "\n"


def write_outputs(record: dict, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "bench_train.json"), "w") as fh:
        json.dump(record, fh, indent=2)
        fh.write("\n")
    with open(os.path.join(out, "bench_train.md"), "w") as fh:
        fh.write(markdown(record))


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, writes `<out>/bench_train.json` and `.md`, returns the record."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    load_before = os.getloadavg()
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="bench_train_jax_cache_")
    cache_was_empty = not os.path.isdir(cache_dir) or not os.listdir(cache_dir)
    runtime.enable_compilation_cache(cache_dir)
    config = load_experiment(args.experiment, quick=args.quick)
    data = load_dataset(config.data)
    masks = evaluate.cv_folds(data.y, config.n_folds, config.n_repeats, config.seed)
    t0 = time.perf_counter()
    fused, loop, sk, rounds = bench_trainers(config, data.x, data.y, masks, args)
    flops = fused_flops(config, data.x, data.y, masks)
    peak = matmul_flops(args.matmul_size)
    record = {
        "benchmark": "bench_train",
        "command": " ".join(["python scripts/bench_train.py", *argv]),
        "quick": args.quick,
        "git_commit": runtime.git_commit(),
        "versions": runtime.library_versions(),
        "device": runtime.device_description(),
        "host": {"cpu_count": os.cpu_count(), "machine": platform.machine(), "platform": platform.platform()},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cache_was_empty": cache_was_empty,
        "config": config.to_dict(),
        "data": data.source,
        "fused": fused,
        "loop": loop,
        "sklearn": sk,
        "rounds": rounds,
        **summarize(args, config, fused, loop, sk, rounds, flops, peak),
        "benchmark_wall_s": time.perf_counter() - t0,
        "load_average": {"before": list(load_before), "after": list(os.getloadavg()), "note": LOAD_NOTE},
    }
    write_outputs(record, args.out)
    if args.cache_dir is None:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return record


if __name__ == "__main__":
    rec = main()
    print(markdown(rec))
