"""Training-speed benchmark of an experiment's cross-validation runs (default: the paper config
on the bundled WDBC, 10 × 10-fold = 100 runs), through
gan_jax.training.table's and .engine's public functions only:

(a) fused: `table.make_runs` + `table.train_runs` on all runs, as `gan-jax train` calls them
    (one jitted `lax.scan` per chunk, vmapped over runs, runs sharded over one CPU device per core);
(b) loop: the same model one run at a time: `jit(table.ae_step)` / `jit(table.gan_step)` called
    once per step from a Python for-loop (flax-example style);
(c) scikit-learn: `MLPClassifier` of the discriminator's hidden sizes on the same folds, fitted
    by one worker process per core (joblib, n_jobs = cores), so (a) and (c) use the same cores.

It measures training only. The whole reproduction (`gan-jax reproduce`: data, training,
evaluation, figures) is timed by that command (`wall_seconds` in study.json).

(a), (b) and (c) run interleaved in rounds, so load from other jobs on the shared machine falls
on all three alike. Equal-resource comparisons: CPU-seconds per run (all three) and, at equal
cores, runs per second of (a) vs (c). Compile time is not "first call − steady call" (noise can
make that negative): it is the union of the time spans JAX itself reports for tracing, lowering
and XLA compilation (or persistent-cache reads) during a call (`jax.monitoring`), so it is ≥ 0.

Run:    python -m benchmarks.bench_train            # full: a few minutes on 2 CPU cores
        python -m benchmarks.bench_train --quick    # smoke run (tiny config)
Writes: <out>/bench_train.json and <out>/bench_train.md (default out: results)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import sys
import tempfile
import time

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from gan_jax import runtime
from gan_jax.config import Config, load_experiment
from gan_jax.data import load_dataset
from gan_jax.evaluation import evaluate
from gan_jax.models import preprocess
from gan_jax.training import engine, table

# The events JAX records (with start and end) for each compilation step of a jitted call.
COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",  # XLA compile, or a persistent-cache read
)
TARGETS = {"training_cold_s_max": 60.0, "cpu_fused_vs_loop_min": 3.0, "equal_cores_fused_vs_sklearn_min": 5.0}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="paper", help="experiment name or .py file")
    p.add_argument("--quick", action="store_true", help="tiny config (smoke runs, tests)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds of (a), (b), (c)")
    p.add_argument("--loop-runs", type=int, default=2, help="runs of (b) per round")
    p.add_argument("--sklearn-runs", type=int, default=8, help="fits of (c) per round (all cores)")
    p.add_argument(
        "--cache-dir",
        help="persistent compilation cache (default: a new empty folder, so the first call compiles cold)",
    )
    p.add_argument("--out", default="results", help="folder for bench_train.json/.md")
    args = p.parse_args(argv)
    if min(args.repeats, args.loop_runs, args.sklearn_runs) < 1:
        p.error("--repeats, --loop-runs and --sklearn-runs must be >= 1")
    return args


@contextlib.contextmanager
def compile_clock():
    """Yields a list that, on exit, holds one float: seconds JAX spent compiling inside the block
    (union of its trace / lower / compile spans, so nested or parallel spans count once)."""
    spans: list[tuple[float, float]] = []
    listener = lambda event, start, end, **_: spans.append((start, end)) if event in COMPILE_EVENTS else None
    jax.monitoring.register_event_time_span_listener(listener)
    out: list[float] = []
    try:
        yield out
    finally:
        jax.monitoring.unregister_event_time_span_listener(listener)
        total, reach = 0.0, -np.inf
        for start, end in sorted(spans):
            total += max(0.0, end - max(start, reach))
            reach = max(reach, end)
        out.append(total)


def timed(fn) -> dict:
    """Wall s, this process's CPU s (all threads) and compile s of fn(), blocked until ready.
    CPU / wall is how many cores the call really got; other jobs can lower it."""
    t0, c0 = time.perf_counter(), time.process_time()
    with compile_clock() as compile_s:
        result = jax.block_until_ready(fn())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"wall": wall, "cpu": cpu, "compile": compile_s[0], "result": result}


# --- (a) the fused trainer, as `gan-jax train` runs it ---------------------------------------


def fused_call(config: Config, x, y, masks: np.ndarray) -> dict:
    def fit():
        runs = table.make_runs(config, y, masks)
        return table.train_runs(config, x, y, runs).state.disc.params

    return timed(fit)


# --- (b) one run at a time, a jitted step per Python iteration -------------------------------


def loop_trainer(config: Config, x, y, masks: np.ndarray):
    """Returns train_one(r) -> run r's discriminator params, trained by (b). Same model, keys and
    hyperparameters as (a): the step key is fold_in(second half of split(run key), step) as in
    `engine.train_chunk`, so (b)'s params can be checked against (a)'s."""
    structure = config.structure()
    nets = table.build_networks(structure, x.shape[1])
    runs = table.make_runs(config, y, masks)
    xd, yd = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)

    def step(phase, state, step_key, hp: table.HParams, inputs, rows):
        key = jax.random.fold_in(step_key, state.step)
        draw_train, draw_lab = _sampler(*rows[:2]), _sampler(*rows[2:])
        if phase == "ae":
            state, metrics = table.ae_step(nets, structure, state, key, hp, inputs, draw_train)
        else:
            state, metrics = table.gan_step(nets, structure, state, key, hp, inputs, yd, draw_lab, draw_train)
        return state._replace(step=state.step + 1), metrics

    # Jitted once, outside every loop, state donated (big_vision / flax style).
    steps = {p: jax.jit(functools.partial(step, p), donate_argnums=(0,)) for p in ("ae", "gan")}
    init = jax.jit(functools.partial(table.init_state, structure))
    # Once per run / phase, outside the step (a flax-style input pipeline): the rows each
    # sampler draws from, the scaled rows, then the frozen encoder's codes.
    rows_of = jax.jit(lambda run: (*_sorted_rows(run.train_mask), *_sorted_rows(run.labeled_mask)))
    features = {
        "ae": jax.jit(lambda state: preprocess.apply(state.fitted, xd)),
        "gan": jax.jit(lambda state: table.classifier_inputs(structure, table.model_params(state), xd)),
    }

    def run_inputs(r: int):
        run = jax.tree.map(lambda a: jnp.asarray(a[r]), runs)
        return run, jax.random.split(run.key)[1], rows_of(run)

    def train_one(r: int):
        run, step_key, rows = run_inputs(r)
        state = init((xd, yd), run)
        for phase, _, n_steps in engine.phase_schedule(table.schedule(config)):
            args = (step_key, run.hparams, features[phase](state), rows)
            metrics = []
            for _ in range(n_steps):
                state, m = steps[phase](state, *args)
                metrics.append(m)
            jax.device_get(metrics)  # host sync once per chunk, as (a) does
        return state.disc.params

    def step_flops() -> dict[str, float]:
        """XLA's cost analysis of (b)'s compiled step, per phase: FLOPs of one step of one run."""
        run, step_key, rows = run_inputs(0)
        state, out = init((xd, yd), run), {}
        for phase, fn in steps.items():
            cost = (
                fn.lower(state, step_key, run.hparams, features[phase](state), rows).compile().cost_analysis()
            )
            cost = cost[0] if isinstance(cost, list) else cost  # older JAX: one dict per module
            out[phase] = float(cost["flops"])
        return out

    train_one.step_flops = step_flops
    return train_one


def _sorted_rows(mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.argsort(~mask, stable=True), jnp.sum(mask)  # masked rows first, their count


def _sampler(rows: jax.Array, n: jax.Array):
    """Draws like `engine.row_sampler(mask)` from its index sorted once per run: row_sampler
    re-sorts on every call, ~40 µs CPU per step in (b) that (a) pays once per chunk. The check
    of (b)'s params against (a)'s shows the draws are the same."""
    return lambda key, size: rows[jax.random.randint(key, (size,), 0, n)]


# --- (c) scikit-learn MLPClassifier, one worker process per core -------------------------------


def sklearn_epochs(config: Config, n_train: int) -> int:
    """Epochs-equivalent of the classifier's training: its labelled samples (GAN steps × batch)
    over the training fold. The AE and generator work is left out, which favours sklearn."""
    return max(1, round(config.schedule.gan_steps * config.schedule.batch_size / n_train))


def sklearn_fitter(config: Config, x, y, masks: np.ndarray, n_jobs: int):
    """Returns fit_batch(run ids) -> (batch wall s, [per-fit {wall, cpu, epochs, epochs_run}]).
    Each fit runs in a loky worker (joblib limits each to cores // n_jobs BLAS threads)."""
    from joblib import Parallel, delayed

    def fit(r: int) -> dict:  # a closure, so loky pickles it by value (the script is no module)
        import os
        import time
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        mask = masks[r]
        epochs = sklearn_epochs(config, int(mask.sum()))
        # n_iter_no_change > max_iter: no early stop, so every epoch runs.
        mlp = MLPClassifier(
            config.model.disc_hidden,
            batch_size=config.schedule.batch_size,
            learning_rate_init=config.schedule.d_lr,
            max_iter=epochs,
            tol=0.0,
            n_iter_no_change=epochs + 1,
            random_state=config.cv.seed + r,
        )
        scaler = MinMaxScaler() if config.data.scaler == "minmax" else StandardScaler()
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            Pipeline([("scale", scaler), ("mlp", mlp)]).fit(x[mask], y[mask])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return {
            "wall": wall,
            "cpu": cpu,
            "epochs": epochs,
            "epochs_run": int(mlp.n_iter_),
            "pid": os.getpid(),
        }

    parallel = Parallel(n_jobs=n_jobs, backend="loky")

    def fit_batch(run_ids: list[int]) -> tuple[float, list[dict]]:
        t0 = time.perf_counter()
        fits = parallel(delayed(fit)(r) for r in run_ids)
        return time.perf_counter() - t0, fits

    fit_batch.n_jobs = parallel.n_jobs  # what the record reports is what joblib was given
    return fit_batch


# --- the three, interleaved --------------------------------------------------------------------


def clear_in_memory_caches() -> None:
    """Drops compiled programs held in memory; the persistent compilation cache stays."""
    jax.clear_caches()
    engine.fused_chunk_fn.cache_clear()


def run_benchmark(config: Config, x, y, masks: np.ndarray, args) -> dict:
    """Cold calls first; then `repeats` rounds of one fused call, `loop_runs` runs of (b) and a
    batch of `sklearn_runs` fits of (c); last, a fused call after `jax.clear_caches()` (only the
    persistent cache warm), which is what a second `gan-jax train` in a new process pays."""
    n_runs, cores = len(masks), len(os.sched_getaffinity(0))
    loop, fit_batch = loop_trainer(config, x, y, masks), sklearn_fitter(config, x, y, masks, cores)
    clear_in_memory_caches()  # a first call even when this process trained before (tests)
    cold = fused_call(config, x, y, masks)
    loop_first = timed(lambda: loop(0))
    _, warmup = fit_batch(list(range(cores)))  # starts the workers, imports sklearn; not timed
    rounds = []
    for i in range(args.repeats):
        fused = fused_call(config, x, y, masks)
        loop_ids = [(1 + i * args.loop_runs + j) % n_runs for j in range(args.loop_runs)]
        loops = [dict(timed(lambda r=r: loop(r)), run=r) for r in loop_ids]
        sk_ids = [(i * args.sklearn_runs + j) % n_runs for j in range(args.sklearn_runs)]
        sk_wall, sk_fits = fit_batch(sk_ids)
        rounds.append(
            {
                "fused": fused,
                "loop": loops,
                "sklearn_wall": sk_wall,
                "sklearn": sk_fits,
                "load_1min": os.getloadavg()[0],
            }
        )
    clear_in_memory_caches()
    warm = fused_call(config, x, y, masks)
    pids = {f["pid"] for f in warmup} | {f["pid"] for r in rounds for f in r["sklearn"]}
    return {
        "cold": cold,
        "warm": warm,
        "loop_first": loop_first,
        "rounds": rounds,
        "cores": cores,
        "step_flops": loop.step_flops(),
        "sklearn_n_jobs": fit_batch.n_jobs,
        "sklearn_pids": pids,
    }


# --- the record: every number derived from the measurements ----------------------------------


def _rates(calls: list[dict], runs_per_call: int, wall_s: float | None = None) -> dict:
    """Per-run cost and throughput over timed calls (ratios of sums): CPU-seconds per run, runs
    per wall second, and cores busy = CPU s / wall s (what the call got from a shared machine)."""
    cpu, runs = sum(c["cpu"] for c in calls), runs_per_call * len(calls)
    wall = sum(c["wall"] for c in calls) if wall_s is None else wall_s
    return {
        "cpu_s_per_run": cpu / runs,
        "runs_per_s": runs / wall,
        "wall_s_per_run": wall / runs,
        "cores_busy": cpu / wall,
    }


def _compile_or_none(compile_s: float) -> float | None:
    # No span at all means JAX recorded none (e.g. renamed events): say "not measured", never 0.
    return compile_s if compile_s > 0 else None


def summarize(config: Config, raw: dict, n_runs: int) -> dict:
    """The three trainers' records from the raw timings (no arrays, JSON-ready)."""
    rounds = raw["rounds"]
    fused = [r["fused"] for r in rounds]
    loops = [c for r in rounds for c in r["loop"]]
    fits = [f for r in rounds for f in r["sklearn"]]
    flops_per_run = sum(
        n * raw["step_flops"][phase] for phase, _, n in engine.phase_schedule(table.schedule(config))
    )
    a = {
        "runs": n_runs,
        "cores": raw["cores"],
        "devices": len(jax.devices()),
        **_rates(fused, n_runs),
        "training_wall_s": float(np.mean([c["wall"] for c in fused])),  # already compiled
        "training_wall_all_s": [c["wall"] for c in fused],
        "first_call_s": raw["cold"]["wall"],
        "first_call_compile_s": _compile_or_none(raw["cold"]["compile"]),
        "after_clear_caches_s": raw["warm"]["wall"],
        "after_clear_caches_compile_s": _compile_or_none(raw["warm"]["compile"]),
        "compile_in_timed_calls_s": max(c["compile"] for c in fused),  # > 0: a recompilation
        "how": "table.make_runs + table.train_runs(config, x, y, runs) on all runs incl. init, "
        "blocked until ready; rates over the rounds' calls (already compiled); first_call_* is "
        "the process's first call (persistent cache as in cache_was_empty), after_clear_caches_* "
        "a call after jax.clear_caches() (persistent cache filled)",
    }
    b = {
        "runs_timed": len(loops),
        **_rates(loops, 1),
        "first_run_s": raw["loop_first"]["wall"],
        "compile_s": _compile_or_none(raw["loop_first"]["compile"]),
        "compile_in_timed_runs_s": max(c["compile"] for c in loops),
        "step_calls_per_run": config.total_steps,
        # (b) trains the same model as (a): only float rounding may differ.
        "max_abs_diff_disc_params_vs_fused": max(
            _max_abs_diff(c["result"], jax.tree.map(lambda v, r=c["run"]: v[r], fused[-1]["result"]))
            for c in loops
        ),
        "how": "one run at a time: jit(init), per phase jit(features), then jit(step, donate state) "
        "of table.ae_step / table.gan_step in a Python for-loop, rows drawn as by "
        "engine.row_sampler from an index sorted once per run; the first run (run 0) carries the "
        "compilation and is not in the rates",
    }
    c = {
        "fits_timed": len(fits),
        "workers": raw["sklearn_n_jobs"],
        "worker_processes_seen": len(raw["sklearn_pids"]),
        **_rates(fits, 1, wall_s=sum(r["sklearn_wall"] for r in rounds)),
        "wall_s_per_fit_in_worker": float(np.mean([f["wall"] for f in fits])),
        "epochs": sorted({f["epochs"] for f in fits}),
        "early_stopped": any(f["epochs_run"] < f["epochs"] for f in fits),
        "how": "Pipeline(fold-fitted scaler, MLPClassifier(disc_hidden, adam, batch_size, lr=d_lr)) "
        "on each run's training rows (30 scaled features), epochs = round(gan_steps * batch_size / "
        "n_train), no early stop; `workers` loky processes (joblib n_jobs) fit in parallel; "
        "wall = the batches' wall time; CPU-s measured in the workers",
    }
    for rec in (a, b):
        rec["achieved_flops_per_s"] = flops_per_run * rec["runs_per_s"]
    flops_how = (
        "XLA cost analysis (compiled.cost_analysis()['flops']) of (b)'s jitted step per phase "
        "x steps per run; (a) runs the same step vmapped; init and the once-per-chunk "
        "scaler/encoder pass are left out"
    )
    return {"fused": a, "loop": b, "sklearn": c, "flops_per_run": flops_per_run, "flops_how": flops_how}


def _max_abs_diff(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def comparisons(rec: dict, rounds: list[dict]) -> dict:
    """Speed ratios, each saying what it compares; > 1 means (a) is faster / cheaper."""
    a, b, c = rec["fused"], rec["loop"], rec["sklearn"]
    per_round = []
    for r in rounds:
        fused_runs_per_s = a["runs"] / r["fused"]["wall"]
        sk_runs_per_s = len(r["sklearn"]) / r["sklearn_wall"]
        per_round.append(
            {
                "fused_runs_per_s": fused_runs_per_s,
                "loop_runs_per_s": len(r["loop"]) / sum(x["wall"] for x in r["loop"]),
                "sklearn_runs_per_s": sk_runs_per_s,
                "equal_cores_fused_vs_sklearn": fused_runs_per_s / sk_runs_per_s,
                "load_1min_after": r["load_1min"],
            }
        )
    ratios = [r["equal_cores_fused_vs_sklearn"] for r in per_round]
    return {
        "cpu_s_per_run": {
            "fused_vs_loop": b["cpu_s_per_run"] / a["cpu_s_per_run"],
            "fused_vs_sklearn": c["cpu_s_per_run"] / a["cpu_s_per_run"],
            "is": "ratio of CPU-seconds per run (all threads of the process; sklearn: of its worker): "
            "compute cost, whatever the number of cores each used",
        },
        "equal_cores_runs_per_s": {
            "fused_vs_sklearn": a["runs_per_s"] / c["runs_per_s"],
            "round_range": [min(ratios), max(ratios)],
            "cores": a["cores"],
            "is": f"throughput ratio, both on the same {a['cores']} cores: (a) one process, runs "
            f"sharded over {a['devices']} XLA devices; (c) {c['workers']} worker processes",
        },
        "wall_fused_vs_loop_unequal_cores": {
            "ratio": b["wall_s_per_run"] / a["wall_s_per_run"],
            "is": "wall time per run; NOT equal resources: (a) keeps every core busy, (b) trains one "
            "run at a time (see cores_busy)",
        },
        "rounds": per_round,
    }


def markdown(rec: dict) -> str:
    """The Markdown summary; every number comes from `rec` (the JSON written beside it)."""
    a, b, c, cmp_ = rec["fused"], rec["loop"], rec["sklearn"], rec["comparisons"]
    cfg, load, tg = Config.from_dict(rec["config"]), rec["load_average"], rec["targets"]
    s = lambda v: "not measured (JAX recorded no compile events)" if v is None else f"{v:.2f} s"
    rows = [
        (
            f"(a) fused `train_runs`, {a['runs']} runs sharded over {a['devices']} CPU devices",
            a,
            s(a["first_call_compile_s"]),
        ),
        ("(b) jitted step in a Python loop, one run at a time", b, s(b["compile_s"])),
        (
            f"(c) scikit-learn MLPClassifier ({', '.join(map(str, c['epochs']))} epochs), "
            f"{c['workers']} worker processes",
            c,
            "–",
        ),
    ]
    eq, cpu = cmp_["equal_cores_runs_per_s"], cmp_["cpu_s_per_run"]
    cache = "empty" if rec["cache_was_empty"] else "already holding entries"
    ok = lambda key: "met" if tg[key] else "missed"
    lines = [
        f"Training speed of the {cfg.name} config (AE {cfg.schedule.ae_steps} + SGAN "
        f"{cfg.schedule.gan_steps} "
        f"steps per run), {a['cores']} CPU cores, `{rec['command']}`, commit {rec['git_commit'][:12]}.",
        "",
        "| trainer | CPU-s per run | runs/s | cores busy | compilation (first call) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {n} | {r['cpu_s_per_run']:.4f} | {r['runs_per_s']:.2f} | {r['cores_busy']:.2f} | {k} |"
            for n, r, k in rows
        ),
        "",
        f"- **CPU-seconds per run** (equal resources): (b) needs {cpu['fused_vs_loop']:.1f}× and (c) "
        f"{cpu['fused_vs_sklearn']:.1f}× the CPU-seconds of (a).",
        f"- **Runs per second at equal cores** ({eq['cores']} cores each, (c) as {c['workers']} "
        f"processes): (a) / (c) = {eq['fused_vs_sklearn']:.1f}× (rounds: "
        f"{eq['round_range'][0]:.1f}–{eq['round_range'][1]:.1f}×).",
        f"- Wall time per run, NOT at equal cores: (a) {a['wall_s_per_run']:.4f} s on {a['cores']} "
        f"cores, (b) {b['wall_s_per_run']:.4f} s one run at a time "
        f"({cmp_['wall_fused_vs_loop_unequal_cores']['ratio']:.1f}×).",
        f"- {a['runs']}-run training of the {cfg.name} config (`make_runs` + `train_runs`, incl. "
        f"init): first call of the process, incl. compilation, persistent cache {cache}: "
        f"{a['first_call_s']:.1f} s (compilation {s(a['first_call_compile_s'])}); after "
        f"`jax.clear_caches()`, filled persistent cache: {a['after_clear_caches_s']:.1f} s (compilation "
        f"and cache reads {s(a['after_clear_caches_compile_s'])}); compiled: {a['training_wall_s']:.1f} s. "
        "Training only: the whole `gan-jax reproduce` is timed by that command (`wall_seconds` in "
        "study.json).",
        f"- Cores busy = CPU-seconds / wall seconds: how many of the {a['cores']} cores each trainer "
        "really got while it ran.",
        "- (c) is a reference, not the same model: a supervised MLP of the discriminator's sizes on the "
        "30 scaled features for the classifier's epochs-equivalent, with no autoencoder and no "
        "generator, so it does less work per run than (a) and (b).",
        "- Compilation = time JAX reports (`jax.monitoring`) for tracing, lowering and XLA "
        "compilation or persistent-cache reads during the call.",
        f"- XLA cost analysis: {rec['flops_per_run'] / 1e9:.2f} GFLOP per run; achieved "
        f"{a['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s by (a), "
        f"{b['achieved_flops_per_s'] / 1e9:.1f} by (b).",
        f"- Machine load (1-min load average): {load['before'][0]:.2f} before, {load['after'][0]:.2f} after, "
        f"peak {load['max_1min']:.2f}, on {load['cores']} cores"
        + (
            ": other jobs competed for these cores, so these timings are pessimistic (wall time more "
            "than CPU-seconds)."
            if load["oversubscribed"]
            else "."
        ),
        "- Targets: "
        + (
            f"100-run cold training ≤ {tg['limits']['training_cold_s_max']:.0f} s "
            f"{ok('training_cold_met')}; CPU-s (b)/(a) ≥ {tg['limits']['cpu_fused_vs_loop_min']:.0f} "
            f"{ok('cpu_fused_vs_loop_met')}; equal-core runs/s (a)/(c) ≥ "
            f"{tg['limits']['equal_cores_fused_vs_sklearn_min']:.0f} "
            f"{ok('equal_cores_fused_vs_sklearn_met')}."
            if tg["applies"]
            else "not checked (not the 100-run full benchmark)."
        ),
    ]
    return "\n".join(lines) + "\n"


def targets(rec: dict, applies: bool) -> dict:
    cmp_ = rec["comparisons"]
    return {
        "applies": applies,
        "training_cold_s": rec["fused"]["first_call_s"],
        "training_cold_met": rec["fused"]["first_call_s"] <= TARGETS["training_cold_s_max"],
        "cpu_fused_vs_loop_met": cmp_["cpu_s_per_run"]["fused_vs_loop"] >= TARGETS["cpu_fused_vs_loop_min"],
        "equal_cores_fused_vs_sklearn_met": cmp_["equal_cores_runs_per_s"]["fused_vs_sklearn"]
        >= TARGETS["equal_cores_fused_vs_sklearn_min"],
        "limits": TARGETS,
    }


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark, writes `<out>/bench_train.json` and `.md`, returns the record."""
    # One XLA CPU device per core, so sharding the runs axis uses every core; before JAX starts.
    runtime.split_host_devices()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="bench_train_jax_cache_")
    cache_was_empty = not os.path.isdir(cache_dir) or not os.listdir(cache_dir)
    runtime.enable_compilation_cache(cache_dir)
    rec = harness.record(argv, module="benchmarks.bench_train")
    config = load_experiment(args.experiment, quick=args.quick)
    data = load_dataset(config.data.uri)
    masks = evaluate.cv_folds(data.y, config.cv.n_folds, config.cv.n_repeats, config.cv.seed)
    raw = run_benchmark(config, data.x, data.y, masks, args)
    rec.update(
        {
            "benchmark": "bench_train",
            "measures": "training only (table.make_runs + table.train_runs and the two alternatives); "
            "the whole reproduction's wall time is in study.json (`gan-jax reproduce`)",
            "quick": args.quick,
            "cache_was_empty": cache_was_empty,
            "config": config.to_dict(),
            "data": data.source,
            **summarize(config, raw, len(masks)),
        }
    )
    rec["comparisons"] = comparisons(rec, raw["rounds"])
    rec["targets"] = targets(rec, applies=not args.quick and len(masks) == 100 and cache_was_empty)
    rec = harness.finish(rec, [r["load_1min_after"] for r in rec["comparisons"]["rounds"]])
    harness.write(args.out, "bench_train", rec, markdown(rec))
    if args.cache_dir is None:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return rec


if __name__ == "__main__":
    print(markdown(main()))
