"""scripts/bench_scale.py and scripts/accelerator_check.sh on CPU: the dry run of the GPU
script runs every step tiny and writes every result. Not a timed test: no speed is asserted."""

import json
import os
import subprocess
import sys

import pytest
from script_loader import load_script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_bench():
    return load_script("bench_scale")


def test_run_counts_must_be_whole_settings_times_folds():
    with pytest.raises(SystemExit):
        _load_bench().parse_args(["--sizes", "15"])


def test_quick_steps_are_not_scaled_and_full_ones_are_said_to_be():
    bench = _load_bench()
    full = bench.bench_config(bench.parse_args([]))
    assert (full.ae_steps, full.gan_steps) == (40, 60)  # 0.1 × the paper's 400 + 600
    assert full.log_every == 60  # one chunk (one compiled call) per phase


@pytest.mark.timeout(900)  # it took 260 s at load 17 on 2 cores; bounded by the subprocess timeout
def test_accelerator_check_dry_run_writes_every_result(tmp_path):
    """Bugs caught: a step of the GPU script that fails or writes nothing (the script is only
    run for real on a GPU machine, so CI must prove every step works)."""
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": ROOT}
    proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "accelerator_check.sh"), "--dry-run",
                           "--out", str(tmp_path)], env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    out = tmp_path / "dry-run-cpu"
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
        s["one_call_first_s"] > 0 and s["loop_per_setting_s"] > 0 and len(rec["load_average"]["start"]) == 3
    )
    assert "step counts ×" in (out / "bench_scale" / "bench_scale.md").read_text()
    assert (out / "energy" / "energy.json").exists()
    images = json.loads((out / "bench_images" / "bench_images.json").read_text())
    assert images["quick"] and images["vendor_peak"]["assumed"]
    assert images["dtypes"]["bfloat16"]["phases"]["gan"]["fit"]["images_per_s"] > 0
