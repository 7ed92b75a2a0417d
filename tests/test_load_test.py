"""scripts/load_test.py: per-window summaries and the soak's first/last-minute check from known
latencies, the Markdown fragment and Figure 4 written from them, and a short real run against a
tiny bundle served by `gan-jax serve`."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def load_test():
    spec = importlib.util.spec_from_file_location("load_test", os.path.join(ROOT, "scripts", "load_test.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_summary_windows_and_minutes(load_test):
    # 3 minutes, one request every 10 ms; latency 1 ms, except 5 ms in the last minute.
    times = np.arange(0, 180, 0.01)
    latencies = np.where(times >= 120, 5e-3, 1e-3)
    statuses = np.full(times.shape, 200)
    statuses[:3] = 503
    s = load_test.summarize(times, latencies, statuses, 0, [(0.5, 1.0)], 180.0, 60.0)
    assert s["requests"] == times.size and s["failed"] == 3
    assert [w["requests"] for w in s["windows"]] == [6000, 6000, 6000]
    assert s["windows"][0]["load_avg_1m"] == 1.0 and s["windows"][1]["load_avg_1m"] is None
    assert s["first_minute"]["p99_ms"] == pytest.approx(1.0)
    assert s["last_vs_first_minute_p99"] == pytest.approx(5.0)
    assert s["req_per_s"] == pytest.approx(100.0)


def test_markdown_and_figure_from_a_summary(load_test, tmp_path):
    times = np.arange(0, 150, 0.01)
    run = load_test.summarize(times, np.full(times.shape, 2e-3), np.full(times.shape, 200), 0, [],
                              150.0, 10.0)  # fmt: skip
    run["load_average_before_after"] = [0.1, 1.9]
    results = {"command": "scripts/load_test.py --tag soak", "git_commit": "0123456789abcdef",
               "config": {"connections": 8, "path": "/predict"}, "machine": {"cpu_count": 2},
               "runs": {"model": run}}  # fmt: skip
    text = load_test.markdown(results, "figure4_latency_soak.png")
    assert "| paper pipeline | 150 | 100 | 2.00 | 2.00 | 2.00 | 2.0 | 0 |" in text
    assert "(ratio 1.00)" in text and "`latency_soak.json`" in text and "echo" not in text
    load_test.figure(results, str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_short_run_against_a_real_server(load_test, tiny_bundle_export, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["scripts/load_test.py"])
    args = ["--bundle", str(tiny_bundle_export[0]), "--duration", "2", "--echo-duration", "1", "--warmup",
            "0.5", "--connections", "2", "--out", str(tmp_path / "out")]  # fmt: skip
    assert load_test.main(args) == 0
    record = json.loads((tmp_path / "out" / "latency.json").read_text())
    for run in record["runs"].values():
        assert run["requests"] > 0 and run["failed"] == 0 and run["connections_lost"] == 0
        assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"]
    assert "| paper pipeline | 2 |" in (tmp_path / "out" / "latency.md").read_text()
    assert (tmp_path / "out" / "figure4_latency.png").stat().st_size > 1000
