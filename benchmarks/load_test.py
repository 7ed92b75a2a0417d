"""Load test of the prediction server and Figure 4 (latency over time).

Starts `gan-jax serve` on a free loopback port (or targets --url), then drives it with
--connections closed-loop keep-alive clients for --duration seconds: each client sends one
single-case request, waits for the whole response, records its latency, and sends the next.
The clients are raw asyncio protocols (an HTTP library would cost more CPU than the server on
a small box), and a latency goes into a fixed-size log-bucketed histogram per window
(`LatencyHistogram`), so the client's cost per request stays the same however long the run.
Every second it samples the load average, its own CPU time and the resident memory of client
and server, so a drift can be traced to whoever caused it. Then the same against the echo model
(server without the model), and optionally wrk as a cross-check. Writes results/latency.json,
results/figure4_latency.png and the results/README.md fragment results/latency.md (--tag soak:
latency_soak.*).

--grpc drives the Open Inference Protocol over gRPC instead (`gan-jax serve --grpc-port`): each
client is its own HTTP/2 connection (grpc.aio channel) sending one single-case ModelInfer call
after another, serialized once beforehand as HTTP's request bytes are, into the same histograms
and windows; writes latency_grpc.*. --protocol both runs HTTP, then gRPC, with the same bundle,
duration and connections, and writes the side-by-side results/latency_http_vs_grpc.json/.md.

    python -m benchmarks.load_test --bundle runs/bundle                    # 60 s + 20 s echo
    python -m benchmarks.load_test --bundle runs/bundle --duration 600 --tag soak   # the soak
    python -m benchmarks.load_test --bundle runs/bundle --duration 10 --echo-duration 5   # smoke
    python -m benchmarks.load_test --bundle runs/bundle --grpc                            # gRPC
    python -m benchmarks.load_test --bundle runs/bundle --protocol both --echo-duration 0  # side by side
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import numpy as np

from benchmarks import harness
from benchmarks.harness import current_command
from gan_jax import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", help="bundle to serve (omit with --url)")
    p.add_argument(
        "--url",
        help="an already running server, e.g. http://127.0.0.1:8080 (no echo run); "
        "with --grpc its gRPC host:port, e.g. 127.0.0.1:8081",
    )
    p.add_argument(
        "--protocol",
        choices=("http", "grpc", "both"),
        default="http",
        help="HTTP (POST --path), gRPC (KServe v2 ModelInfer) or both, in turn",
    )
    p.add_argument("--grpc", dest="protocol", action="store_const", const="grpc", help="--protocol grpc")
    p.add_argument("--model-name", default="gan_jax", help="model name in gRPC ModelInfer calls")
    p.add_argument("--token", default=os.environ.get("GAN_JAX_API_TOKEN"), help="bearer token for --url")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--duration", type=float, default=60.0, help="seconds of measured load (model)")
    p.add_argument(
        "--echo-duration", type=float, default=20.0, help="seconds against the echo model; 0: skip"
    )
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of unrecorded load first")
    p.add_argument("--window", type=float, help="seconds per point in Figure 4 (default: duration / 60)")
    p.add_argument("--path", default="/predict")
    p.add_argument("--workers", type=int, default=1, help="server workers")
    p.add_argument("--wrk", type=float, default=0.0, help="also run wrk for this many seconds, if installed")
    p.add_argument("--out", default=os.path.join(ROOT, "results"))
    p.add_argument(
        "--report-only",
        metavar="JSON",
        help="rewrite the Markdown (and figure) beside a results JSON of this script",
    )
    p.add_argument(
        "--tag",
        help="suffix of the output names, e.g. soak: latency_soak.json (default: none "
        "for HTTP, grpc for gRPC, http_vs_grpc for both)",
    )
    args = p.parse_args(argv)
    if args.tag is None:
        args.tag = {"http": "", "grpc": "grpc", "both": "http_vs_grpc"}[args.protocol]
    if args.url and args.protocol == "both":
        p.error("--protocol both starts its own server: pass --bundle, not --url")
    return args


# -- load generation ----------------------------------------------------------------------------


class LatencyHistogram:
    """Counts of latencies in log-spaced buckets (the idea of HdrHistogram): memory and work per
    value are constant however many values come, and a percentile read back is within
    `rel_error` of the exact one (plus exact count, mean and max).

    Bucket k >= 1 holds [lowest * g**(k-1), lowest * g**k) with g = 1 + 2 * rel_error and is
    read back as its geometric middle; bucket 0 holds anything below `lowest` (read back as
    `lowest`), the last one anything from `highest` up (read back as the max). A value read
    back is clamped to [min, max] of the values seen, so a constant latency reads back exactly.
    """

    def __init__(self, lowest: float = 1e-6, highest: float = 100.0, rel_error: float = 0.005):
        if not 0 < lowest < highest or not 0 < rel_error < 0.5:
            raise ValueError(
                f"need 0 < lowest < highest and 0 < rel_error < 0.5, got {lowest}, {highest}, {rel_error}"
            )
        self.lowest, self.highest, self.rel_error = lowest, highest, rel_error
        self.growth = 1.0 + 2.0 * rel_error
        self._log_growth = math.log(self.growth)
        self.n_buckets = math.ceil(math.log(highest / lowest) / self._log_growth) + 2
        self.counts = [0] * self.n_buckets
        self.count, self.total, self.min, self.max = 0, 0.0, math.inf, 0.0

    def index(self, value: float) -> int:
        """The bucket of `value` (compute it once when adding to several histograms)."""
        if value < self.lowest:
            return 0
        return min(int(math.log(value / self.lowest) / self._log_growth) + 1, self.n_buckets - 1)

    def add(self, value: float, index: int | None = None) -> None:
        self.counts[self.index(value) if index is None else index] += 1
        self.count += 1
        self.total += value
        if value > self.max:
            self.max = value
        if value < self.min:
            self.min = value

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """A new histogram holding the values of both (same bucket layout)."""
        if (other.lowest, other.highest, other.rel_error) != (self.lowest, self.highest, self.rel_error):
            raise ValueError("cannot merge histograms with different bucket layouts")
        out = LatencyHistogram(self.lowest, self.highest, self.rel_error)
        out.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        out.count, out.total = self.count + other.count, self.total + other.total
        out.min, out.max = min(self.min, other.min), max(self.max, other.max)
        return out

    def percentile(self, q: float) -> float:
        """The q-th percentile (0 < q <= 100) as numpy's method="inverted_cdf" defines it (the
        smallest value with at least q % of the values at or below it), to within rel_error."""
        if not 0 < q <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {q}")
        if self.count == 0:
            raise ValueError("no values recorded")
        rank = math.ceil(q / 100 * self.count - 1e-9)  # 1-based rank of the value sought
        k = int(np.searchsorted(np.cumsum(self.counts), rank))
        if k == 0:  # below the range: its upper edge
            value = self.lowest
        elif k == self.n_buckets - 1:  # above the range: open-ended, so the largest value seen
            value = self.max
        else:
            value = self.lowest * self.growth ** (k - 0.5)
        return min(max(value, self.min), self.max)  # never outside what was seen

    def summary(self) -> dict[str, float | None]:
        """p50/p95/p99/max/mean in milliseconds (None without values)."""
        if self.count == 0:
            return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
        p50, p95, p99 = (1e3 * self.percentile(q) for q in (50, 95, 99))
        return {
            "p50_ms": p50,
            "p95_ms": p95,
            "p99_ms": p99,
            "max_ms": 1e3 * self.max,
            "mean_ms": 1e3 * self.total / self.count,
        }


class Recorder:
    """What one measured run keeps: a latency histogram and a failure count per window, and
    histograms of the first and last minute. `record` does the same few operations for every
    response, so the client's cost does not grow with the run (it used to append to lists)."""

    MINUTE = 60.0

    def __init__(self, duration: float, window: float):
        if duration <= 0 or window <= 0:
            raise ValueError(f"duration and window must be > 0, got {duration}, {window}")
        self.duration, self.window = duration, window
        n = math.ceil(duration / window - 1e-9)
        self.windows = [LatencyHistogram() for _ in range(n)]
        self.failed = [0] * n
        self.first_minute, self.last_minute = LatencyHistogram(), LatencyHistogram()

    def record(self, t: float, latency: float, status: int) -> None:
        """One response completed `t` seconds into the measurement; outside [0, duration) it is
        not counted (warm-up, and the last requests finishing after the end)."""
        if not 0.0 <= t < self.duration:
            return
        w = min(int(t / self.window), len(self.windows) - 1)
        hist = self.windows[w]
        k = hist.index(latency)
        hist.add(latency, k)
        if status != 200:
            self.failed[w] += 1
        if t < self.MINUTE:
            self.first_minute.add(latency, k)
        if t >= self.duration - self.MINUTE:
            self.last_minute.add(latency, k)

    def total(self) -> LatencyHistogram:
        out = LatencyHistogram()
        for h in self.windows:
            out = out.merge(h)
        return out


class Client(asyncio.Protocol):
    """One keep-alive connection sending `request` again as soon as each response is complete."""

    def __init__(self, request: bytes, record):
        self.request, self.record = request, record
        self.buffer, self.need, self.t0, self.status = b"", None, 0.0, 0
        self.done = asyncio.get_running_loop().create_future()
        self.stopping = False

    def connection_made(self, transport):
        self.transport = transport
        self._send()

    def _send(self):
        self.t0 = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes):
        self.buffer += data
        if self.need is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            self.status = int(head[9:12])
            length = re.search(r"(?i)\r\ncontent-length:\s*(\d+)", head)
            self.need = end + 4 + (int(length.group(1)) if length else 0)
        if len(self.buffer) < self.need:
            return
        now = time.perf_counter()
        self.record(now, now - self.t0, self.status)
        self.buffer, self.need = self.buffer[self.need :], None
        if self.stopping:
            self.transport.close()
        else:
            self._send()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory of a process in MiB, from /proc (None where unreadable)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far, from /proc (None where unreadable)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def drive(
    host: str,
    port: int,
    request: bytes,
    connections: int,
    warmup: float,
    duration: float,
    window: float,
    server_pid: int | None = None,
):
    """(Recorder, lost connections, per-second samples). A sample is (t, 1-min load average,
    client CPU seconds so far, client RSS MiB, server RSS MiB, server CPU seconds): on a shared machine other
    processes' load shows up in the latency, and the samples show when and whose."""
    loop = asyncio.get_running_loop()
    t_start = time.perf_counter() + warmup
    recorder = Recorder(duration, window)
    record = lambda t, latency, status: recorder.record(t - t_start, latency, status)
    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(lambda: Client(request, record), host, port)
        clients.append(client)
    samples = await sample_until_end(t_start, duration, server_pid)
    for c in clients:
        c.stopping = True
    await asyncio.wait([c.done for c in clients], timeout=5)
    lost = sum(1 for c in clients if not c.done.done() or c.done.result() is not None)
    return recorder, lost, samples


async def sample_until_end(t_start: float, duration: float, server_pid: int | None) -> list[tuple]:
    """Waits out the warm-up, then samples once a second until the end of the measurement."""
    await asyncio.sleep(max(0.0, t_start - time.perf_counter()))
    samples = []
    cpu0 = time.process_time()
    sample = lambda: (
        time.perf_counter() - t_start,
        os.getloadavg()[0],
        time.process_time() - cpu0,
        rss_mb(),
        rss_mb(server_pid) if server_pid else None,
        cpu_seconds(server_pid) if server_pid else None,
    )
    for _ in range(int(duration)):
        samples.append(sample())
        await asyncio.sleep(1.0)
    await asyncio.sleep(max(0.0, t_start + duration - time.perf_counter()))
    samples.append(sample())
    return samples


MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


async def drive_grpc(
    target: str,
    request: bytes,
    token: str | None,
    connections: int,
    warmup: float,
    duration: float,
    window: float,
    server_pid: int | None = None,
):
    """As `drive`, over gRPC: `connections` channels (separate HTTP/2 connections, as HTTP's
    keep-alive clients are separate TCP connections), each awaiting one ModelInfer call at a time.
    The request is sent as pre-serialized bytes and the response kept as bytes (no protobuf work
    in the loop, as the HTTP client does no JSON work); a call that is not OK counts as failed."""
    import grpc

    t_start = time.perf_counter() + warmup
    recorder = Recorder(duration, window)
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    stop = False
    # A local subchannel pool per channel: otherwise grpc shares one connection among them all.
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]

    async def client(channel) -> None:
        call = channel.unary_unary(MODEL_INFER)  # no (de)serializer: bytes in, bytes out
        while not stop:
            t0 = time.perf_counter()
            try:
                await call(request, metadata=metadata)
                status = 200
            except grpc.aio.AioRpcError as e:
                status = 1000 + e.code().value[0]  # anything but 200 counts as failed
            now = time.perf_counter()
            recorder.record(now - t_start, now - t0, status)

    try:
        for ch in channels:
            await asyncio.wait_for(ch.channel_ready(), timeout=30)
        tasks = [asyncio.create_task(client(ch)) for ch in channels]
        samples = await sample_until_end(t_start, duration, server_pid)
        stop = True
        done, pending = await asyncio.wait(tasks, timeout=5)
        for t in pending:
            t.cancel()
        lost = len(pending) + sum(1 for t in done if t.exception() is not None)
        lost += sum(1 for ch in channels if ch.get_state() == grpc.ChannelConnectivity.TRANSIENT_FAILURE)
    finally:
        for ch in channels:
            await ch.close()
    return recorder, lost, samples


def grpc_request(model_name: str) -> bytes:
    """One ModelInfer request for the same WDBC case as `sample_body`: one FP32 tensor [1, 30] in
    raw little-endian contents, as tritonclient sends it."""
    from gan_jax.data import load_dataset
    from gan_jax.serve.proto import kserve_v2_pb2 as pb

    x = load_dataset().x[:1]
    tensor = pb.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP32", shape=list(x.shape))
    msg = pb.ModelInferRequest(
        model_name=model_name, inputs=[tensor], raw_input_contents=[x.astype("<f4").tobytes()]
    )
    return msg.SerializeToString()


def check_grpc_answer(target: str, request: bytes, token: str | None) -> None:
    """One call before the run: the server answers a ModelInfer with one probability in [0, 1]."""
    import grpc
    import numpy as np

    from gan_jax.serve.proto import kserve_v2_pb2 as pb

    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with grpc.insecure_channel(target) as ch:
        answer = pb.ModelInferResponse.FromString(
            ch.unary_unary(MODEL_INFER)(request, metadata=metadata, timeout=30)
        )
    proba = np.frombuffer(answer.raw_output_contents[0], "<f4")
    if answer.outputs[0].name != "malignant_probability" or proba.shape != (1,) or not 0 <= proba[0] <= 1:
        raise RuntimeError(f"unexpected ModelInfer answer: {answer}")


def http_request(host: str, port: int, path: str, body: bytes, token: str | None) -> bytes:
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def sample_body() -> bytes:
    """One real WDBC case (the first row of the bundled copy), by feature name."""
    from gan_jax.data import load_dataset

    data = load_dataset()
    return json.dumps({"features": dict(zip(data.feature_names, data.x[0].tolist()))}).encode()


# -- summaries ----------------------------------------------------------------------------------


def summarize(recorder: Recorder, lost: int, samples: list[tuple]) -> dict:
    """The run's totals, one entry per window (latency, throughput, failures, load average,
    the client's CPU per request, client and server memory) and, for runs of 2 minutes or more,
    the first and the last minute side by side."""
    duration, window = recorder.duration, recorder.window
    windows = []
    sample_t, client_cpu = [s[0] for s in samples], [s[2] for s in samples]
    for i, (hist, failed) in enumerate(zip(recorder.windows, recorder.failed, strict=True)):
        lo, hi = i * window, min((i + 1) * window, duration)
        inside = [s for s in samples if lo <= s[0] < hi]
        # The client's CPU time at the window's edges, interpolated between the 1 s samples.
        cpu = np.interp(hi, sample_t, client_cpu) - np.interp(lo, sample_t, client_cpu) if samples else 0.0
        cpu_per_request = float(1e6 * cpu / hist.count) if len(samples) > 1 and hist.count else None
        windows.append(
            {
                "t_s": (lo + hi) / 2,
                "requests": hist.count,
                "failed": failed,
                "req_per_s": hist.count / (hi - lo),
                **hist.summary(),
                "load_avg_1m": _mean(s[1] for s in inside),
                "client_cpu_us_per_request": cpu_per_request,
                "client_rss_mb": _mean(s[3] for s in inside),
                "server_rss_mb": _mean(s[4] for s in inside),
            }
        )
    total = recorder.total()
    # The server's own CPU per request, from its CPU time at the first and last sample: unlike
    # latency it does not depend on how much CPU the client takes from the shared cores.
    server_cpu = None
    if len(samples) > 1 and len(samples[0]) > 5 and samples[0][5] is not None and samples[-1][5] is not None:
        span = samples[-1][0] - samples[0][0]
        rate = total.count / duration * span  # requests within the sampled span
        server_cpu = 1e6 * (samples[-1][5] - samples[0][5]) / rate if rate else None
    out = {
        "requests": total.count,
        "failed": sum(recorder.failed),
        "connections_lost": lost,
        "duration_s": duration,
        "req_per_s": total.count / duration,
        **total.summary(),
        "latency_histogram": {"buckets": total.n_buckets, "relative_error": total.rel_error},
        "windows": windows,
    }
    out["server_cpu_us_per_request"] = server_cpu
    if duration >= 2 * Recorder.MINUTE:
        first, last = recorder.first_minute.summary(), recorder.last_minute.summary()
        first["req_per_s"] = recorder.first_minute.count / Recorder.MINUTE
        last["req_per_s"] = recorder.last_minute.count / Recorder.MINUTE
        out["first_minute"], out["last_minute"] = first, last
        out["last_vs_first_minute_p50"] = last["p50_ms"] / first["p50_ms"]
        out["last_vs_first_minute_p99"] = last["p99_ms"] / first["p99_ms"]
    return out


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


# -- server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, port: int, echo: bool, token: str, grpc_port: int | None = None) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "gan_jax.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--model-name",
        args.model_name,
        *(["--grpc-port", str(grpc_port)] if grpc_port else []),
        *(["--echo"] if echo else [args.bundle]),
    ]
    return start_process(cmd, port, {**os.environ, "GAN_JAX_API_TOKEN": token})


def start_process(cmd: list[str], port: int, env: dict | None = None) -> subprocess.Popen:
    """Starts a server command and returns once GET /v2/health/ready on `port` answers 200."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not become ready in 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_one(args, label: str, duration: float, echo: bool, protocol: str = "http") -> dict:
    token = args.token or os.urandom(16).hex()
    grpc_port = None
    if args.url and protocol == "grpc":
        target, proc = args.url.removeprefix("grpc://"), None
    elif args.url:
        u = urlsplit(args.url)
        host, port, proc = u.hostname, u.port or 80, None
    else:
        host, port = "127.0.0.1", free_port()
        grpc_port = free_port() if protocol == "grpc" else None
        target = f"127.0.0.1:{grpc_port}"
        proc = start_server(args, port, echo, token, grpc_port)
    try:
        load_before = os.getloadavg()
        window = args.window or max(duration / 60, 1.0)
        pid = proc.pid if proc is not None else None
        if protocol == "grpc":
            request = grpc_request("echo" if echo else args.model_name)  # `serve --echo` names it echo
            check_grpc_answer(target, request, token)
            run = drive_grpc(target, request, token, args.connections, args.warmup, duration, window, pid)
        else:
            request = http_request(host, port, args.path, sample_body(), token)
            run = drive(host, port, request, args.connections, args.warmup, duration, window, pid)
        recorder, lost, samples = asyncio.run(run)
        result = summarize(recorder, lost, samples)
        result["protocol"] = protocol
        result["load_average_before_after"] = [load_before[0], os.getloadavg()[0]]
        if args.wrk and shutil.which("wrk") and protocol == "http":
            result["wrk"] = run_wrk(host, port, args, token)
    finally:
        if proc is not None:
            stop_server(proc)
    print(
        f"{label}: {result['req_per_s']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p95 "
        f"{result['p95_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, {result['failed']} failed"
    )
    return result


def run_wrk(host: str, port: int, args, token: str) -> dict:
    """wrk (C, two threads) with the same request, as a cross-check of the Python driver."""
    body = sample_body().decode()
    script = (
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\nwrk.headers["Content-Type"] = '
        f'"application/json"\nwrk.headers["Authorization"] = "Bearer {token}"\n'
    )
    path = os.path.join(args.out, ".wrk_post.lua")
    with open(path, "w") as f:
        f.write(script)
    cmd = [
        "wrk",
        "-t2",
        f"-c{args.connections}",
        f"-d{int(args.wrk)}s",
        "--latency",
        "-s",
        path,
        f"http://{host}:{port}{args.path}",
    ]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.remove(path)
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    dist = {f"p{p}_ms": float(v) * unit[u] for p, v, u in re.findall(r"\s(\d+)%\s+([\d.]+)(us|ms|s)", text)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    return {
        "command": " ".join(cmd[:-3]),
        "req_per_s": rps,
        **dist,
        "non_2xx": int(errors[1]) if errors else 0,
    }


# -- report -------------------------------------------------------------------------------------


def _row(label: str, r: dict) -> str:
    return (
        f"| {label} | {r['duration_s']:.0f} | {r['req_per_s']:,.0f} | {r['p50_ms']:.2f} | "
        f"{r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | {r['failed']} |"
    )


def _drift_line(model: dict) -> str:
    """First vs last minute: latency, throughput, and what the client and server cost then."""
    first, last = model["first_minute"], model["last_minute"]
    w0, w1 = model["windows"][0], model["windows"][-1]
    text = (
        f"- First / last minute: p50 {first['p50_ms']:.2f} / {last['p50_ms']:.2f} ms (ratio "
        f"{last['p50_ms'] / first['p50_ms']:.2f}), p99 {first['p99_ms']:.2f} / {last['p99_ms']:.2f} ms "
        f"(ratio {last['p99_ms'] / first['p99_ms']:.2f}), {first['req_per_s']:,.0f} / "
        f"{last['req_per_s']:,.0f} requests/s"
    )
    if w0.get("client_cpu_us_per_request") and w1.get("client_cpu_us_per_request"):
        text += (
            f"; client CPU per request in the first / last window {w0['client_cpu_us_per_request']:.0f}"
            f" / {w1['client_cpu_us_per_request']:.0f} µs"
        )
    if w0.get("server_rss_mb") and w1.get("server_rss_mb"):
        text += f"; server memory {w0['server_rss_mb']:.0f} / {w1['server_rss_mb']:.0f} MiB"
    return text + "."


def _clients(cfg: dict) -> str:
    if cfg.get("protocol") == "grpc":
        return (
            f"{cfg['connections']} closed-loop gRPC clients (one HTTP/2 connection each) making "
            "single-case KServe v2 `ModelInfer` calls (`--grpc-port`)"
        )
    n, path = cfg["connections"], cfg["path"]
    return f"{n} closed-loop keep-alive clients sending single-case `POST {path}` requests"


def markdown_side_by_side(results: dict) -> str:
    """The results/README.md fragment comparing HTTP and gRPC: same bundle, duration, clients, machine."""
    cfg, runs = results["config"], results["runs"]
    lines = [
        "## HTTP and gRPC side by side (`latency_http_vs_grpc.json`)",
        "",
        f"The same bundle served by one `gan-jax serve` worker with `--grpc-port`, {cfg['connections']} "
        f"closed-loop clients over loopback for {runs['http']['duration_s']:.0f} s each, HTTP first "
        f"(single-case `POST {cfg['path']}`, JSON), then gRPC (single-case KServe v2 `ModelInfer`, one "
        f"FP32 tensor), on {results['machine']['cpu_count']} CPU cores shared by client and server. "
        "Server CPU is the server process's own CPU time per request (from /proc, whatever else runs); "
        "client CPU is the load generator's (it shares the cores with the server); the load average "
        "shows whether other jobs shared the machine.",
        "",
        "| protocol | s | requests/s | p50 ms | p95 ms | p99 ms | max ms | failed | server CPU µs/request "
        "| client CPU µs/request | 1-min load avg before / during / after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name in ("http", "grpc", "http_echo", "grpc_echo"):
        if name not in runs:
            continue
        r = runs[name]
        cpu = _mean(w["client_cpu_us_per_request"] for w in r["windows"])
        during = _mean(w["load_avg_1m"] for w in r["windows"])
        before, after = r["load_average_before_after"]
        label = {
            "http": "HTTP",
            "grpc": "gRPC",
            "http_echo": "HTTP, echo model",
            "grpc_echo": "gRPC, echo model",
        }
        fmt = lambda v, spec: "–" if v is None else format(v, spec)
        lines.append(
            f"{_row(label[name], r)} {fmt(r.get('server_cpu_us_per_request'), '.0f')} | "
            f"{fmt(cpu, '.0f')} | {before:.2f} / {fmt(during, '.2f')} / {after:.2f} |"
        )
    h, g = runs["http"], runs["grpc"]
    lines += [
        "",
        f"- gRPC / HTTP: throughput {g['req_per_s'] / h['req_per_s']:.2f}×, p50 "
        f"{g['p50_ms'] / h['p50_ms']:.2f}×, p99 {g['p99_ms'] / h['p99_ms']:.2f}×.",
    ]
    if h.get("server_cpu_us_per_request") and g.get("server_cpu_us_per_request"):
        sh, sg = h["server_cpu_us_per_request"], g["server_cpu_us_per_request"]
        lines.append(
            f"- The server's own CPU per request (from /proc, so independent of the client's share "
            f"of the cores): gRPC {sg:.0f} µs, HTTP {sh:.0f} µs ({sg / sh:.1f}×)."
        )
    cpu_h = _mean(w["client_cpu_us_per_request"] for w in h["windows"])
    cpu_g = _mean(w["client_cpu_us_per_request"] for w in g["windows"])
    if cpu_h and cpu_g and max(cpu_h, cpu_g) > 1.5 * min(cpu_h, cpu_g):
        lines.append(
            f"- Not equal resources: the load generator spends {cpu_g:.0f} µs of CPU per gRPC call "
            f"(grpc.aio) and {cpu_h:.0f} µs per HTTP request (raw sockets), on the cores the server "
            f"uses too, so the {'gRPC' if cpu_g > cpu_h else 'HTTP'} row understates what the server "
            "itself can do; a client on another machine would separate the two."
        )
    lines += [
        f"- Regenerate: `{current_command(results['command'])}` (commit `{results['git_commit'][:12]}`).",
    ]
    return "\n".join(lines) + "\n"


def markdown(results: dict, figure_name: str) -> str:
    """The results/README.md fragment for one load test: measured numbers beside the paper's Figure 4."""
    model, echo = results["runs"]["model"], results["runs"].get("echo")
    cfg = results["config"]
    json_name = figure_name.replace("figure4_", "").replace(".png", ".json")
    grpc = cfg.get("protocol") == "grpc"
    lines = [
        f"## Figure 4{' over gRPC' if grpc else ''}: latency over a {model['duration_s'] / 60:.0f}-minute "
        f"run (`{figure_name}`)",
        "",
        "The paper's Figure 4 shows latency rising roughly linearly from ~150 ms to over 200 ms and "
        "does not say how it was measured. Ours: the real server (`gan-jax serve`, one worker) over "
        f"loopback, {_clients(cfg)}, on {results['machine']['cpu_count']} CPU cores shared by client "
        f"and server; every request's latency counted in a log-bucketed histogram per window "
        f"(percentiles within {100 * model['latency_histogram']['relative_error']:.1f} %; `{json_name}`).",
        "",
        "| server | s | requests/s | p50 ms | p95 ms | p99 ms | max ms | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        _row("paper pipeline", model),
        *([_row("echo model (no model call)", echo)] if echo else []),
        "",
    ]
    if "last_vs_first_minute_p99" in model:
        lines += [_drift_line(model)]
    if "wrk" in model:
        w = model["wrk"]
        p50, p99 = w.get("p50_ms", float("nan")), w.get("p99_ms", float("nan"))
        lines += [
            f"- wrk cross-check (`{w['command']}`): {w['req_per_s']:,.0f} requests/s, "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms."
        ]
    before, after = model["load_average_before_after"]
    lines += [
        f"- 1-min load average before / after: {before:.2f} / {after:.2f} (client and server keep about "
        "2 busy; more means other jobs shared the machine).",
        f"- Regenerate: `{current_command(results['command'])}` (commit `{results['git_commit'][:12]}`).",
        "",
        f"![Figure 4]({figure_name})",
    ]
    return "\n".join(lines) + "\n"


# -- figure -------------------------------------------------------------------------------------


def figure(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = results["runs"]["model"]
    w = model["windows"]
    t = [x["t_s"] for x in w]
    fig, (ax, ax_rps) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=[3, 1.4])
    for key, style in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
        ax.plot(t, [x[key] for x in w], style, color="C0", label=f"model {key[:3]}")
    echo = results["runs"].get("echo")
    if echo:
        for key, style in (("p50_ms", "-"), ("p99_ms", ":")):
            ax.axhline(echo[key], color="C2", ls=style, lw=1, label=f"echo model {key[:3]} (whole run)")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, ncol=2)
    cfg = results["config"]
    ax.set_title(
        f"Figure 4: single-case requests, {cfg['connections']} connections over loopback, "
        f"{os.cpu_count()} CPU cores",
        fontsize=10,
    )
    ax_rps.plot(t, [x["req_per_s"] for x in w], color="C1")
    ax_rps.set_ylabel("requests / s", color="C1")
    ax_load = ax_rps.twinx()  # server + client keep ~2 busy; more means other processes
    ax_load.plot(t, [x["load_avg_1m"] for x in w], color="0.5", lw=1)
    ax_load.set_ylabel("1-min load avg", color="0.4")
    ax_load.set_ylim(bottom=0)
    ax_rps.set_xlabel("time since start of measurement (s)")
    ax_rps.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def serving_versions(runtime) -> dict[str, str]:
    """The library versions beside every result, plus the serving stack's (they decide latency)."""
    import importlib.metadata as md

    versions = runtime.library_versions()
    for name in ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "orjson", "grpcio", "protobuf"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_report(results: dict, out: str, stem: str) -> str:
    """The Markdown fragment for `<stem>.json`; with one protocol, also draws Figure 4
    (`figure4_<stem>.png` in `out`)."""
    if "http" in results["runs"]:  # --protocol both
        return markdown_side_by_side(results)
    figure(results, os.path.join(out, f"figure4_{stem}.png"))
    return markdown(results, f"figure4_{stem}.png")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report_only:
        out, name = os.path.split(os.path.abspath(args.report_only))
        harness.rewrite_markdown(
            args.report_only, lambda rec: write_report(rec, out, name.removesuffix(".json"))
        )
        print(f"rewrote the report beside {args.report_only}")
        return 0
    if not (args.bundle or args.url):
        raise SystemExit("pass --bundle (start a server) or --url (use a running one)")
    rec = harness.record(argv, module="benchmarks.load_test")
    os.makedirs(args.out, exist_ok=True)
    if args.protocol == "both":
        runs = {}
        for proto in ("http", "grpc"):
            runs[proto] = run_one(args, f"{proto} model", args.duration, echo=False, protocol=proto)
        if args.echo_duration > 0:
            for proto in ("http", "grpc"):
                runs[f"{proto}_echo"] = run_one(args, f"{proto} echo", args.echo_duration, True, proto)
    else:
        runs = {"model": run_one(args, "model", args.duration, echo=False, protocol=args.protocol)}
        if args.echo_duration > 0 and not args.url:
            runs["echo"] = run_one(args, "echo model", args.echo_duration, echo=True, protocol=args.protocol)
    results = harness.finish(rec, [load for r in runs.values() for load in r["load_average_before_after"]])
    results.update(
        config={k: v for k, v in vars(args).items() if k != "token"},
        machine={
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        versions=serving_versions(runtime),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        runs=runs,
    )
    stem = f"latency_{args.tag}" if args.tag else "latency"
    written = harness.write(args.out, stem, results, write_report(results, args.out, stem))
    print(f"wrote {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
