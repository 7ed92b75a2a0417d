"""Serving benchmark: one `gan-jax serve` process (HTTP + gRPC on one data plane), four ways in,
side by side at 1, 8 and 64 connections, in one run:

- native JSON:  POST /predict {"features": {name: value, ...}} (one WDBC case)
- v2 JSON:      POST /v2/models/gan_jax/infer, one FP32 tensor [1, 30] in JSON, JSON outputs
- v2 binary:    the same with the binary tensor data extension (raw tensor in, raw outputs back),
                as tritonclient.http sends it by default
- gRPC:         ModelInfer with raw_input_contents, as tritonclient.grpc sends it
- MLServer:     (when it can be installed) MLServer's scikit-learn runtime serving a logistic
                regression on the same case over v2 JSON, in a venv this script makes

For each cell: requests per second, latency p50/p99/max (closed loop: each connection sends its
next request when the last answer is complete), the server's CPU time per request and its
resident memory (from /proc), the load generator's own CPU time per request, and the load
average (the machine may be shared: read the numbers beside it).

The load generator is this process: raw asyncio protocols on uvloop for HTTP (pre-built request
bytes, answers parsed only for the status line and Content-Length: no HTTP library, no JSON)
and grpc.aio channels sending pre-serialized bytes for gRPC (no protobuf work). Its CPU per
request is measured and written beside the server's.

    python -m benchmarks.bench_serving --bundle runs/bundle            # results/bench_serving.*
    python -m benchmarks.bench_serving --duration 2 --connections 1 8 --no-mlserver  # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import harness, load_test

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "bench-token"
PROTOCOLS = ("native_json", "v2_json", "v2_binary", "grpc")
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", help="table bundle to serve (default: train a quick one)")
    p.add_argument("--connections", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per cell")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds driven before each cell")
    p.add_argument("--no-mlserver", dest="mlserver", action="store_false", help="skip MLServer")
    p.add_argument("--mlserver-venv", default=os.path.join(tempfile.gettempdir(), "gan_jax_bench_mlserver"))
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    return p.parse_args(argv)


# -- measuring ----------------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (and its reaped children) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class Cell:
    """Latencies of the answers completed inside the measured window, and both processes' CPU
    time and the load average at its two ends."""

    def __init__(self, warmup: float, duration: float, server_pid: int):
        now = time.perf_counter()
        self.t_start, self.t_end, self.server_pid = now + warmup, now + warmup + duration, server_pid
        self.latencies: list[float] = []
        self.failed = 0
        self.marks: list[tuple[float, float, float]] = []  # (server CPU, client CPU, load)

    def record(self, now: float, latency: float, ok: bool) -> None:
        if self.t_start <= now <= self.t_end:
            if ok:
                self.latencies.append(latency)
            else:
                self.failed += 1

    async def window(self) -> None:
        """Sleeps until the window opens, marks it, sleeps until it closes, marks it."""
        for t in (self.t_start, self.t_end):
            await asyncio.sleep(max(0.0, t - time.perf_counter()))
            self.marks.append((proc_cpu(self.server_pid), time.process_time(), os.getloadavg()[0]))

    def summary(self) -> dict:
        lat = np.asarray(self.latencies) * 1e3
        n, seconds = len(lat), self.t_end - self.t_start
        (server0, client0, load0), (server1, client1, load1) = self.marks
        per_request = lambda cpu: cpu / n * 1e6 if n else None  # noqa: E731
        return {
            "requests": n,
            "failed": self.failed,
            "req_per_s": n / seconds,
            "p50_ms": float(np.percentile(lat, 50)) if n else None,
            "p99_ms": float(np.percentile(lat, 99)) if n else None,
            "max_ms": float(lat.max()) if n else None,
            "server_cpu_us_per_req": per_request(server1 - server0),
            "client_cpu_us_per_req": per_request(client1 - client0),
            "server_rss_mb": load_test.rss_mb(self.server_pid),
            "load_average": [load0, load1],
        }


async def drive_http(port: int, request: bytes, connections: int, cell: Cell) -> None:
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(
            lambda: load_test.Client(request, lambda now, t, status: cell.record(now, t, status == 200)),
            "127.0.0.1",
            port,
        )
        clients.append(client)
    await cell.window()
    for c in clients:
        c.stopping = True
    await asyncio.wait([c.done for c in clients], timeout=5)


async def drive_grpc(target: str, request: bytes, connections: int, cell: Cell) -> None:
    import grpc

    metadata = (("authorization", f"Bearer {TOKEN}"),)
    # One HTTP/2 connection per client (a local subchannel pool each), as HTTP's are TCP connections.
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]

    async def client(channel):
        call = channel.unary_unary(MODEL_INFER)  # bytes in, bytes out
        while time.perf_counter() < cell.t_end:
            start = time.perf_counter()
            try:
                await call(request, metadata=metadata)
                ok = True
            except grpc.aio.AioRpcError:
                ok = False
            now = time.perf_counter()
            cell.record(now, now - start, ok)

    try:
        await asyncio.gather(cell.window(), *(client(ch) for ch in channels))
    finally:
        for ch in channels:
            await ch.close()


# -- requests -----------------------------------------------------------------------------------


def http_request(
    port: int, path: str, body: bytes, extra: dict | None = None, token: str | None = TOKEN
) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in {"Content-Type": "application/json", **(extra or {})}.items()]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def requests_for(port: int, names: list[str], case: np.ndarray) -> dict[str, bytes]:
    """The request bytes of each protocol, for the same case [30]."""
    from gan_jax.serve.proto import kserve_v2_pb2 as pb

    infer = "/v2/models/gan_jax/infer"
    native = json.dumps({"features": dict(zip(names, case.tolist()))}).encode()
    tensor = {"name": "input-0", "shape": [1, len(case)], "datatype": "FP32"}
    v2_json = json.dumps({"inputs": [{**tensor, "data": case.tolist()}]}).encode()
    raw = case.astype("<f4").tobytes()
    header = {"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]}
    header["parameters"] = {"binary_data_output": True}
    head = json.dumps(header).encode()
    grpc_tensor = pb.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP32", shape=[1, len(case)])
    grpc_body = pb.ModelInferRequest(model_name="gan_jax", inputs=[grpc_tensor], raw_input_contents=[raw])
    return {
        "native_json": http_request(port, "/predict", native),
        "v2_json": http_request(port, infer, v2_json),
        "v2_binary": http_request(
            port,
            infer,
            head + raw,
            {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))},
        ),
        "grpc": grpc_body.SerializeToString(),
    }


# -- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            proc.log.seek(0)
            raise RuntimeError(
                f"the server exited with {proc.returncode}: {proc.log.read().decode()[-2000:]}"
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def running(cmd: list[str], ready_url: str, env: dict | None = None):
    # The server's output goes to a file: a pipe nobody reads fills up (MLServer logs every
    # request) and then blocks the server.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        proc.log = log
        try:
            wait_for(ready_url, proc)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def quick_bundle(path: str) -> str:
    """A quick table bundle (the `quick` experiment's sizes), trained once and exported."""
    from gan_jax.artifacts import bundle, make_bundle
    from gan_jax.config import Config, ScheduleConfig

    if not os.path.exists(os.path.join(path, "bundle.json")):
        bundle.export(
            make_bundle.train_bundle(
                Config(schedule=ScheduleConfig(ae_steps=100, gan_steps=150, log_every=50))
            ),
            path,
        )
    return path


def check_answers(port: int, grpc_port: int, requests: dict[str, bytes]) -> None:
    """One request per protocol before measuring: each answers 200 with a probability."""
    import urllib.request

    import grpc

    for name in ("native_json", "v2_json", "v2_binary"):
        head, body = requests[name].split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = dict(
            line.split(": ", 1) for line in lines[1:] if not line.startswith(("Host", "Content-Length"))
        )
        url = f"http://127.0.0.1:{port}{lines[0].split()[1]}"
        with urllib.request.urlopen(urllib.request.Request(url, body, headers)) as r:
            assert r.status == 200, (name, r.status)
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
        ch.unary_unary(MODEL_INFER)(
            requests["grpc"], metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30
        )


def run_gan_jax(args, bundle_path: str, case: np.ndarray, names: list[str]) -> dict:
    port, grpc_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "gan_jax.cli", "serve", bundle_path, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--grpc-port", str(grpc_port), "--log-level", "warning"]
    env = {**os.environ, "GAN_JAX_API_TOKEN": TOKEN}
    requests = requests_for(port, names, case)
    cells = {}
    with running(cmd, f"http://127.0.0.1:{port}/v2/health/ready", env) as proc:
        check_answers(port, grpc_port, requests)
        for protocol in PROTOCOLS:
            for c in args.connections:
                cell = Cell(args.warmup, args.duration, proc.pid)
                if protocol == "grpc":
                    asyncio.run(drive_grpc(f"127.0.0.1:{grpc_port}", requests["grpc"], c, cell))
                else:
                    with asyncio.Runner(loop_factory=_uvloop()) as runner:
                        runner.run(drive_http(port, requests[protocol], c, cell))
                cells[f"{protocol}@{c}"] = cell.summary()
                print(f"{protocol:12s} {c:3d} conn: {_line(cells[f'{protocol}@{c}'])}", flush=True)
    return cells


def _uvloop():
    import uvloop

    return uvloop.new_event_loop


def _line(r: dict) -> str:
    if not r["requests"]:
        return f"no answer completed ({r['failed']} failed)"
    return (
        f"{r['req_per_s']:8.0f} req/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
        f"server {r['server_cpu_us_per_req']:.0f} us/req  client {r['client_cpu_us_per_req']:.0f} us/req  "
        f"load {r['load_average'][1]:.2f}"
    )


# -- MLServer -----------------------------------------------------------------------------------

MLSERVER_PACKAGES = ["mlserver", "mlserver-sklearn"]
_TRAIN_LR = """
import joblib, sys
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
x, y = load_breast_cancer(return_X_y=True)
joblib.dump(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, 1 - y), sys.argv[1])
"""


def mlserver_python(venv: str) -> tuple[str | None, str]:
    """The venv's python with MLServer installed (made on first use), or None and why not."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        made = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True)
        if made.returncode:
            return None, f"cannot make a venv: {made.stderr[-300:]}"
    check = subprocess.run([python, "-c", "import mlserver_sklearn, mlserver"], capture_output=True)
    if check.returncode:
        pip = subprocess.run(
            [python, "-m", "pip", "install", "-q", *MLSERVER_PACKAGES],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if pip.returncode:
            return None, f"pip install {' '.join(MLSERVER_PACKAGES)} failed: {pip.stderr.strip()[-300:]}"
    return python, ""


def run_mlserver(args, case: np.ndarray) -> dict:
    try:
        python, why = mlserver_python(args.mlserver_venv)
    except (OSError, subprocess.SubprocessError) as e:
        python, why = None, str(e)
    if python is None:
        print(f"MLServer skipped: {why}", flush=True)
        return {"skipped": why}
    version = subprocess.run(
        [python, "-c", "import mlserver; print(mlserver.__version__)"], capture_output=True, text=True
    ).stdout.strip()
    port = free_port()
    with tempfile.TemporaryDirectory() as models:
        model_dir = os.path.join(models, "wdbc")
        os.makedirs(model_dir)
        subprocess.run([python, "-c", _TRAIN_LR, os.path.join(model_dir, "model.joblib")], check=True)
        settings = {
            "http_port": port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": 0,
        }
        with open(os.path.join(models, "settings.json"), "w") as f:
            json.dump(settings, f)
        model = {"name": "wdbc", "implementation": "mlserver_sklearn.SKLearnModel"}
        model["parameters"] = {"uri": "./model.joblib"}
        with open(os.path.join(model_dir, "model-settings.json"), "w") as f:
            json.dump(model, f)
        body = {
            "inputs": [{"name": "x", "shape": [1, len(case)], "datatype": "FP64", "data": case.tolist()}],
            "outputs": [{"name": "predict_proba"}],
        }
        request = http_request(port, "/v2/models/wdbc/infer", json.dumps(body).encode(), token=None)
        mlserver = os.path.join(os.path.dirname(python), "mlserver")
        cells = {"version": version}
        with running([mlserver, "start", models], f"http://127.0.0.1:{port}/v2/health/ready") as proc:
            for c in args.connections:
                cell = Cell(args.warmup, args.duration, proc.pid)
                with asyncio.Runner(loop_factory=_uvloop()) as runner:
                    runner.run(drive_http(port, request, c, cell))
                cells[f"mlserver_v2_json@{c}"] = cell.summary()
                print(f"mlserver     {c:3d} conn: {_line(cells[f'mlserver_v2_json@{c}'])}", flush=True)
    return cells


# -- where the server's time goes --------------------------------------------------------------


def breakdown(bundle_path: str, case: np.ndarray, names: list[str], n: int = 3000) -> dict:
    """CPU µs per request of the server's own parts, called in this process without a network:
    the jitted model on one case, the ASGI app per HTTP protocol (routing, auth, metrics,
    parsing, scoring, encoding) and the gRPC servicer (decode, scoring, encode). What the
    measured server CPU per request has beyond these is the transport: uvicorn + httptools, or
    grpcio's server."""
    from gan_jax.artifacts import bundle
    from gan_jax.serve import DataPlane, ServeSettings, create_app, from_bundle, grpc_server
    from gan_jax.serve.proto import kserve_v2_pb2 as pb

    plane = DataPlane(from_bundle(bundle.load(bundle_path)), ServeSettings(token=TOKEN))
    plane.start()
    app = create_app(plane)
    requests = requests_for(1, names, case)
    out = {"model_forward": _cpu_per_call(lambda: plane.predictor.model.predict(case[None]), n)}

    for protocol in ("native_json", "v2_json", "v2_binary"):
        head, body = requests[protocol].split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        path = lines[0].split()[1]
        headers = []
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers.append((name.strip().lower().encode(), value.strip().encode()))
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "http_version": "1.1",
            "scheme": "http",
            "server": None,
            "client": None,
        }

        async def call(scope=scope, body=body):
            async def receive():
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message):
                if message["type"] == "http.response.start" and message["status"] != 200:
                    raise RuntimeError(f"{scope['path']}: {message['status']}")

            await app(dict(scope), receive, send)

        out[f"asgi_{protocol}"] = _cpu_per_call_async(call, n)

    service = grpc_server.InferenceService(plane)

    async def infer():
        response = await service.ModelInfer(pb.ModelInferRequest.FromString(requests["grpc"]), None)
        response.SerializeToString()

    out["grpc_servicer"] = _cpu_per_call_async(infer, n)
    return out


def _cpu_per_call(fn, n: int) -> float:
    for _ in range(100):
        fn()
    t = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t) / n * 1e6


def _cpu_per_call_async(make, n: int) -> float:
    async def loop(k):
        for _ in range(k):
            await make()

    with asyncio.Runner(loop_factory=_uvloop()) as runner:
        runner.run(loop(100))
        t = time.process_time()
        runner.run(loop(n))
        return (time.process_time() - t) / n * 1e6


# -- report -------------------------------------------------------------------------------------


def markdown(data: dict) -> str:
    rec = data
    rows = [
        "| protocol | connections | req/s | p50 ms | p99 ms | max ms | server CPU µs/req | "
        "client CPU µs/req | server RSS MiB | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in {**data["gan_jax"], **{k: v for k, v in data["mlserver"].items() if "@" in k}}.items():
        protocol, c = key.split("@")
        if not r["requests"]:
            rows.append(f"| {protocol} | {c} | no answer completed ({r['failed']} failed) |")
            continue
        rows.append(
            f"| {protocol} | {c} | {r['req_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['max_ms']:.1f} | {r['server_cpu_us_per_req']:.0f} | {r['client_cpu_us_per_req']:.0f} | "
            f"{r['server_rss_mb']:.0f} | {r['load_average'][0]:.2f}→{r['load_average'][1]:.2f} |"
        )
    ml = data["mlserver"]
    ml_line = (
        f"MLServer {ml['version']} (scikit-learn runtime, logistic regression)"
        if "version" in ml
        else (f"MLServer: skipped ({ml.get('skipped')})")
    )
    parts = data["breakdown_cpu_us_per_request"]
    split = ", ".join(f"{k} {v:.0f}" for k, v in parts.items())
    return "\n".join(
        [
            "### Serving benchmark",
            "",
            f"`{rec['command']}` at commit `{rec['git_commit'][:12]}`, "
            f"{rec['load_average']['cores']} CPUs, "
            f"load average at start {rec['load_average']['before'][0]:.2f}; "
            f"{data['config']['duration']:.0f} s per cell after {data['config']['warmup']:.0f} s warm-up, "
            "one server process, one WDBC case per request, bearer token on. " + ml_line + ".",
            "",
            *rows,
            "",
            "The load generator is the benchmark process itself (raw asyncio protocols on uvloop for "
            "HTTP, grpc.aio with pre-serialized messages for gRPC); its CPU per request is the "
            "`client CPU` column, on the same cores as the server.",
            "",
            "Where the server's time goes (CPU µs per request, each part called in-process, "
            f"no network): {split}. The rest of the measured server CPU per request is the "
            "transport (uvicorn + httptools; "
            "grpcio's server).",
        ]
    )


SERVING_LIBRARIES = ("starlette", "uvicorn", "uvloop", "httptools", "orjson", "grpcio", "protobuf")


def serving_versions(versions: dict) -> dict:
    """The record's library versions plus those that decide serving numbers."""
    import importlib.metadata as md

    return {**versions, **{name: md.version(name) for name in SERVING_LIBRARIES}}


def main(argv=None) -> int:
    args = parse_args(argv)
    record = harness.record(argv)
    from gan_jax.data import load_dataset

    data = load_dataset()
    case, names = data.x[0].astype(np.float32), list(data.feature_names)
    bundle_path = args.bundle or quick_bundle(os.path.join(tempfile.gettempdir(), "gan_jax_bench_bundle"))
    result = {
        "versions": serving_versions(record["versions"]),
        "config": {**vars(args), "bundle": bundle_path},
        "gan_jax": run_gan_jax(args, bundle_path, case, names),
        "mlserver": run_mlserver(args, case) if args.mlserver else {"skipped": "--no-mlserver"},
        "breakdown_cpu_us_per_request": breakdown(bundle_path, case, names),
    }
    result = {**harness.finish(record), **result}  # the record at the top, as in every results file
    for path in harness.write(args.out, "bench_serving", result, markdown(result)):
        print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
