"""The benchmark scripts whose numbers the README quotes: each writes its results file with
the command, the commit and the machine's load average, and measures what it says."""

import json
import os
import sys

import pytest

from benchmarks import bench_naive_fastapi, load_test
from gan_jax.artifacts import records


def test_naive_fastapi_benchmark_serves_both_without_errors(tiny_bundle_export, tmp_path, monkeypatch):
    """Both servers answer every request with 200 (the naive app once answered 422 to all, and
    a throughput of errors was written as a result)."""
    monkeypatch.setattr(sys, "argv", ["benchmarks/bench_naive_fastapi.py"])
    record = bench_naive_fastapi.main(
        [
            "--bundle",
            str(tiny_bundle_export[0]),
            "--duration",
            "1",
            "--warmup",
            "0.3",
            "--connections",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    written = json.loads((tmp_path / "naive_fastapi.json").read_text())
    assert records.missing_record_keys(written, allow_dirty=True) == []
    assert written == json.loads(json.dumps(record))
    assert sorted(written["runs"]) == ["gan-jax serve", "naive FastAPI (sync handler, pydantic)"]
    for run in written["runs"].values():
        assert run["requests"] > 0 and run["failed"] == 0 and run["p50_ms"] > 0
        assert len(run["load_average_before_after"]) == 2
    assert written["command"].startswith("python -m benchmarks.bench_naive_fastapi --bundle")
    assert written["load_average"]["before"] and written["versions"]["jax"]  # the harness's record
    assert (tmp_path / "naive_fastapi.md").read_text().count("| 0 |") == 2  # no failed request


def test_naive_fastapi_benchmark_refuses_failed_requests(tiny_bundle_export, tmp_path, monkeypatch):
    """Requests the server rejects (here: a case without features) stop the benchmark instead
    of being timed as if they were predictions."""
    monkeypatch.setattr(load_test, "sample_body", lambda: b'{"features": {}}')
    with pytest.raises(RuntimeError, match="failed requests"):
        bench_naive_fastapi.main(
            [
                "--bundle",
                str(tiny_bundle_export[0]),
                "--duration",
                "0.5",
                "--warmup",
                "0",
                "--connections",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
    assert not (tmp_path / "naive_fastapi.json").exists()


def test_checkpoint_benchmark_times_every_target(tmp_path):
    """Local (async and sync), S3 and GCS on loopback: every save is restored at the step it
    was saved (the script checks), and the timings are positive."""
    before = dict(os.environ)
    from benchmarks import bench_checkpoint as bench

    record = bench.main(["--quick", "--repeats", "2", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "checkpoint_timings.json").read_text())
    assert sorted(written["targets"]) == ["gs", "local-async", "local-sync", "s3"]
    for t in written["targets"].values():
        assert t["restore_s"]["n"] == 2 and 0 < t["save_total_s"]["min"] <= t["save_total_s"]["max"]
    assert written["state"]["bytes"] > 0 and written["state"]["runs"] == record["state"]["runs"]
    assert len(written["machine"]["load_average_1m_before_after"]) == 2
    assert dict(os.environ) == before  # the loopback servers' endpoints do not leak out
