"""What makes each file in results/: one step per command, in the order they regenerate.

Every file in results/ is an output of exactly one step. A step's JSON files carry the run record
(`gan_jax.artifacts.records`); its other outputs (Markdown, PNG, CSV) are made with those JSONs in
the same run, so they trace to the JSON's record (a `--report-only` redraw reads the JSON alone).
tests/test_results_records.py checks both; `python -m benchmarks.regenerate_results` runs the steps
and `python -m benchmarks.stale_results` says which results the code has moved past.

`minutes` is the expected wall time on the 2-core CPU machine, from the files' own records (their
`wall_s`/`wall_seconds`/`benchmark_wall_s`, or configured durations where none was recorded).
"""

from __future__ import annotations

from dataclasses import dataclass

BUNDLE = "runs/bundle"


@dataclass(frozen=True)
class Step:
    """One command and the files under results/ it writes (paths relative to results/)."""

    name: str
    command: str
    outputs: tuple[str, ...]
    minutes: float
    note: str = ""

    @property
    def records(self) -> tuple[str, ...]:
        """The outputs that carry a run record (the JSON files)."""
        return tuple(o for o in self.outputs if o.endswith(".json"))


def _load_test(tag: str, flags: str, minutes: float, figure: bool = True) -> Step:
    """A `python -m benchmarks.load_test` run; `tag` is the name suffix its flags give (--tag, or the
    protocol's default: grpc, http_vs_grpc)."""
    stem = f"latency_{tag}" if tag else "latency"
    outputs = (f"{stem}.json", f"{stem}.md") + ((f"figure4_{stem}.png",) if figure else ())
    command = f"python -m benchmarks.load_test --bundle {BUNDLE} {flags} --out results"
    return Step(stem, command, outputs, minutes, note=f"needs {BUNDLE} (step bundle)")


STEPS: tuple[Step, ...] = (
    Step("bundle", f"gan-jax export {BUNDLE} --force", (), 2, note="the model bundle the serving steps load"),
    Step(
        "study",
        "gan-jax reproduce --out results --no-progress",
        (
            "study.json",
            "label_study.json",
            "augmentation.json",
            "study_runs.csv",
            "figure3_metrics.png",
            "confusion_matrix.png",
            "figure_labels.png",
            "augmentation.md",
            "augmentation.png",
        ),
        70,
        note="study 1343 s incl. label study, augmentation 2710 s",
    ),
    Step(
        "image_study",
        "gan-jax image-study --experiment images",  # its recorded command leaves out the default --out
        ("image_study.json", "image_study.md", "image_study.png", "image_samples.png"),
        3,
    ),
    Step(
        "synth",
        "gan-jax synth --experiment synth --n-per-class 500 --out results/synthetic/wdbc_synth.csv",
        ("synthetic/wdbc_synth.csv.meta.json", "synthetic/wdbc_synth.csv"),
        1,
    ),
    Step(
        "synth_report",
        "gan-jax synth-report --runs 10 --experiment synth --compare synth:log1p --out results "
        "--name synth_report",
        ("synth_report.json", "synth_report.md"),
        12,
        note="one generator per CV run (the synth experiment's first 10) and the earlier log1p generator",
    ),
    Step(
        "ctgan_bench",
        "python -m benchmarks.ctgan_bench --out results",
        ("ctgan_bench.json", "ctgan_bench.md"),
        30,
        note='needs the ctgan extra: torch==2.13.0+cpu, then pip install ".[ctgan]"',
    ),
    Step(
        "tuned_study",
        "python -m benchmarks.tuned_study --experiment tuned --no-progress --out results",
        ("tuned_study.json", "tuned_study.md"),
        35,
        note="the headline of README.md and results/README.md (step report draws them); "
        "estimated from one fraction timed alone, see the record's load",
    ),
    Step(
        "bench_train",
        "python -m benchmarks.bench_train --out results",
        ("bench_train.json", "bench_train.md"),
        1,
    ),
    Step(
        "bench_scale",
        "python -m benchmarks.bench_scale --steps-scale 1 --loop-settings 100 --out results",
        ("bench_scale.json", "bench_scale.md"),
        30,
        "30 min on a quiet machine at b31bcf8",
    ),
    Step(
        "bench_scale_blocks",
        "python -m benchmarks.bench_scale --steps-scale 1 --parts a,d --block-sizes none,auto "
        "--block-sweep-runs 500 --out results/bench_scale_devices_blocks",
        ("bench_scale_devices_blocks/bench_scale.json", "bench_scale_devices_blocks/bench_scale.md"),
        5,
        "4.9 min on a quiet machine at 033a067",
    ),
    Step(
        "bench_images",
        "python -m benchmarks.bench_images --fused-phases ae --fused-steps 1 --out results",
        ("bench_images.json", "bench_images.md"),
        16,
        "(c), the fused run-vmapped trainer, on the autoencoder only and 1 step a round: at the "
        "default 10 steps its first autoencoder call had not finished after 10 min at 6eb33de "
        "(why: step bench_conv_scan, and the file's notes)",
    ),
    Step(
        "bench_conv_scan",
        "python -m benchmarks.bench_conv_scan --out results",
        ("bench_conv_scan.json", "bench_conv_scan.md"),
        5,
        "the image path's steps alone, in lax.scan and unrolled: why (c) of bench_images is slow on a CPU",
    ),
    Step(
        "bench_checkpoint",
        "python -m benchmarks.bench_checkpoint --out results",
        ("checkpoint_timings.json", "checkpoint_timings.md"),
        2,
    ),
    Step(
        "bench_serving",
        "python -m benchmarks.bench_serving --out results",
        ("bench_serving.json", "bench_serving.md"),
        8,
        note="18 cells of 12 s plus MLServer in its own venv",
    ),
    Step(
        "energy",
        f"python -m benchmarks.energy_bench --bundle {BUNDLE} --out results",
        ("energy.json", "energy.md", "figure5_energy.png"),
        3,
        note=f"needs {BUNDLE} (step bundle)",
    ),
    _load_test("", "--duration 60", 2),
    _load_test("grpc", "--grpc --duration 60 --echo-duration 20", 2),
    _load_test("http_vs_grpc", "--protocol both --duration 60 --echo-duration 20", 3, figure=False),
    _load_test("soak", "--duration 600 --echo-duration 30 --wrk 15 --tag soak", 11),
    _load_test("soak180", "--duration 180 --echo-duration 0 --tag soak180", 4),
    Step(
        "load_test_client",
        "python -m benchmarks.bench_load_test_client --out results",
        ("load_test_client_cost.json", "load_test_client_cost.md"),
        1,
    ),
    Step(
        "naive_fastapi",
        f"python -m benchmarks.bench_naive_fastapi --bundle {BUNDLE} --out results",
        ("naive_fastapi.json", "naive_fastapi.md"),
        2,
        note=f"needs {BUNDLE} (step bundle)",
    ),
    Step(
        "lock",
        "scripts/check_lock_reproducible.sh",
        ("lock_reproducibility.json",),
        15,
        note="installs the lock into two fresh venvs (needs the package index or pip's cache)",
    ),
    Step(
        "report",
        "gan-jax reproduce --out results --report-only",
        ("README.md",),
        1,
        note="results/README.md and the study figures, redrawn from study.json and the fragments above",
    ),
    Step("readme", "python -m benchmarks.readme", (), 1, note="the README.md blocks generated from results/"),
)


def step_of(output: str) -> Step | None:
    """The step that writes `output` (a path relative to results/), or None."""
    return next((s for s in STEPS if output in s.outputs), None)


def source_record(output: str) -> str | None:
    """The JSON (relative to results/) whose record covers `output`: itself for a JSON, else the
    first JSON of its step (README.md: study.json, which it is drawn from)."""
    if output.endswith(".json"):
        return output
    step = step_of(output)
    if step is None:
        return None
    return step.records[0] if step.records else "study.json"
