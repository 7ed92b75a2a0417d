"""Why the fused image trainer is slow on a CPU: the same training steps of the image path's own
step function (`image.TRAINER.step`, the body of `engine.train_chunk`), for one run on one device,

(a) alone: one step jitted by itself (no loop in its program), called `--steps` times from Python;
(b) scan: `engine.train_chunk` itself: `lax.scan` over `--steps` steps (an XLA While loop);
(c) unrolled: (a)'s step in a `lax.scan` with `unroll=True`.

Same math, same keys: the final parameters are compared. Each is timed after a first call that
compiles it. Images are random uint8 (speed does not depend on their content).

Run:    python -m benchmarks.bench_conv_scan            # the default conv models (IMAGES), 64×64
        python -m benchmarks.bench_conv_scan --quick    # tiny config (tests)
Writes: <out>/bench_conv_scan.json and .md (default out: results)
"""

from __future__ import annotations

import argparse
import functools
import sys
import time

import jax
import numpy as np

from benchmarks import harness
from gan_jax.config import IMAGES
from gan_jax.training import engine, image

PHASES = ("ae", "gan")
VARIANTS = ("alone", "scan", "unrolled")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny config (smoke runs, tests)")
    p.add_argument("--steps", type=int, default=2, help="steps per timed call (default 2)")
    p.add_argument("--rows", type=int, default=512, help="images the batches are drawn from")
    p.add_argument("--out", default="results", help="folder for bench_conv_scan.json/.md")
    args = p.parse_args(argv)
    if args.steps < 1 or args.rows < 1:
        p.error(f"--steps and --rows must be >= 1, got {args.steps} and {args.rows}")
    return args


def trainers(config, phase: str, steps: int) -> dict:
    """{variant: (jitted function, its calls per timed call)}: (state, run, data) -> state."""

    def one_step(state, run, data):
        inputs = image.TRAINER.prepare(config, phase, state, run, data)
        key = jax.random.fold_in(engine.init_and_step_keys(run.key)[1], state.step)
        state, _ = image.TRAINER.step(config, phase, state, key, run, inputs)
        return state._replace(step=state.step + 1)

    def scanned(state, run, data, unroll=False):
        return jax.lax.scan(
            lambda s, _: (one_step(s, run, data), None), state, None, length=steps, unroll=unroll
        )[0]

    def engine_chunk(state, run, data):  # what the engine runs: its own fused chunk, one run
        return engine.train_chunk(image.TRAINER, config, phase, steps, state, run, data)[0]

    return {
        "alone": (jax.jit(one_step), steps),
        "scan": (jax.jit(engine_chunk), 1),
        "unrolled": (jax.jit(functools.partial(scanned, unroll=True)), 1),
    }


def _repeat(fn, state, run, data, n: int):
    for _ in range(n):
        state = fn(state, run, data)
    return state


def bench_phase(config, phase: str, state, run, data, steps: int) -> dict:
    out = {}
    for variant, (fn, calls) in trainers(config, phase, steps).items():
        t0 = time.perf_counter()
        jax.block_until_ready(_repeat(fn, state, run, data, calls))  # compiles
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        final = jax.block_until_ready(_repeat(fn, state, run, data, calls))
        wall = time.perf_counter() - t0
        loops = fn.lower(state, run, data).compile().as_text().count(" while(")
        out[variant] = {
            "first_call_s": first,
            "wall_s": wall,
            "s_per_step": wall / steps,
            "while_loops": loops,
            "final": final,
        }
        print(f"bench_conv_scan: {phase} {variant}: {wall / steps:.3f} s a step", file=sys.stderr, flush=True)
    alone = out["alone"]["s_per_step"]
    for variant in VARIANTS:
        out[variant]["vs_alone"] = out[variant]["s_per_step"] / alone
    params = {v: out[v].pop("final") for v in VARIANTS}
    out["max_abs_param_diff_vs_alone"] = {v: _max_abs_diff(params["alone"], params[v]) for v in VARIANTS[1:]}
    return out


def _max_abs_diff(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def setup(config, program, rows: int):
    """(state of one run at step 0, the run, device data) for `program` (the compiled structure of
    `config`, whose numbers the run carries): random uint8 images, alternating labels, every row a
    training row and labelled."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (rows, *config.model.image_shape), dtype=np.uint8)
    labels = np.arange(rows) % 2
    every = np.ones((1, rows), bool)
    runs = image.make_runs(config, labels, every, every)
    run = jax.tree.map(lambda x: x[0], runs)
    data = tuple(jax.device_put(a) for a in image.image_data(config, images, labels))
    return jax.jit(functools.partial(image.init_run, program))(data, run), run, data


def markdown(rec: dict) -> str:
    lines = [
        f"One run's training steps of the image path on {rec['device']['count']} × "
        f"{rec['device']['platform']} (one device used), `{harness.current_command(rec['command'])}`, commit "
        f"{rec['git_commit'][:12]}. Image {rec['image_shape']}, batch {rec['batch_size']}, "
        f"{rec['steps']} steps per timed call.",
        "",
        "| phase | (a) alone s/step | (b) scan s/step | (c) unrolled s/step | (b)/(a) | (c)/(a) "
        "| max Δparam (b) | max Δparam (c) | While loops (a)/(b)/(c) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase, r in rec["phases"].items():
        d = r["max_abs_param_diff_vs_alone"]
        lines.append(
            f"| {phase} | {r['alone']['s_per_step']:.3f} | {r['scan']['s_per_step']:.3f} | "
            f"{r['unrolled']['s_per_step']:.3f} | {r['scan']['vs_alone']:.2f} | "
            f"{r['unrolled']['vs_alone']:.2f} | {d['scan']:.2g} | {d['unrolled']:.2g} | "
            f"{'/'.join(str(r[v]['while_loops']) for v in VARIANTS)} |"
        )
    lines += [
        "",
        "(a) is one step jitted alone and called from Python; (b) is `lax.scan` over the steps, the "
        "way `engine.train_chunk` fuses a training; (c) is that scan unrolled. While loops are counted "
        "in each compiled program (the step has its own, e.g. in augmentation; (b) adds the scan's). "
        "jax-ml/jax issue 12868 reports convolutions running much slower inside an XLA:CPU loop body.",
        f"- Machine load (1-min load average): {rec['load_average']['before'][0]:.2f} before, "
        f"{rec['load_average']['after'][0]:.2f} after, on {rec['load_average']['cores']} cores.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    config = image.TINY if args.quick else IMAGES
    rec = harness.record(argv, module="benchmarks.bench_conv_scan")
    phases = {}
    for phase in PHASES:
        program = image.program(config.structure(), phase)
        state, run, data = setup(config, program, args.rows)
        state = image.TRAINER.begin_phase(program, phase, state)
        phases[phase] = bench_phase(program, phase, state, run, data, args.steps)
    rec = harness.finish(rec)
    rec.update(
        benchmark="bench_conv_scan",
        quick=args.quick,
        steps=args.steps,
        rows=args.rows,
        image_shape=list(config.model.image_shape),
        batch_size=config.schedule.batch_size,
        phases=phases,
    )
    harness.write(args.out, "bench_conv_scan", rec, markdown(rec))
    return rec


if __name__ == "__main__":
    print(markdown(main()))
