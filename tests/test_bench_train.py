"""benchmarks/bench_train.py: a quick run writes JSON and Markdown whose numbers are positive, whose
speed ratios say what resources they compare, whose compile times are never negative, and whose
Markdown numbers are the JSON's. Not a timed test: no speed is asserted."""

import json
import os
import re

import jax
import jax.numpy as jnp
import pytest

from benchmarks import bench_train as bench


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # The session's persistent cache (conftest): JAX reads its cache folder once per process.
    argv = [
        "--quick",
        "--repeats",
        "1",
        "--loop-runs",
        "1",
        "--sklearn-runs",
        "2",
        "--cache-dir",
        os.environ["GAN_JAX_CACHE_DIR"],
        "--out",
        str(out),
    ]
    bench.main(argv)
    return json.loads((out / "bench_train.json").read_text()), (out / "bench_train.md").read_text()


def test_every_timing_and_count_is_positive(quick_run):
    """Catches a trainer that was not timed, a lost field, or a zero/negative measurement."""
    rec, _ = quick_run
    fields = {
        "fused": [
            "cpu_s_per_run",
            "runs_per_s",
            "wall_s_per_run",
            "cores_busy",
            "first_call_s",
            "first_call_compile_s",
            "after_clear_caches_s",
            "after_clear_caches_compile_s",
            "achieved_flops_per_s",
        ],
        "loop": ["cpu_s_per_run", "runs_per_s", "wall_s_per_run", "cores_busy", "first_run_s", "compile_s"],
        "sklearn": ["cpu_s_per_run", "runs_per_s", "wall_s_per_fit_in_worker", "cores_busy", "epochs"],
    }
    for section, names in fields.items():
        for name in names:
            value = rec[section][name]
            assert value is not None and min(value if isinstance(value, list) else [value]) > 0, (
                section,
                name,
            )
    assert rec["flops_per_run"] > 0
    assert rec["fused"]["runs"] == 4 and rec["loop"]["runs_timed"] == 1 and rec["sklearn"]["fits_timed"] == 2
    assert rec["sklearn"]["early_stopped"] is False  # every epoch of (c) ran
    assert rec["loop"]["max_abs_diff_disc_params_vs_fused"] < 1e-3  # (b) trains the same model as (a)
    assert (
        rec["fused"]["compile_in_timed_calls_s"] == 0 == rec["loop"]["compile_in_timed_runs_s"]
    )  # no recompiles
    assert rec["targets"]["applies"] is False  # a quick run is no evidence for the targets


def test_ratios_compare_equal_resources_and_say_so(quick_run):
    """Catches the old headline: a wall-time ratio of all cores (ours) against one (scikit-learn)."""
    rec, md = quick_run
    cores = len(os.sched_getaffinity(0))
    eq = rec["comparisons"]["equal_cores_runs_per_s"]
    assert eq["cores"] == rec["fused"]["cores"] == rec["sklearn"]["workers"] == cores
    assert eq["fused_vs_sklearn"] == pytest.approx(rec["fused"]["runs_per_s"] / rec["sklearn"]["runs_per_s"])
    cpu = rec["comparisons"]["cpu_s_per_run"]
    assert cpu["fused_vs_sklearn"] == pytest.approx(
        rec["sklearn"]["cpu_s_per_run"] / rec["fused"]["cpu_s_per_run"]
    )
    assert "**CPU-seconds per run** (equal resources)" in md
    assert f"**Runs per second at equal cores** ({cores} cores each, (c) as {cores} processes)" in md
    assert "NOT at equal cores" in md
    assert "Whole study" not in md and "whole `gan-jax reproduce` is timed by that command" in md
    assert rec["measures"].startswith("training only")


def test_markdown_numbers_are_the_jsons_and_the_load_is_stated(quick_run):
    """Catches a Markdown figure typed in or computed apart from the JSON written with it."""
    rec, md = quick_run
    a, load = rec["fused"], rec["load_average"]
    assert "4-run training of the paper config (`make_runs` + `train_runs`, incl. init)" in md
    assert f"{a['first_call_s']:.1f} s (compilation {a['first_call_compile_s']:.2f} s)" in md
    for section in ("fused", "loop", "sklearn"):
        assert f"| {rec[section]['cpu_s_per_run']:.4f} | {rec[section]['runs_per_s']:.2f} |" in md
    assert f"Machine load (1-min load average): {load['before'][0]:.2f} before" in md
    assert len(load["before"]) == 3 and load["cores"] == len(os.sched_getaffinity(0))
    assert load["oversubscribed"] == (load["max_1min"] > load["cores"])
    assert ("pessimistic" in md) == load["oversubscribed"]


def test_no_negative_compile_time_anywhere(quick_run):
    """Catches compile time computed as first call − steady call, which load can make negative."""
    rec, md = quick_run
    for section in ("fused", "loop"):
        for name, value in rec[section].items():
            if "compile" in name:
                assert value is None or value >= 0, (section, name, value)
    assert not re.search(r"(?<![\w-])-\d", md), "a negative number in the Markdown"
    rec = json.loads(json.dumps(rec))
    rec["fused"]["first_call_compile_s"] = None  # JAX recorded no compile events
    assert "compilation not measured" in bench.markdown(rec)


def test_compile_clock_counts_overlapping_spans_once_and_ignores_other_events():
    """Catches double counting nested spans, counting unrelated events, or a missed compile."""
    trace, compile_ = bench.COMPILE_EVENTS[0], bench.COMPILE_EVENTS[2]
    with bench.compile_clock() as seconds:
        jax.monitoring.record_event_time_span(trace, 10.0, 12.0)
        jax.monitoring.record_event_time_span(compile_, 11.0, 13.0)  # overlaps: 10..13 = 3 s
        jax.monitoring.record_event_time_span("/jax/some/other_event", 0.0, 100.0)
        jax.monitoring.record_event_time_span(compile_, 20.0, 20.5)
    assert seconds == [pytest.approx(3.5)]
    f = jax.jit(lambda v: jnp.sin(v) * 3.25 + 0.125)  # a program no other test compiles
    with bench.compile_clock() as first:
        f(jnp.arange(7.0)).block_until_ready()
    with bench.compile_clock() as again:
        f(jnp.arange(7.0)).block_until_ready()
    assert first[0] > 0 and again[0] == 0
