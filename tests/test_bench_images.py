"""benchmarks/bench_images.py: a quick run (tiny config, a tiny TFDS nuclei set, 8 CPU devices; the
accelerator script's dry-run step, run once per session in conftest.py) writes
JSON and Markdown whose rates and ratios are computed from the measured times, whose baseline
trains exactly the same model, and whose Markdown numbers are the JSON's. No speed is asserted."""

import copy
import json

import numpy as np
import pytest

from benchmarks import bench_images as bench

ASSUMED_CARD = "NVIDIA H200"  # exercises the GPU-only vendor-peak branch on CPU

# The dry run (every benchmark of the GPU script) may be made by the first test that asks for it.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def quick_run(accelerator_dry_run):
    """The dry run's bench_images step: `--quick --cache-dir <the session's cache>
    --vendor-peak-kind "NVIDIA H200"` (scripts/accelerator_check.sh): (record, its folder)."""
    out, proc = accelerator_dry_run
    path = out / "bench_images" / "bench_images.json"
    assert path.exists(), f"the dry run's bench_images step wrote nothing:\n{proc.stdout[-3000:]}"
    return json.loads(path.read_text()), path.parent


def _phases(rec):
    return [(d, p, r) for d, v in rec["dtypes"].items() for p, r in v["phases"].items()]


def test_every_trainer_dtype_and_phase_is_measured(quick_run):
    """Catches a dtype, phase or trainer left out, a zero/negative timing, or a recompile inside
    the timed steps."""
    rec, _ = quick_run
    assert set(rec["dtypes"]) == {"float32", "bfloat16"} and len(_phases(rec)) == 4
    for dtype, phase, r in _phases(rec):
        for trainer in ("fit", "loop"):
            t = r[trainer]
            assert t["images_per_s"] > 0 and t["compile_s"] > 0 and min(t["wall_s"]) > 0, (
                dtype,
                phase,
                trainer,
            )
            assert len(t["wall_s"]) == r["rounds"] == 1 and t["compile_in_timed_s"] == 0
        assert r["steps_per_round"] == 1  # quick: budget 0 -> --min-steps
        assert r["flops_per_step_model"] > 0 and r["replicated_work_factor"] > 0
        c = r["fused"]
        assert c["runs"] == 8 and c["steps_per_round"] == 1 and len(c["wall_s"]) == 1, (dtype, phase)
        assert c["images_per_s"] > 0 and c["compile_s"] > 0 and c["compile_in_timed_s"] == 0, (dtype, phase)
        assert c["flops_per_fused_step"] > 0 and c["measured"]
        # vmap over the runs' weights makes (c)'s convolutions grouped (read from its compiled step)
        assert 0 < c["grouped_convolutions_per_device"] <= c["convolutions_per_device"], (dtype, phase)
    assert rec["device"]["count"] == 8 and rec["device"]["platform"] == "cpu"
    assert rec["data"] == {
        "source": "nuclei:train:seed0",
        "images": 64,
        "image_shape": [8, 8, 3],
        "synthetic": True,
    }
    assert len(rec["load_average"]["before"]) == 3


def test_rates_and_ratios_are_computed_from_the_measured_times(quick_run):
    """Catches a typed or mis-derived number: each rate is recomputed here from the raw times."""
    rec, _ = quick_run
    batch = rec["config"]["schedule"]["batch_size"]
    for dtype, phase, r in _phases(rec):
        images = batch * r["steps_per_round"]
        for trainer in ("fit", "loop"):
            t = r[trainer]
            assert t["images_per_s"] == pytest.approx(images * len(t["wall_s"]) / sum(t["wall_s"]))
        assert r["fit_vs_loop"] == pytest.approx(r["fit"]["images_per_s"] / r["loop"]["images_per_s"])
        c = r["fused"]  # (c): runs × batch × its own steps per round
        fused_images = c["runs"] * batch * c["steps_per_round"]
        assert c["images_per_s"] == pytest.approx(fused_images * len(c["wall_s"]) / sum(c["wall_s"]))
        assert r["fused_vs_loop"] == pytest.approx(c["images_per_s"] / r["loop"]["images_per_s"])
        assert r["fused_vs_fit"] == pytest.approx(c["images_per_s"] / r["fit"]["images_per_s"])
        fused_steps_per_s = c["steps_per_round"] * len(c["wall_s"]) / sum(c["wall_s"])
        fused_ceiling = rec["dtypes"][dtype]["ceiling"]["flops_per_s"]
        assert c["mfu"] == pytest.approx(c["flops_per_fused_step"] * fused_steps_per_s / fused_ceiling)
        ceiling = rec["dtypes"][dtype]["ceiling"]
        assert ceiling["flops_per_s"] == max(ceiling["flops_per_s_all"])
        steps_per_s = r["steps_per_round"] * len(r["fit"]["wall_s"]) / sum(r["fit"]["wall_s"])
        assert r["mfu"] == pytest.approx(r["flops_per_step_model"] * steps_per_s / ceiling["flops_per_s"])
        peak = bench.vendor_peak(ASSUMED_CARD, dtype)
        assert r["mfu_vs_vendor_peak"] == pytest.approx(r["flops_per_step_model"] * steps_per_s / peak)
        tfds = rec["pipeline"]["tfds"]
        assert tfds["images_per_s"] == pytest.approx(tfds["batches"] * tfds["batch_size"] / tfds["wall_s"])
        assert rec["pipeline_vs_training"][f"{dtype}/{phase}"] == pytest.approx(
            tfds["images_per_s"] / r["fit"]["images_per_s"]
        )
    assert rec["pipeline_is_not_the_bottleneck"] == (min(rec["pipeline_vs_training"].values()) > 1)
    assert rec["vendor_peak"] == {
        "device_kind": ASSUMED_CARD,
        "assumed": True,
        "known": True,
        "source": bench.VENDOR_PEAK_SOURCE,
    }


def test_the_baseline_trains_exactly_the_same_model(quick_run):
    """Catches a baseline that is not the same step math, batches or keys as fit (a speed ratio
    between two different computations means nothing)."""
    rec, _ = quick_run
    for dtype, phase, r in _phases(rec):
        assert r["max_abs_diff_state_fit_vs_loop"] == 0.0, (dtype, phase)


def test_markdown_is_the_json_and_says_what_it_compares(quick_run):
    """Catches a Markdown figure typed in or computed apart from the JSON, a hidden bf16 slowdown
    on CPU, a vendor figure passed off as measured, and an unstated baseline."""
    rec, out = quick_run
    md = (out / "bench_images.md").read_text()
    for dtype, phase, r in _phases(rec):
        assert (
            f"| {dtype} | {phase} | {r['fit']['images_per_s']:.2f} | {r['loop']['images_per_s']:.2f} | "
            f"{r['fit_vs_loop']:.2f} |"
        ) in md
        assert f"{100 * r['mfu']:.1f} %" in md
        c = r["fused"]
        assert (
            f"| {dtype} | {phase} | {c['runs']} | {c['images_per_s']:.2f} | {r['fused_vs_loop']:.2f} | "
            f"{r['fused_vs_fit']:.2f} |"
        ) in md
        grouped = (
            f"{c['grouped_convolutions_per_device']} of {c['convolutions_per_device']} convolutions grouped"
        )
        assert f"{grouped}, {c['all_gathers_per_device']} all-gathers" in md
    assert "not measured, ASSUMED 'NVIDIA H200'" in md
    ratio = rec["bfloat16_vs_float32"]
    f32, bf16 = rec["dtypes"]["float32"], rec["dtypes"]["bfloat16"]
    assert ratio["ceiling"] == pytest.approx(bf16["ceiling"]["flops_per_s"] / f32["ceiling"]["flops_per_s"])
    assert ratio["gan"] == pytest.approx(
        bf16["phases"]["gan"]["fit"]["images_per_s"] / f32["phases"]["gan"]["fit"]["images_per_s"]
    )
    assert f"bfloat16 ÷ float32, measured here: matmul ceiling ×{ratio['ceiling']:.2f}" in md
    assert "bf16 is meant for GPU/TPU" in md and "this CPU's bf16 flags:" in md
    assert "reads every loss with float() (a host sync per step)" in md and "no prefetch" in md
    assert "INDEPENDENT models" in md and "ONE model data-parallel" in md
    assert f"{rec['load_average']['before'][0]:.2f} before" in md
    bench.main(["--render", str(out / "bench_images.json")])
    assert (out / "bench_images.md").read_text() == md


def test_vendor_peaks_match_only_their_own_card():
    """Catches "L40S" read as an L4, an H100 PCIe given the SXM peak, or a peak for a CPU."""
    assert bench.vendor_peak("NVIDIA H100 PCIe", "bfloat16") < bench.vendor_peak(
        "NVIDIA H100 80GB HBM3", "bfloat16"
    )
    assert bench.vendor_peak("NVIDIA L40S", "float32") != bench.vendor_peak("NVIDIA L4", "float32")
    assert bench.vendor_peak("NVIDIA L40", "float32") is None
    assert bench.vendor_peak("cpu", "float32") is None
    for _, peaks in bench.VENDOR_PEAK_TFLOPS:
        assert peaks["bfloat16"] > peaks["float32"]


def test_unsupported_dtype_or_step_bounds_are_refused():
    for argv in (
        ["--dtypes", "float16"],
        ["--min-steps", "5", "--max-steps", "2"],
        ["--rounds", "0"],
        ["--fused-phases", "ae,disc"],
        ["--fused-steps", "0"],
    ):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)


def test_progress_names_every_timed_call(quick_run):
    """A long run (tens of seconds a GAN step on 2 cores) says where its time goes: one stderr
    line per timed call of every dtype and phase: the first calls, (b)'s compilation and each
    round of (b), (a), (c). The dry run keeps each step's output in <out>/<step>.log."""
    _, folder = quick_run
    log = (folder.parent / "bench_images.log").read_text()
    whats = ("(a) first call", "(b) compiled", "(c) first call", "round 1 (b)", "round 1 (a)", "round 1 (c)")
    for dtype in ("float32", "bfloat16"):
        for phase in ("ae", "gan"):
            for what in whats:
                assert f"bench_images: {dtype} {phase} {what}" in log, (dtype, phase, what)


def test_a_phase_left_out_of_c_is_said_not_measured(quick_run):
    """Catches (c) rates made up (or a crash) for a phase that --fused-phases left out: its row
    and the JSON say "not measured" and why, and no (c) ratio is computed."""
    rec, _ = quick_run
    raw = {"fused": {"runs": 8, "steps": 1}, "rounds": [{"fused": None}], "flops": {"model": 1.0}}
    fused = bench.summarize_fused(raw, batch_size=8, ceiling=1.0)
    assert fused == {"measured": False, "why": "its phase is not in --fused-phases", "runs": 8}
    rec = copy.deepcopy(rec)
    gan = rec["dtypes"]["float32"]["phases"]["gan"]
    gan.update(fused=fused, fused_vs_loop=None, fused_vs_fit=None)
    md = bench.markdown(rec)
    assert "| float32 | gan | 8 | not measured: its phase is not in --fused-phases |" in md
    assert "- float32 gan: cores busy" in md and "(c) not measured;" in md


def test_fused_steps_and_phases_decide_what_c_runs(monkeypatch):
    """Catches --fused-steps ignored (c would run steps ÷ runs) or a phase left out of
    --fused-phases still timed: the trainers are stand-ins that record what (c) was asked to run."""
    import types

    import jax.numpy as jnp

    fused_calls = []
    timing = {"wall": 1.0, "compile": 0.0, "load_1min": 0.0}
    monkeypatch.setattr(bench, "fit_steps", lambda *a: jnp.zeros(()))
    monkeypatch.setattr(bench, "loop_trainer", lambda *a: (lambda s, n: jnp.zeros(()), timing))
    monkeypatch.setattr(bench, "step_flops", lambda *a: {})
    monkeypatch.setattr(bench, "fused_runs", lambda *a: types.SimpleNamespace(train_mask=np.ones((2, 4))))
    monkeypatch.setattr(
        bench, "fused_trainer", lambda *a: lambda s, n: fused_calls.append(n) or jnp.zeros(())
    )
    monkeypatch.setattr(bench, "fused_step_facts", lambda *a: {"flops": 1.0})
    config = types.SimpleNamespace(model=types.SimpleNamespace(compute_dtype="float32"))
    args = bench.parse_args(["--quick", "--rounds", "2", "--fused-phases", "ae", "--fused-steps", "3"])
    data = {"image": None, "label": None}
    raw = bench.bench_phase(config, None, None, "ae", args, data)
    assert fused_calls == [3, 3, 3] and raw["fused"]["steps"] == 3 and "first" in raw["fused"]
    fused_calls.clear()
    raw = bench.bench_phase(config, None, None, "gan", args, data)
    assert fused_calls == [] and "first" not in raw["fused"]
    assert all(r["fused"] is None for r in raw["rounds"])
