"""The tuned study's command: SGAN vs tuned baselines per labelled fraction, nested CV.

  python -m benchmarks.tuned_study --experiment tuned            # results/tuned_study.{json,md}
  python -m benchmarks.tuned_study --experiment tuned --quick --out /tmp/tuned
  python -m benchmarks.tuned_study --experiment tuned --fractions 0.05 --out /tmp/part  # timing

The study is `gan_jax.studies.tuned_study`; this entry adds the run record (command, commit,
versions, device, load average: `benchmarks.harness`) and writes JSON + Markdown. With
`--fractions` it runs a subset of the experiment's fractions (a partial study, e.g. to time one
fraction); the record says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from benchmarks import harness
from gan_jax import runtime
from gan_jax.data import load_dataset
from gan_jax.studies import tuned_study


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiment", "-e", default="tuned", help="experiment name or .py file (default tuned)")
    p.add_argument("--quick", action="store_true", help="the experiment's tiny variant")
    p.add_argument("--fractions", help="comma-separated subset of the labelled fractions (a partial study)")
    p.add_argument("--out", default="results", help="folder of tuned_study.json/.md (default results)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    runtime.split_host_devices()  # one XLA CPU device per core; before JAX starts its backends
    runtime.enable_compilation_cache()
    cfg = tuned_study.load_study(args.experiment, quick=args.quick)
    if args.fractions:
        fractions = tuple(float(f) for f in args.fractions.split(","))
        unknown = set(fractions) - set(cfg.fractions)
        if unknown:
            raise SystemExit(
                f"--fractions {sorted(unknown)} not among the experiment's {list(cfg.fractions)}"
            )
        cfg = dataclasses.replace(cfg, fractions=fractions)
    rec = harness.record(argv, module="benchmarks.tuned_study")
    study = tuned_study.run_tuned_study(cfg, load_dataset(cfg.base.data.uri), progress=not args.no_progress)
    record = {**harness.finish(rec), "partial": bool(args.fractions), **study}
    json_uri, _ = harness.write(args.out, "tuned_study", record, tuned_study.markdown(record))
    print("\n".join(tuned_study.headline(record)))
    print(f"{record['seconds']['total']:.0f} s; wrote {json_uri}")
    return record


if __name__ == "__main__":
    main()
