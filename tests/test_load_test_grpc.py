"""benchmarks/load_test.py --grpc / --protocol both (issue 15 §4): short real runs against
`gan-jax serve --grpc-port` with a tiny bundle, failures counted (a wrong token fails every
call), and the side-by-side table written from known summaries."""

import asyncio
import json
import sys
import time

import numpy as np
import pytest

from benchmarks import load_test as load_test_module


@pytest.fixture(scope="module")
def load_test():
    return load_test_module


def check_run(run):
    assert run["requests"] > 0 and run["failed"] == 0 and run["connections_lost"] == 0
    assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"]
    assert sum(w["requests"] for w in run["windows"]) == run["requests"]
    assert run["windows"][0]["server_rss_mb"] > 10
    assert 1 < run["server_cpu_us_per_request"] < 1e5  # read from /proc: some, not absurd


def test_short_grpc_run_against_a_real_server(load_test, tiny_bundle_export, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchmarks/load_test.py"])
    out = tmp_path / "out"
    args = [
        "--bundle",
        str(tiny_bundle_export[0]),
        "--grpc",
        "--duration",
        "2",
        "--echo-duration",
        "1",
        "--warmup",
        "0.5",
        "--connections",
        "2",
        "--out",
        str(out),
    ]
    assert load_test.main(args) == 0
    record = json.loads((out / "latency_grpc.json").read_text())
    assert record["config"]["protocol"] == "grpc" and set(record["runs"]) == {"model", "echo"}
    for run in record["runs"].values():
        check_run(run)
        assert run["protocol"] == "grpc"
    assert record["versions"]["grpcio"] != "not installed" and record["versions"]["jax"]
    text = (out / "latency_grpc.md").read_text()
    assert "Figure 4 over gRPC" in text and "`ModelInfer`" in text and "| paper pipeline | 2 |" in text
    assert (out / "figure4_latency_grpc.png").stat().st_size > 1000


def test_side_by_side_run(load_test, tiny_bundle_export, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchmarks/load_test.py"])
    out = tmp_path / "out"
    args = [
        "--bundle",
        str(tiny_bundle_export[0]),
        "--protocol",
        "both",
        "--duration",
        "2",
        "--echo-duration",
        "0",
        "--warmup",
        "0.5",
        "--connections",
        "2",
        "--out",
        str(out),
    ]
    assert load_test.main(args) == 0
    record = json.loads((out / "latency_http_vs_grpc.json").read_text())
    assert set(record["runs"]) == {"http", "grpc"}
    for proto, run in record["runs"].items():
        check_run(run)
        assert run["protocol"] == proto
    text = (out / "latency_http_vs_grpc.md").read_text()
    assert "| HTTP | 2 |" in text and "| gRPC | 2 |" in text and "gRPC / HTTP: throughput" in text
    assert "The server's own CPU per request" in text
    # --report-only rewrites the same fragment from the JSON alone
    (out / "latency_http_vs_grpc.md").unlink()
    assert load_test.main(["--report-only", str(out / "latency_http_vs_grpc.json")]) == 0
    assert (out / "latency_http_vs_grpc.md").read_text() == text


def test_grpc_failures_are_counted(load_test, tiny_bundle_export):
    """A wrong token: every call is UNAUTHENTICATED and every one counts as failed (a driver that
    recorded them as successes, or not at all, would report a healthy server)."""
    from test_serve import TOKEN, free_port, running_both

    from gan_jax.serve import DataPlane, ServeSettings, from_bundle

    port = free_port()
    settings = ServeSettings(token=TOKEN, max_batch=8, grpc_port=port, grpc_host="127.0.0.1")
    plane = DataPlane(from_bundle(tiny_bundle_export[1], max_batch=8), settings)
    request = load_test.grpc_request("gan_jax")
    with running_both(plane):
        target = f"127.0.0.1:{port}"
        load_test.check_grpc_answer(target, request, TOKEN)  # the right token answers
        recorder, lost, _ = asyncio.run(load_test.drive_grpc(target, request, "wrong", 2, 0.2, 1.0, 0.5))
    total = recorder.total()
    assert total.count > 0 and sum(recorder.failed) == total.count and lost == 0


def test_side_by_side_table_from_known_summaries(load_test):
    runs = {}
    for name, latency in (("http", 2e-3), ("grpc", 1e-3)):
        r = load_test.Recorder(10.0, 5.0)
        for t in np.arange(0, 10, latency / 2):  # two clients' worth: 2 / latency requests a second
            r.record(float(t), latency, 200)
        # half a core of client CPU, and server CPU of 100 µs a request (0.1 or 0.2 s a second)
        samples = [(float(t), 1.5, 0.5 * t, 40.0, 90.0, 1e-4 * t / latency * 2) for t in range(11)]
        runs[name] = load_test.summarize(r, 0, samples)
        runs[name]["load_average_before_after"] = [1.0, 2.0]
    results = {
        "command": "scripts/load_test.py --protocol both",
        "git_commit": "0123456789abcdef",
        "config": {"connections": 2, "path": "/predict"},
        "machine": {"cpu_count": 2},
        "runs": runs,
        "created": time.strftime("%Y"),
    }
    text = load_test.markdown_side_by_side(results)
    assert "| HTTP | 10 | 1,000 | 2.00 | 2.00 | 2.00 | 2.0 | 0 | 100 | 500 | 1.00 / 1.50 / 2.00 |" in text
    assert "| gRPC | 10 | 2,000 | 1.00 | 1.00 | 1.00 | 1.0 | 0 | 100 | 250 | 1.00 / 1.50 / 2.00 |" in text
    assert "throughput 2.00×, p50 0.50×, p99 0.50×" in text
