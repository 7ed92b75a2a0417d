"""Load test of the prediction server and Figure 4 (latency over time).

Starts `gan-jax serve` on a free loopback port (or targets --url), then drives it with
--connections closed-loop keep-alive clients for --duration seconds: each client sends one
single-case request, waits for the whole response, records its latency, and sends the next.
The clients are raw asyncio protocols (an HTTP library would cost more CPU than the server on
a small box). Then the same against the echo model (server without the model), and optionally
wrk as a cross-check. Writes results/latency.json, results/figure4_latency.png and the
results/README.md fragment results/latency.md (--tag soak: latency_soak.*).

    python scripts/load_test.py --bundle runs/bundle                    # 60 s + 20 s echo
    python scripts/load_test.py --bundle runs/bundle --duration 600 --tag soak   # the soak
    python scripts/load_test.py --bundle runs/bundle --duration 10 --echo-duration 5   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", help="bundle to serve (omit with --url)")
    p.add_argument("--url", help="an already running server, e.g. http://127.0.0.1:8080 (no echo run)")
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
    p.add_argument("--tag", default="", help="suffix of the output names, e.g. soak: latency_soak.json")
    return p.parse_args(argv)


# -- load generation ----------------------------------------------------------------------------


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
        self.record(time.perf_counter(), time.perf_counter() - self.t0, self.status)
        self.buffer, self.need = self.buffer[self.need :], None
        if self.stopping:
            self.transport.close()
        else:
            self._send()

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(exc)


async def drive(host: str, port: int, request: bytes, connections: int, warmup: float, duration: float):
    """(completion time since start [n], latency seconds [n], status [n]), lost connections, and
    (time, 1-min load average) samples every second: on a shared machine, other processes'
    load shows up in the latency, and the samples show when."""
    loop = asyncio.get_running_loop()
    t_start = time.perf_counter() + warmup
    times, latencies, statuses = [], [], []

    def record(t, latency, status):
        if t >= t_start:
            times.append(t - t_start)
            latencies.append(latency)
            statuses.append(status)

    clients = []
    for _ in range(connections):
        _, client = await loop.create_connection(lambda: Client(request, record), host, port)
        clients.append(client)
    await asyncio.sleep(warmup)
    load = []
    for _ in range(int(duration)):
        load.append((time.perf_counter() - t_start, os.getloadavg()[0]))
        await asyncio.sleep(1.0)
    await asyncio.sleep(max(0.0, t_start + duration - time.perf_counter()))
    for c in clients:
        c.stopping = True
    await asyncio.wait([c.done for c in clients], timeout=5)
    lost = sum(1 for c in clients if not c.done.done() or c.done.result() is not None)
    return np.asarray(times), np.asarray(latencies), np.asarray(statuses), lost, np.asarray(load)


def http_request(host: str, port: int, path: str, body: bytes, token: str | None) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: keep-alive"]  # fmt: skip
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def sample_body() -> bytes:
    """One real WDBC case (the first row of the bundled copy), by feature name."""
    from gan_jax.data import load_dataset

    data = load_dataset()
    return json.dumps({"features": dict(zip(data.feature_names, data.x[0].tolist()))}).encode()


# -- summaries ----------------------------------------------------------------------------------


def percentiles(latency_s: np.ndarray) -> dict[str, float]:
    if latency_s.size == 0:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    ms = latency_s * 1e3
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99), "max_ms": float(ms.max()),
            "mean_ms": float(ms.mean())}  # fmt: skip


def summarize(times, latencies, statuses, lost, load, duration: float, window: float) -> dict:
    ok = statuses == 200
    windows = []
    for lo in np.arange(0.0, duration - 1e-9, window):
        sel = (times >= lo) & (times < lo + window)
        in_window = [a for t, a in load if lo <= t < lo + window]
        windows.append({"t_s": float(lo + window / 2), "requests": int(sel.sum()),
                        "req_per_s": float(sel.sum() / window), **percentiles(latencies[sel]),
                        "load_avg_1m": float(np.mean(in_window)) if in_window else None})  # fmt: skip
    out = {"requests": int(times.size), "failed": int((~ok).sum()), "connections_lost": lost,
           "duration_s": duration, "req_per_s": float(times.size / duration),
           **percentiles(latencies), "windows": windows}  # fmt: skip
    if duration >= 120:
        first, last = percentiles(latencies[times < 60]), percentiles(latencies[times >= duration - 60])
        out["first_minute"], out["last_minute"] = first, last
        out["last_vs_first_minute_p99"] = last["p99_ms"] / first["p99_ms"]
    return out


# -- server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, port: int, echo: bool, token: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gan_jax.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(args.workers), *(["--echo"] if echo else [args.bundle])]  # fmt: skip
    env = {**os.environ, "GAN_JAX_API_TOKEN": token}
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
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not become ready in 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_one(args, label: str, duration: float, echo: bool) -> dict:
    token = args.token or os.urandom(16).hex()
    if args.url:
        u = urlsplit(args.url)
        host, port, proc = u.hostname, u.port or 80, None
    else:
        host, port = "127.0.0.1", free_port()
        proc = start_server(args, port, echo, token)
    try:
        request = http_request(host, port, args.path, sample_body(), token)
        load_before = os.getloadavg()
        t, lat, st, lost, load = asyncio.run(
            drive(host, port, request, args.connections, args.warmup, duration)
        )
        result = summarize(t, lat, st, lost, load, duration, args.window or max(duration / 60, 1.0))
        result["load_average_before_after"] = [load_before[0], os.getloadavg()[0]]
        if args.wrk and shutil.which("wrk"):
            result["wrk"] = run_wrk(host, port, args, token)
    finally:
        if proc is not None:
            stop_server(proc)
    print(f"{label}: {result['req_per_s']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p95 "
          f"{result['p95_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, {result['failed']} failed")  # fmt: skip
    return result


def run_wrk(host: str, port: int, args, token: str) -> dict:
    """wrk (C, two threads) with the same request, as a cross-check of the Python driver."""
    body = sample_body().decode()
    script = (f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\nwrk.headers["Content-Type"] = '
              f'"application/json"\nwrk.headers["Authorization"] = "Bearer {token}"\n')  # fmt: skip
    path = os.path.join(args.out, ".wrk_post.lua")
    with open(path, "w") as f:
        f.write(script)
    cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{int(args.wrk)}s", "--latency", "-s", path,
           f"http://{host}:{port}{args.path}"]  # fmt: skip
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
    return (f"| {label} | {r['duration_s']:.0f} | {r['req_per_s']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | {r['failed']} |")  # fmt: skip


def markdown(results: dict, figure_name: str) -> str:
    """The results/README.md fragment for one load test: measured numbers beside the paper's Figure 4."""
    model, echo = results["runs"]["model"], results["runs"].get("echo")
    cfg = results["config"]
    json_name = figure_name.replace("figure4_", "").replace(".png", ".json")
    lines = [
        f"## Figure 4: latency over a {model['duration_s'] / 60:.0f}-minute run (`{figure_name}`)",
        "",
        "The paper's Figure 4 shows latency rising roughly linearly from ~150 ms to over 200 ms and "
        "does not say how it was measured. Ours: the real server (`gan-jax serve`, one worker) over "
        f"loopback, {cfg['connections']} closed-loop keep-alive clients sending single-case `POST "
        f"{cfg['path']}` requests, on {results['machine']['cpu_count']} CPU cores shared by client "
        f"and server; every request's latency recorded (`{json_name}`).",
        "",
        "| server | s | requests/s | p50 ms | p95 ms | p99 ms | max ms | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        _row("paper pipeline", model),
        *([_row("echo model (no model call)", echo)] if echo else []),
        "",
    ]
    if "last_vs_first_minute_p99" in model:
        first, last = model["first_minute"]["p99_ms"], model["last_minute"]["p99_ms"]
        lines += [
            f"- p99 in the first / last minute: {first:.2f} / {last:.2f} ms (ratio {last / first:.2f})."
        ]
    if "wrk" in model:
        w = model["wrk"]
        p50, p99 = w.get("p50_ms", float("nan")), w.get("p99_ms", float("nan"))
        lines += [f"- wrk cross-check (`{w['command']}`): {w['req_per_s']:,.0f} requests/s, "
                  f"p50 {p50:.2f} ms, p99 {p99:.2f} ms."]  # fmt: skip
    before, after = model["load_average_before_after"]
    lines += [
        f"- 1-min load average before / after: {before:.2f} / {after:.2f} (client and server keep about "
        "2 busy; more means other jobs shared the machine).",
        f"- Regenerate: `python {results['command']}` (commit `{results['git_commit'][:12]}`).",
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
    ax.set_title(f"Figure 4: single-case requests, {cfg['connections']} connections over loopback, "
                 f"{os.cpu_count()} CPU cores", fontsize=10)  # fmt: skip
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


def main(argv=None) -> int:
    args = parse_args(argv)
    if not (args.bundle or args.url):
        raise SystemExit("pass --bundle (start a server) or --url (use a running one)")
    sys.path.insert(0, ROOT)
    from gan_jax import runtime

    os.makedirs(args.out, exist_ok=True)
    runs = {"model": run_one(args, "model", args.duration, echo=False)}
    if args.echo_duration > 0 and not args.url:
        runs["echo"] = run_one(args, "echo model", args.echo_duration, echo=True)
    results = {
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT), *(argv or sys.argv[1:])]),
        "config": {k: v for k, v in vars(args).items() if k != "token"},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },  # fmt: skip
        "git_commit": runtime.git_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": runs,
    }
    suffix = f"_{args.tag}" if args.tag else ""
    names = (f"latency{suffix}.json", f"figure4_latency{suffix}.png", f"latency{suffix}.md")
    with open(os.path.join(args.out, names[0]), "w") as f:
        json.dump(results, f, indent=1)
    figure(results, os.path.join(args.out, names[1]))
    with open(os.path.join(args.out, names[2]), "w") as f:
        f.write(markdown(results, names[1]))
    print(f"wrote {', '.join(os.path.join(args.out, n) for n in names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
