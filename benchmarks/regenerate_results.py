"""Regenerates results/ at the checked-out commit: the steps of benchmarks/results_plan.py, one
at a time (no benchmark competes with another for the cores), in the plan's order.

    python -m benchmarks.regenerate_results --list                  # steps, commands, expected minutes
    python -m benchmarks.regenerate_results                         # all of them (about 4.5 h on 2 cores)
    python -m benchmarks.regenerate_results --only study,image_study   # or a JSON's stem: label_study
    python -m benchmarks.regenerate_results --from bench_train      # resume after a failed step

It refuses a checkout with uncommitted changes outside results/ (the records would say "+dirty"),
stops at the first failing step, and ends with `python -m benchmarks.stale_results --check`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from benchmarks import results_plan, stale_results
from gan_jax import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _matches(step: results_plan.Step, name: str) -> bool:
    """A step is named by its name or by the stem of a JSON it writes (label_study → study)."""
    return name == step.name or f"{name}.json" in step.outputs


def select(only: str | None, start: str | None) -> list[results_plan.Step]:
    """The steps to run, in the plan's order: those `only` names (comma-separated), or all; from
    the step `start` on."""
    wanted = [n for n in (only or "").split(",") if n]
    unknown = [
        n
        for n in [*wanted, *([start] if start else [])]
        if not any(_matches(s, n) for s in results_plan.STEPS)
    ]
    if unknown:
        names = ", ".join(s.name for s in results_plan.STEPS)
        raise SystemExit(f"unknown step(s) {', '.join(unknown)}; the steps are: {names}")
    steps = [s for s in results_plan.STEPS if not wanted or any(_matches(s, n) for n in wanted)]
    first = next((i for i, s in enumerate(steps) if start and _matches(s, start)), 0)
    return steps[first:]


def describe(steps: list[results_plan.Step]) -> str:
    lines = [
        f"{s.name:<22} ~{s.minutes:>4.0f} min  {s.command}" + (f"  ({s.note})" if s.note else "")
        for s in steps
    ]
    return "\n".join([*lines, f"total ~{sum(s.minutes for s in steps):.0f} min on the 2-core CPU machine"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", metavar="NAMES", help="comma-separated step names (see --list)")
    p.add_argument("--from", dest="start", metavar="NAME", help="start at this step")
    p.add_argument("--list", action="store_true", help="print the steps and exit")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = p.parse_args(argv)
    steps = select(args.only, args.start)
    if args.list or args.dry_run:
        print(describe(steps))
        return 0
    commit = runtime.git_commit()
    if commit.endswith("+dirty") or commit == "unknown":
        raise SystemExit(f"commit {commit}: commit first, or every record made now would be incomplete")
    print(describe(steps), flush=True)
    for step in steps:
        print(f"\n== {step.name}: {step.command}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.run(step.command, shell=True, cwd=ROOT).returncode
        minutes = (time.perf_counter() - t0) / 60
        print(
            f"== {step.name}: exit {code} after {minutes:.1f} min (expected ~{step.minutes:.0f})", flush=True
        )
        if code:
            print(f"stopped; after fixing, resume with --from {step.name}", file=sys.stderr)
            return code
    return stale_results.main(["--root", ROOT, "--check"])


if __name__ == "__main__":
    sys.exit(main())
