"""The one benchmark run record and writer (benchmarks/harness.py)."""

import json
import os
import pathlib

import numpy as np
import pytest

from benchmarks import harness


def test_record_names_the_rerun_command_code_versions_device_and_load():
    rec = harness.record(["--quick", "--out", "x"], module="benchmarks.bench_demo")
    assert rec["command"] == "python -m benchmarks.bench_demo --quick --out x"
    assert rec["git_commit"] and rec["dirty"] == rec["git_commit"].endswith("+dirty")
    assert {"jax", "jaxlib", "numpy"} <= set(rec["versions"])
    assert rec["device"]["platform"] == "cpu" and rec["device"]["count"] >= 1
    assert len(rec["load_average"]["before"]) == 3 and rec["load_average"]["cores"] >= 1


def test_record_defaults_to_the_calling_module():
    assert harness.record([])["command"] == f"python -m {__name__}"


def test_finish_takes_the_peak_load_and_flags_oversubscription():
    started = harness.record([], module="m")
    rec = harness.finish(started, load_samples=[started["load_average"]["cores"] + 1000.0])
    load = rec["load_average"]
    assert load["max_1min"] == load["cores"] + 1000.0 and load["oversubscribed"]
    assert len(load["after"]) == 3 and rec["wall_s"] >= 0
    assert "after" not in started["load_average"], "the started record stays open for later writes"


def test_write_puts_json_and_markdown_side_by_side(tmp_path):
    rec = harness.finish(harness.record([], module="m"))
    rec["value"] = np.float32(0.5)
    rec["table"] = np.arange(3)
    json_uri, md_uri = harness.write(str(tmp_path / "out"), "demo", rec, "# demo\n")
    assert json_uri == os.path.join(str(tmp_path / "out"), "demo.json")
    back = json.loads(pathlib.Path(json_uri).read_text())
    assert back["value"] == 0.5 and back["table"] == [0, 1, 2] and back["command"] == "python -m m"
    assert pathlib.Path(md_uri).read_text() == "# demo\n"


def test_write_refuses_an_unfinished_record(tmp_path):
    with pytest.raises(ValueError, match="never finished"):
        harness.write(str(tmp_path), "demo", harness.record([], module="m"), "")


def test_rewrite_markdown_rebuilds_the_summary_from_the_json_alone(tmp_path):
    rec = harness.finish(harness.record([], module="m"))
    json_uri, md_uri = harness.write(str(tmp_path), "demo", rec, "old summary\n")
    back = harness.rewrite_markdown(json_uri, lambda r: f"made by {r['command']}\n")
    assert back["command"] == "python -m m"
    assert pathlib.Path(md_uri).read_text() == "made by python -m m\n"


def test_a_recorded_command_of_a_moved_script_reads_as_today_s_command():
    """Results recorded before a benchmark moved from scripts/ name the old file; the README and
    the load test's Markdown must show the command that runs it now."""
    old = "scripts/load_test.py --bundle runs/bundle --tag soak"
    assert harness.current_command(old) == "python -m benchmarks.load_test --bundle runs/bundle --tag soak"
    assert harness.current_command("python scripts/bench_naive_fastapi.py --bundle b") == (
        "python -m benchmarks.bench_naive_fastapi --bundle b"
    )
    assert (
        harness.current_command("python -m benchmarks.bench_train --quick")
        == "python -m benchmarks.bench_train --quick"
    )
    assert harness.current_command("scripts/other.py") == "python scripts/other.py"  # not moved: kept
