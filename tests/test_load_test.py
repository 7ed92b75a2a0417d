"""benchmarks/load_test.py: the latency histogram against numpy, per-window summaries and the
soak's first/last-minute check from known latencies, the Markdown fragment and Figure 4 written
from them, and a short real run against a tiny bundle served by `gan-jax serve`."""

import json
import sys
import tracemalloc

import numpy as np
import pytest

from benchmarks import load_test as load_test_module
from gan_jax.artifacts import records


@pytest.fixture(scope="module")
def load_test():
    return load_test_module


def recorded(load_test, times, latencies, statuses, duration, window):
    r = load_test.Recorder(duration, window)
    for t, latency, status in zip(times, latencies, statuses):
        r.record(float(t), float(latency), int(status))
    return r


@pytest.mark.parametrize("seed", [0, 1])
def test_histogram_percentiles_match_numpy(load_test, seed):
    """Catches an off-by-one bucket, a wrong rank or the bucket edge read back instead of its
    middle: on 200k log-normal latencies (0.2 ms to ~1 s) every percentile is within the
    histogram's stated relative error of numpy's exact one."""
    rng = np.random.default_rng(seed)
    # An odd count, so no q * n / 100 is a whole number that float rounding could tip either way.
    values = np.exp(rng.normal(np.log(1e-3), 0.8, 200_003))
    h = load_test.LatencyHistogram()
    for v in values:
        h.add(float(v))
    for q in (1, 10, 50, 90, 95, 99, 99.9, 100):
        exact = np.percentile(values, q, method="inverted_cdf")
        assert h.percentile(q) == pytest.approx(exact, rel=h.rel_error), q
    assert h.count == values.size and h.max == values.max()
    assert h.total / h.count == pytest.approx(values.mean(), rel=1e-9)
    assert len(h.counts) == h.n_buckets  # fixed size, whatever was added


def test_histogram_small_samples_and_edges(load_test):
    """Exact ranks on tiny samples (p50 of 1..4 ms is 2 ms, not 3), values outside the bucket
    range, merging, and bad arguments."""
    h = load_test.LatencyHistogram(rel_error=0.001)
    for v in (4e-3, 1e-3, 3e-3, 2e-3):
        h.add(v)
    assert h.percentile(50) == pytest.approx(2e-3, rel=1e-3)
    assert h.percentile(75) == pytest.approx(3e-3, rel=1e-3) and h.percentile(100) == 4e-3
    assert h.summary()["p50_ms"] == pytest.approx(2.0, rel=1e-3)
    edge = load_test.LatencyHistogram(lowest=1e-3, highest=1.0)
    edge.add(1e-5)
    assert edge.percentile(100) == 1e-5  # below the range: never reported above what was seen
    edge.add(50.0)
    assert edge.percentile(100) == 50.0 and edge.percentile(50) == 1e-3  # the range's edges
    same = load_test.LatencyHistogram()
    for _ in range(3):
        same.add(2e-3)
    assert same.percentile(50) == 2e-3  # clamped to [min, max]: a constant reads back exactly
    both = h.merge(load_test.LatencyHistogram(rel_error=0.001))
    assert both.count == 4 and both.percentile(50) == h.percentile(50)
    with pytest.raises(ValueError, match="different bucket layouts"):
        h.merge(load_test.LatencyHistogram())
    with pytest.raises(ValueError, match="no values"):
        load_test.LatencyHistogram().percentile(50)
    with pytest.raises(ValueError, match="percentile must be in"):
        h.percentile(0)
    assert load_test.LatencyHistogram().summary()["p99_ms"] is None


def test_recorder_memory_is_fixed(load_test):
    """The client must not grow with the run (a soak's latencies were kept in lists, 8 bytes a
    request and more): 100k more responses allocate no memory that stays."""
    r = load_test.Recorder(600.0, 10.0)
    for i in range(1000):  # every bucket and counter this test uses exists from here on
        r.record(i * 0.006, 1e-3, 500)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(100_000):
            r.record(6.0 + i * 0.0055, 1e-3, 500 if i % 2 else 200)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 10_000, f"the recorder kept {grown} bytes for 100k responses"
    assert r.total().count == 101_000 and sum(r.failed) == 51_000


def test_summary_windows_and_minutes(load_test):
    # 3 minutes, one request every 10 ms; latency 1 ms, except 5 ms in the last minute.
    times = np.arange(0, 180, 0.01)
    latencies = np.where(times >= 120, 5e-3, 1e-3)
    statuses = np.full(times.shape, 200)
    statuses[:3] = 503
    r = recorded(load_test, times, latencies, statuses, 180.0, 60.0)
    r.record(180.0, 9.0, 200)  # finished after the end: not counted
    r.record(-0.1, 9.0, 200)  # during the warm-up: not counted
    samples = [
        (0.5, 1.0, 0.0, 50.0, 80.0),
        (61.0, 2.0, 1.2, 50.0, 82.0),
        (121.0, 2.0, 2.4, 51.0, 90.0),
        (180.0, 2.0, 3.6, 51.0, 90.0),
    ]
    s = load_test.summarize(r, 0, samples)
    assert s["requests"] == times.size and s["failed"] == 3 and s["max_ms"] == pytest.approx(5.0)
    assert [w["requests"] for w in s["windows"]] == [6000, 6000, 6000]
    assert [w["failed"] for w in s["windows"]] == [3, 0, 0]
    assert [w["load_avg_1m"] for w in s["windows"]] == [1.0, 2.0, 2.0]
    # 1.2 s of client CPU from 0.5 s to 61 s, interpolated to the window 0-60 s
    assert s["windows"][0]["client_cpu_us_per_request"] == pytest.approx(1e6 * 1.2 * 59.5 / 60.5 / 6000)
    assert [w["server_rss_mb"] for w in s["windows"]] == [80.0, 82.0, 90.0]
    assert s["windows"][2]["p50_ms"] == pytest.approx(5.0, rel=0.005)
    assert s["first_minute"]["p99_ms"] == pytest.approx(1.0, rel=0.005)
    assert s["first_minute"]["req_per_s"] == pytest.approx(100.0)
    assert s["last_vs_first_minute_p99"] == pytest.approx(5.0, rel=0.01)
    assert s["last_vs_first_minute_p50"] == pytest.approx(5.0, rel=0.01)
    assert s["req_per_s"] == pytest.approx(100.0)


def test_partial_last_window_rate(load_test):
    """A run of 150 s in 60 s windows ends with a 30 s window: its rate is per 30 s, not 60."""
    times = np.arange(0, 150, 0.01)
    r = recorded(load_test, times, np.full(times.shape, 2e-3), np.full(times.shape, 200), 150.0, 60.0)
    s = load_test.summarize(r, 0, [])
    assert [w["req_per_s"] for w in s["windows"]] == pytest.approx([100.0, 100.0, 100.0])
    assert s["windows"][-1]["t_s"] == 135.0 and s["windows"][0]["load_avg_1m"] is None


def test_markdown_and_figure_from_a_summary(load_test, tmp_path):
    times = np.arange(0, 150, 0.01)
    r = recorded(load_test, times, np.full(times.shape, 2e-3), np.full(times.shape, 200), 150.0, 10.0)
    samples = [(float(t), 1.0, 0.015 * t, 40.0, 100.0 + t / 10) for t in range(151)]  # 150 µs a request
    run = load_test.summarize(r, 0, samples)
    run["load_average_before_after"] = [0.1, 1.9]
    results = {
        "command": "scripts/load_test.py --tag soak",
        "git_commit": "0123456789abcdef",
        "config": {"connections": 8, "path": "/predict"},
        "machine": {"cpu_count": 2},
        "runs": {"model": run},
    }
    text = load_test.markdown(results, "figure4_latency_soak.png")
    assert "| paper pipeline | 150 | 100 | 2.00 | 2.00 | 2.00 | 2.0 | 0 |" in text
    assert "p50 2.00 / 2.00 ms (ratio 1.00)" in text and "`latency_soak.json`" in text
    assert "client CPU per request in the first / last window 150 / 150 µs" in text
    assert "server memory 100 / 114 MiB" in text
    assert "within 0.5 %" in text and "echo" not in text
    load_test.figure(results, str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_short_run_against_a_real_server(load_test, tiny_bundle_export, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchmarks/load_test.py"])
    args = [
        "--bundle",
        str(tiny_bundle_export[0]),
        "--duration",
        "2",
        "--echo-duration",
        "1",
        "--warmup",
        "0.5",
        "--connections",
        "2",
        "--out",
        str(tmp_path / "out"),
    ]
    assert load_test.main(args) == 0
    record = json.loads((tmp_path / "out" / "latency.json").read_text())
    assert records.missing_record_keys(record, allow_dirty=True) == []
    for run in record["runs"].values():
        assert run["requests"] > 0 and run["failed"] == 0 and run["connections_lost"] == 0
        assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"]
        assert sum(w["requests"] for w in run["windows"]) == run["requests"]
        assert run["windows"][0]["server_rss_mb"] > 10 and run["windows"][0]["client_rss_mb"] > 10
    assert "| paper pipeline | 2 |" in (tmp_path / "out" / "latency.md").read_text()
    assert (tmp_path / "out" / "figure4_latency.png").stat().st_size > 1000
