"""benchmarks/bench_scale.py and scripts/accelerator_check.sh on CPU: the dry run of the GPU
script runs every step tiny and writes every result. Not a timed test: no speed is asserted."""

import json
import os

import pytest

from benchmarks import bench_scale

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_bench():
    return bench_scale


def test_run_counts_must_be_whole_settings_times_folds():
    with pytest.raises(SystemExit):
        _load_bench().parse_args(["--sizes", "15"])


def test_quick_steps_are_not_scaled_and_full_ones_are_said_to_be():
    bench = _load_bench()
    full = bench.bench_config(bench.parse_args([]))
    assert (full.schedule.ae_steps, full.schedule.gan_steps) == (40, 60)  # 0.1 × the paper's 400 + 600
    assert full.schedule.log_every == 60  # one chunk (one compiled call) per phase


def test_block_sizes_parse_as_train_runs_takes_them():
    bench = _load_bench()
    args = bench.parse_args(["--block-runs", "none", "--block-sizes", "none,4,auto"])
    assert args.block_runs is None and args.block_sizes == [None, 4, "auto"]
    assert bench.parse_args([]).block_runs == "auto"
    for bad in ("0", "-2", "big"):
        with pytest.raises(SystemExit):
            bench.parse_args(["--block-runs", bad])


def test_a_run_stopped_early_renders_what_it_measured_and_names_the_rest():
    """Bug caught: a partial record (parts are written as they finish) that cannot be rendered,
    or that shows a missing part as if it had been measured."""
    bench = _load_bench()
    rec = {
        "experiment": "paper",
        "steps_scale": 1.0,
        "config": {"ae_steps": 400, "gan_steps": 600},
        "full_steps": {"ae_steps": 400, "gan_steps": 600},
        "device": {"count": 2, "kind": "cpu"},
        "host": {"cpu_count": 2},
        "command": "python -m benchmarks.bench_scale",
        "git_commit": "0" * 40,
        "block_runs": "auto",
        "block_runs_per_device": 10,
        "load_average": {"before": [1.0, 1.0, 1.0]},
        "runs_per_call": [
            {
                "runs": 10,
                "settings": 1,
                "n_blocks": 1,
                "first_call_s": 3.0,
                "steady_call_s": 1.0,
                "runs_per_s": 10.0,
                "cpu_s_per_run": 0.2,
                "est_bytes": 1e6,
                "load_before": [1.0, 1.0, 1.0],
            }
        ],
        "blocks_skipped": "blocks are off by default on gpu; pass --block-sizes",
    }
    md = bench.markdown(rec)
    assert "| 10 | 1 | 1 | 3.0 | 1.0 | 10.0 | 0.2000 |" in md
    assert "(a) devices: not measured (the run stopped before it)" in md
    assert "(c) one call vs one call per setting: not measured (the run stopped before it)" in md
    assert "(d) block sizes: not measured (blocks are off by default on gpu" in md


@pytest.mark.timeout(900)  # it took 260 s at load 17 on 2 cores; bounded by the subprocess timeout
def test_accelerator_check_dry_run_writes_every_result(accelerator_dry_run):
    """Bugs caught: a step of the GPU script that fails or writes nothing (the script is only
    run for real on a GPU machine, so CI must prove every step works)."""
    out, proc = accelerator_dry_run
    summary = json.loads((out / "summary.json").read_text())
    failed = [s for s in summary["steps"] if s.get("rc", 0) != 0]
    assert proc.returncode == 0 and not failed, (failed, proc.stdout[-2000:])
    assert {s["step"] for s in summary["steps"]} >= {
        "devices",
        "tests",
        "bench_scale",
        "energy",
        "bench_images",
    }
    rec = json.loads((out / "bench_scale" / "bench_scale.json").read_text())
    assert rec["devices"][0]["per_run_s"] > 0 and rec["runs_per_call"][0]["runs_per_s"] > 0
    s = rec["sweep_vs_loop"]
    assert (
        s["one_call_first_s"] > 0 and s["loop_per_setting_s"] > 0 and len(rec["load_average"]["before"]) == 3
    )
    assert "step counts ×" in (out / "bench_scale" / "bench_scale.md").read_text()
    assert [r["block_runs"] for r in rec["blocks"]] == ["none", "auto", 2]
    assert (out / "energy" / "energy.json").exists()
    images = json.loads((out / "bench_images" / "bench_images.json").read_text())
    assert images["quick"] and images["vendor_peak"]["assumed"]
    assert images["dtypes"]["bfloat16"]["phases"]["gan"]["fit"]["images_per_s"] > 0
