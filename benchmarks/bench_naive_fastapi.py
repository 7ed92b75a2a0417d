"""Throughput of a naive FastAPI server beside `gan-jax serve`, same model, same load.

The naive server is what one writes first: a pydantic request model and a synchronous handler
(FastAPI runs it in its thread pool) that calls the bundle's jitted predict for each case, under
uvicorn with one worker. `gan-jax serve` loads the same bundle. Each is driven in turn by the
load test's client (benchmarks/load_test.py: --connections closed-loop keep-alive connections,
single-case `POST /predict` with the same body) for --duration seconds after --warmup. Writes
results/naive_fastapi.json with both runs and the load average (the machine may be shared).

    python -m benchmarks.bench_naive_fastapi --bundle runs/bundle             # 30 s each
    python -m benchmarks.bench_naive_fastapi --bundle runs/bundle --duration 5    # smoke
"""

# No `from __future__ import annotations`: FastAPI must see the request model itself, not the
# string "Case", or it would take `case` for a query parameter.
import argparse
import asyncio
import os
import platform
import sys

import numpy as np

from benchmarks import harness, load_test

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", required=True, help="bundle both servers load")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds per server")
    p.add_argument("--warmup", type=float, default=3.0, help="unrecorded seconds of load first")
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    p.add_argument("--serve-naive", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the child
    return p.parse_args(argv)


def naive_app(bundle_uri: str):
    """The naive server: pydantic validation, a sync handler, one jitted call per request."""
    from fastapi import FastAPI
    from pydantic import BaseModel

    from gan_jax.artifacts import bundle

    model = bundle.load(bundle_uri)
    names = model.feature_names

    class Case(BaseModel):
        features: dict[str, float]

    app = FastAPI()

    @app.post("/predict")
    def predict(case: Case):
        x = np.asarray([[case.features[n] for n in names]], np.float32)
        p = float(model.predict_proba(x)[0])
        return {"label": model.label_names[int(p >= 0.5)], "malignant_probability": p}

    @app.get("/v2/health/ready")  # what the load test polls before it starts
    def ready():
        return {}

    model.predict_proba(np.zeros((1, len(names)), np.float32))  # compile before serving
    return app


def measure(cmd: list[str], port: int, args) -> dict:
    proc = load_test.start_process(cmd, port, {**os.environ, "GAN_JAX_API_TOKEN": "bench"})
    try:
        request = load_test.http_request("127.0.0.1", port, "/predict", load_test.sample_body(), "bench")
        load_before = os.getloadavg()[0]
        recorder, lost, samples = asyncio.run(
            load_test.drive(
                "127.0.0.1",
                port,
                request,
                args.connections,
                args.warmup,
                args.duration,
                args.duration,
                proc.pid,
            )
        )
        result = load_test.summarize(recorder, lost, samples)
        result["load_average_before_after"] = [load_before, os.getloadavg()[0]]
    finally:
        load_test.stop_server(proc)
    if result["failed"] or result["connections_lost"]:  # a throughput of errors measures nothing
        raise RuntimeError(
            f"{' '.join(cmd[:4])}: {result['failed']} failed requests, "
            f"{result['connections_lost']} connections lost"
        )
    result.pop("windows")  # one window: the totals say it all
    return result


def markdown(record: dict) -> str:
    """Each server's throughput and latency, with the load average that qualifies them."""
    lines = [
        "| server | requests/s | p50 ms | p99 ms | failed | load average before, after |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in record["runs"].items():
        before, after = r["load_average_before_after"]
        lines.append(
            f"| {name} | {r['req_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['failed']} | "
            f"{before:.1f}, {after:.1f} |"
        )
    cfg = record["config"]
    lines += [
        "",
        f"{cfg['connections']} closed-loop connections, {cfg['duration_s']:.0f} s per server after "
        f"{cfg['warmup_s']:.0f} s of warm-up; client and servers share "
        f"{record['machine']['cpu_count']} cores.",
        f"- Regenerate: `{record['command']}` (commit `{record['git_commit'][:12]}`).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.serve_naive:
        import uvicorn

        uvicorn.run(naive_app(args.bundle), host="127.0.0.1", port=args.serve_naive, log_level="warning")
        return {}
    rec = harness.record(argv, module="benchmarks.bench_naive_fastapi")
    servers = {
        "naive FastAPI (sync handler, pydantic)": [
            sys.executable,
            "-m",
            "benchmarks.bench_naive_fastapi",
            "--bundle",
            args.bundle,
            "--serve-naive",
        ],
        "gan-jax serve": [
            sys.executable,
            "-m",
            "gan_jax.cli",
            "serve",
            "--host",
            "127.0.0.1",
            args.bundle,
            "--port",
        ],
    }
    runs = {}
    for name, cmd in servers.items():
        port = load_test.free_port()
        runs[name] = measure([*cmd, str(port)], port, args)
        r = runs[name]
        print(
            f"{name}: {r['req_per_s']:,.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
            f"{r['failed']} failed, load average {r['load_average_before_after']}"
        )
    record = harness.finish(rec, [load for r in runs.values() for load in r["load_average_before_after"]])
    record.update(
        config={
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "request": "single case, POST /predict {'features': {name: value}}",
        },
        runs=runs,
        machine={
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "note": "client and server share the CPU cores; the 1-min load average of each run "
            "says whether other jobs shared them too",
        },
    )
    path, _ = harness.write(args.out, "naive_fastapi", record, markdown(record))
    print(f"wrote {path}")
    return record


if __name__ == "__main__":
    main()
