"""scripts/bench_train.py end to end on a tiny config: the JSON and Markdown are written and every
timing/FLOP field is positive. Not a timed test: no speed is asserted."""

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "bench_train", os.path.join(ROOT, "scripts", "bench_train.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_train_quick_writes_positive_numbers(tmp_path):
    bench = _load_script()
    # The session's persistent cache (conftest): JAX reads its cache folder once per process.
    argv = ["--quick", "--loop-runs", "1", "--sklearn-runs", "1", "--repeats", "1", "--matmul-size", "64",
            "--cache-dir", os.environ["GAN_JAX_CACHE_DIR"], "--out", str(tmp_path)]  # fmt: skip
    bench.main(argv)
    record = json.loads((tmp_path / "bench_train.json").read_text())
    assert (tmp_path / "bench_train.md").read_text().count("| (") == 3
    positive = [
        ("fused", "per_run_s"), ("fused", "steady_wall_s"), ("fused", "first_call_cold_cache_s"),
        ("fused", "first_call_warm_cache_s"), ("loop", "per_run_s"), ("loop", "run_times_s"),
        ("sklearn", "per_run_s"), ("sklearn", "epochs"), ("speedup", "fused_vs_loop"),
        ("speedup", "fused_vs_sklearn"), ("flops", "total"), ("flops", "achieved_flops_per_s"),
        ("targets", "study_wall_s"), ("fused", "cpu_s_per_run"), ("loop", "cpu_s_per_run"),
        ("sklearn", "cpu_s_per_run"), ("speedup", "cpu_fused_vs_loop"),
    ]  # fmt: skip
    for section, field in positive:
        value = record[section][field]
        assert min(value if isinstance(value, list) else [value]) > 0, (section, field, value)
    assert record["flops"]["matmul"]["peak_flops_per_s"] > 0
    assert len(record["rounds"]) == 1 and record["rounds"][0]["fused_vs_loop"] > 0
    assert record["sklearn"]["epochs_run"] == record["sklearn"]["epochs"]  # no early stop
    assert record["targets"]["applies"] is False  # a quick run is no evidence for the targets
    assert record["loop"]["max_abs_diff_disc_params_vs_fused"] < 1e-3  # (b) trains the same model
    assert len(record["load_average"]["before"]) == 3 and record["git_commit"]
    assert {"jax", "flax", "scikit-learn"} <= set(record["versions"])
