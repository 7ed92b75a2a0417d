"""Figure 5: energy against the number of tasks (10, 20, ..., 100), for two kinds of task:

- prediction: one prediction request for one case, two ways: one HTTP request to the real
  `gan-jax serve` server on loopback ("prediction (HTTP)"), and in process (a jitted predict of
  one run's model on one row, result fetched to the host) ("prediction").
- training: one training run of the paper pipeline (scaler, autoencoder, semi-supervised GAN,
  experiments/paper.py). n tasks = `table.train_runs` with n runs *batched* (vmapped), which is
  how the pipeline trains its 100 CV runs; sequential runs would measure a pipeline nobody runs.

Every window is measured by `benchmarks.energy.EnergyMeter` (NVML, RAPL, or a labelled CPU-time
estimate); the first call for each task count (compilation) is measured but kept out of the fit.
Joules per task is the slope of a least-squares line through all windows.

Run:    python -m benchmarks.energy_bench            # full: paper config, ~6 min on 2 CPU cores
        python -m benchmarks.energy_bench --quick    # smoke run (tiny config)
Writes: results/energy.json, results/figure5_energy.png and results/energy.md (the Figure 5
        section that `gan-jax reproduce` puts into results/README.md)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import energy, harness
from gan_jax import runtime
from gan_jax.config import load_experiment
from gan_jax.data import load_dataset
from gan_jax.evaluation import evaluate
from gan_jax.studies import figures

DEFAULT_TASKS = tuple(range(10, 101, 10))
QUICK_TASKS = (1, 2, 3, 4)
LOAD_CAVEAT = (
    "Other jobs may have shared this machine during the run (see loadavg per window). The "
    "CPU-time estimate counts only this process and its children, so other load changes it "
    "little (through contention); RAPL/NVML count the whole socket/GPU, so other load adds to them."
)


@dataclasses.dataclass
class TaskSuite:
    """A kind of task: `prepare(n)` runs untimed set-up, `run(n)` does n tasks (measured and
    blocking until the results are on the host), `close()` frees what `prepare` made."""

    kind: str
    unit: str
    how: str
    prepare: Callable[[int], None]
    run: Callable[[int], None]
    close: Callable[[], None] = lambda: None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", default="paper", help="experiment name or .py file")
    p.add_argument("--quick", action="store_true", help="tiny config for smoke runs and tests")
    p.add_argument(
        "--tasks",
        help="comma-separated task counts (default 10,20,...,100; "
        "with --quick 1,2,3,4: the quick config has 4 CV runs)",
    )
    p.add_argument("--train-repeats", type=int, default=3, help="windows per task count")
    p.add_argument("--predict-repeats", type=int, default=30, help="windows per task count")
    p.add_argument("--only", choices=("prediction", "training"), help="run one kind of task")
    p.add_argument(
        "--predict",
        default="http,inprocess",
        help="prediction tasks: http (requests to gan-jax serve), inprocess, or both",
    )
    p.add_argument("--bundle", help="bundle for the server (default: train and export run 0)")
    p.add_argument("--backend", default="auto", help="auto, zeus, nvml, rapl or estimate")
    p.add_argument("--out", default="results", help="folder for energy.json and the figure")
    args = p.parse_args(argv)
    default = QUICK_TASKS if args.quick else DEFAULT_TASKS
    args.tasks = [int(t) for t in args.tasks.split(",")] if args.tasks else list(default)
    args.predict = [k for k in args.predict.split(",") if k]
    if not set(args.predict) <= {"http", "inprocess"}:
        p.error(f"--predict takes http and/or inprocess, got {args.predict}")
    if min(args.tasks) < 1 or args.train_repeats < 1 or args.predict_repeats < 1:
        p.error("task counts and repeats must be >= 1")
    return args


# --- task suites ----------------------------------------------------------------------------


def training_suite(config, data, masks: np.ndarray) -> tuple[TaskSuite, dict]:
    """n tasks = n CV runs (repeat r // folds, fold r % folds) trained in one batched call.
    The returned dict receives the last trained state, which the prediction suite reuses."""
    import jax

    from gan_jax.training import table

    trained: dict[str, Any] = {}
    if len(masks) < 1:
        raise ValueError("the config has no CV runs")

    def run(n: int) -> None:
        if n > len(masks):
            raise ValueError(f"{n} training tasks asked, but the config has {len(masks)} CV runs")
        runs = table.make_runs(config, data.y, masks[:n])
        result = table.train_runs(config, data.x, data.y, runs)
        trained["state"] = jax.block_until_ready(result.state)

    how = (
        "one (repeat, fold) run of the config's CV; n runs train batched in one fused, vmapped "
        "table.train_runs call, as the pipeline trains its 100 runs"
    )
    # The first call per n compiles; running it once in prepare keeps compilation out of the fit.
    return TaskSuite("training", "training run", how, prepare=run, run=run), trained


def inprocess_prediction_suite(config, data, state) -> TaskSuite:
    """One task = predict one case (one row of raw features) with one run's model. The params
    are closed over, so they are baked into the program as the server's bundle does; a call
    then moves only the case, and the HTTP variant differs from this one by HTTP alone."""
    import jax
    import jax.numpy as jnp

    from gan_jax.training import table

    model = jax.device_put(jax.tree.map(lambda a: a[0], table.model_params(state)))  # run 0's model
    predict = jax.jit(lambda x: table.predict_proba(config, model, x))
    rows = np.asarray(data.x, np.float32)

    def run(n: int) -> None:
        for i in range(n):
            case = rows[i % len(rows)][None, :]  # [1, 30]
            float(predict(jnp.asarray(case))[0])  # to the host, as a server would

    how = (
        "in process: jitted table.predict_proba of run 0's model (params baked in) on one "
        "row, the probability fetched to the host; one call per task"
    )
    return TaskSuite("prediction", "prediction", how, prepare=run, run=run)


def http_prediction_suite(bundle_uri: str, data, log_path: str) -> TaskSuite:
    """One task = one HTTP request (POST /predict, one case, bearer token, keep-alive
    connection) to the real `gan-jax serve BUNDLE` server, started here on loopback. The
    server is a child process, so the estimate counts its CPU time too."""
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "GAN_JAX_API_TOKEN_FILE"}
    env["GAN_JAX_API_TOKEN"] = token
    cmd = [
        sys.executable,
        "-m",
        "gan_jax.cli",
        "serve",
        bundle_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = open(log_path, "w")  # noqa: SIM115 - closed with the server
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)

    def close() -> None:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    try:
        _wait_ready(port, server, log_path)
    except BaseException:
        close()
        raise
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    bodies = [json.dumps({"features": row.tolist()}) for row in np.asarray(data.x, float)]

    def run(n: int) -> None:
        for i in range(n):
            conn.request("POST", "/predict", bodies[i % len(bodies)], headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(f"POST /predict answered {response.status}: {payload[:200]!r}")

    how = (
        "over HTTP: one POST /predict with one case (JSON, bearer token, keep-alive) to "
        "`gan-jax serve BUNDLE` on loopback; client and server CPU both counted"
    )
    return TaskSuite(
        "prediction (HTTP)",
        "request",
        how,
        prepare=run,
        run=run,
        close=lambda: (conn.close(), close()),
        info={"bundle": bundle_uri},
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, server: subprocess.Popen, log_path: str, timeout_s: float = 300) -> None:
    """Waits for GET /ping = 200 (the server answers it once the model is compiled and warm)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gan-jax serve exited with {server.returncode}:\n{_tail(log_path)}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                conn.close()
                return
        time.sleep(0.5)
    raise TimeoutError(f"gan-jax serve was not ready after {timeout_s:.0f} s:\n{_tail(log_path)}")


def _tail(path: str, n: int = 20) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])


def export_bundle(config, out_dir: str) -> str:
    """Trains run 0 of the config's CV (held-out fold) and writes it as a served bundle."""
    from gan_jax.artifacts import bundle, make_bundle

    uri = os.path.join(out_dir, "bundle")
    bundle.export(make_bundle.train_bundle(config, fold=0), uri, overwrite=True)
    return uri


# --- measurement ----------------------------------------------------------------------------


def measure_suite(meter, suite: TaskSuite, tasks: list[int], repeats: int) -> dict[str, Any]:
    """Measures `repeats` windows of `suite.run(n)` per task count; the first, compiling call
    per n is measured separately. Repeats are interleaved over n so slow drift (other load,
    temperature) spreads over all task counts instead of biasing one."""
    first_calls = [dict(_window(meter, suite.prepare, n), n_tasks=n) for n in tasks]
    points = []
    for repeat in range(repeats):
        for n in tasks:
            points.append(dict(_window(meter, suite.run, n), n_tasks=n, repeat=repeat))
    suite.close()
    return {
        "unit": suite.unit,
        "how": suite.how,
        **suite.info,
        "repeats": repeats,
        "fit": fit_line(points),
        "points": points,
        "first_calls": first_calls,
    }


def _window(meter, fn: Callable[[int], None], n: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    with meter.window() as w:
        fn(n)
    m = w.result
    return {
        "joules": m.joules,
        "seconds": m.seconds,
        "aligned": m.detail.get("aligned"),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        **({"warning": m.detail["warning"]} if "warning" in m.detail else {}),
    }


def fit_line(points: list[dict]) -> dict[str, float]:
    """Least-squares energy = intercept + slope × n over all windows; slope = J per task."""
    n = np.array([p["n_tasks"] for p in points], float)
    joules = np.array([p["joules"] for p in points], float)
    if len(set(n)) < 2:
        per_task = float(np.mean(joules / n))
        return {"joules_per_task": per_task, "intercept_joules": 0.0, "r2": float("nan")}
    slope, intercept = np.polyfit(n, joules, 1)
    residual = joules - (intercept + slope * n)
    total = np.sum((joules - joules.mean()) ** 2)
    r2 = 1 - np.sum(residual**2) / total if total > 0 else float("nan")
    return {
        "joules_per_task": float(slope),
        "intercept_joules": float(intercept),
        "r2": float(r2),
        "mean_joules_per_task": float(np.mean(joules / n)),
    }


# --- driver ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark and writes `<out>/energy.json` and `<out>/figure5_energy.png`;
    returns the record."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    rec = harness.record(argv, module="benchmarks.energy_bench")
    meter = energy.EnergyMeter(args.backend)
    print(f"energy source: {meter.source} ({'ESTIMATE' if meter.is_estimate else 'measured'})")
    config = load_experiment(args.experiment, quick=args.quick)
    data = load_dataset(config.data.uri)
    masks = evaluate.cv_folds(data.y, config.cv.n_folds, config.cv.n_repeats, config.cv.seed)

    tasks: dict[str, Any] = {}
    train_suite, trained = training_suite(config, data, masks)
    if args.only != "prediction":
        tasks["training"] = measure_suite(meter, train_suite, args.tasks, args.train_repeats)
        _print_fit("training", tasks["training"])
    if args.only != "training" and "inprocess" in args.predict:
        if "state" not in trained:  # a model to predict with: train the first run(s)
            train_suite.run(1)
        suite = inprocess_prediction_suite(config, data, trained["state"])
        tasks["prediction"] = measure_suite(meter, suite, args.tasks, args.predict_repeats)
        _print_fit("prediction", tasks["prediction"])
    if args.only != "training" and "http" in args.predict:
        with tempfile.TemporaryDirectory() as tmp:
            uri = args.bundle or export_bundle(config, tmp)
            suite = http_prediction_suite(uri, data, os.path.join(tmp, "serve.log"))
            tasks["prediction (HTTP)"] = measure_suite(meter, suite, args.tasks, args.predict_repeats)
        _print_fit("prediction (HTTP)", tasks["prediction (HTTP)"])

    rec.update(
        {
            "figure": "Figure 5: energy vs number of tasks",
            "energy": meter.describe(),
            "label": _label(meter),
            "experiment": config.name,
            "quick": args.quick,
            "config": config.to_dict(),
            "seed": config.cv.seed,
            "machine": _machine(),
            "tasks": tasks,
        }
    )
    record = harness.finish(rec, [p["loadavg_after"][0] for t in tasks.values() for p in t["points"]])
    record["load_average"]["caveat"] = LOAD_CAVEAT
    harness.write(args.out, "energy", record, markdown(record))
    figures.figure5_energy(tasks, record["label"], os.path.join(args.out, "figure5_energy.png"))
    print(f"wrote {args.out}/energy.json, energy.md and figure5_energy.png")
    return record


def markdown(record: dict[str, Any]) -> str:
    """The Figure 5 section of results/README.md, made from the record only."""
    e = record["energy"]
    lines = [
        "## Figure 5: energy vs number of tasks",
        "",
        "The paper's Figure 5 plots energy against 10-100 tasks without saying how it was measured. "
        f"Ours (`figure5_energy.png`) is **{record['label']}**"
        + (" - an estimate, not a measurement." if e["is_estimate"] else "."),
        "",
        f"- How: {e['assumption']}",
        *[f"- Skipped: {s}" for s in (e["skipped"] if not e["is_estimate"] else [])],
        "",
        "The first call for each task count (compilation) is measured but kept out of the fit "
        "(`first_calls` in energy.json).",
        "",
        "| task | J per task (slope) | intercept (J) | r² | windows | what one task is |",
        "|---|---|---|---|---|---|",
    ]
    for kind, t in record["tasks"].items():
        f = t["fit"]
        lines.append(
            f"| {kind} | {f['joules_per_task']:.4g} | {f['intercept_joules']:.3g} | "
            f"{f['r2']:.3f} | {len(t['points'])} | {t['how']} |"
        )
    load = record["load_average"]
    lines += [
        "",
        f"Machine: {record['machine']['cpu']}, {record['machine']['cpus']} CPUs; load average "
        f"{load['before'][0]:.1f} at the start, {load['after'][0]:.1f} at the end. " + load["caveat"],
        "",
        f"Regenerate: `{record['command']}` (writes energy.json, energy.md, figure5_energy.png).",
        "",
        "![Figure 5](figure5_energy.png)",
    ]
    return "\n".join(lines) + "\n"


def _label(meter) -> str:
    if not meter.is_estimate:
        return f"measured ({meter.source})"
    return f"ESTIMATE: CPU time x {meter.backend.watts_per_thread:g} W/thread"


def _print_fit(kind: str, result: dict[str, Any]) -> None:
    fit = result["fit"]
    print(
        f"{kind}: {fit['joules_per_task']:.4g} J per {result['unit']} "
        f"(intercept {fit['intercept_joules']:.3g} J, r2 {fit['r2']:.3f})"
    )


def _machine() -> dict[str, Any]:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "platform": platform.platform()}


if __name__ == "__main__":
    runtime.split_host_devices()  # before JAX starts: one XLA device per core
    runtime.enable_compilation_cache()
    main()
