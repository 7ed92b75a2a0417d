"""benchmarks/bench_conv_scan.py: a quick run (tiny config) times the image path's own steps alone,
in lax.scan and unrolled, trains the same parameters in all three, and writes Markdown whose
numbers are the JSON's. No speed is asserted."""

import json

import pytest

from benchmarks import bench_conv_scan as bench


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_conv_scan")
    bench.main(["--quick", "--out", str(out)])
    return json.loads((out / "bench_conv_scan.json").read_text()), (out / "bench_conv_scan.md").read_text()


def test_every_phase_and_variant_is_timed_and_trains_the_same_parameters(quick_run):
    """Catches a variant left out, a ratio not computed from its times, or a variant that trains
    other math (other keys, steps or state) than the step alone: then its speed says nothing."""
    rec, _ = quick_run
    assert set(rec["phases"]) == {"ae", "gan"} and rec["steps"] == 2
    for phase, r in rec["phases"].items():
        alone = r["alone"]["s_per_step"]
        for variant in bench.VARIANTS:
            v = r[variant]
            assert v["wall_s"] > 0 and v["first_call_s"] > 0, (phase, variant)
            assert v["s_per_step"] == pytest.approx(v["wall_s"] / rec["steps"])
            assert v["vs_alone"] == pytest.approx(v["s_per_step"] / alone)
        assert r["scan"]["while_loops"] > r["alone"]["while_loops"], phase  # the scan's own loop
        for variant, diff in r["max_abs_param_diff_vs_alone"].items():
            assert diff < 1e-5, (phase, variant, diff)


def test_markdown_is_the_json(quick_run):
    rec, md = quick_run
    for phase, r in rec["phases"].items():
        assert (
            f"| {phase} | {r['alone']['s_per_step']:.3f} | {r['scan']['s_per_step']:.3f} | "
            f"{r['unrolled']['s_per_step']:.3f} | {r['scan']['vs_alone']:.2f} | {r['unrolled']['vs_alone']:.2f} |"
        ) in md
    assert "jax-ml/jax issue 12868" in md and rec["git_commit"][:12] in md


def test_bad_step_counts_are_refused():
    for argv in (["--steps", "0"], ["--rows", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
