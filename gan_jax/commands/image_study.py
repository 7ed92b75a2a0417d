"""`gan-jax image-study`: the conv SGAN, the same classifier supervised only and a pixel
logistic regression on the SYNTHETIC nuclei demo set under repeated stratified k-fold; writes
<out>/image_study.json, .md, .png and image_samples.png; with --bundle, one model to serve."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--experiment",
        "-e",
        default="images",
        help="experiments/<name>.py[:variant] or a .py file (default images)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny variant for smoke runs and tests")
    parser.add_argument("--out", default="results", help="results folder URI (default results)")
    parser.add_argument(
        "--bundle",
        metavar="URI",
        help="also export the conv SGAN of run 0 (first "
        "fraction, first fold) as a servable image bundle (gan-jax serve URI)",
    )


def run(args: argparse.Namespace) -> int:
    from gan_jax.artifacts import storage
    from gan_jax.config import load_experiment
    from gan_jax.studies import image_study

    config = load_experiment(args.experiment, quick=args.quick, kind=image_study.ImageStudyConfig)
    command = f"gan-jax image-study --experiment {args.experiment}" + (" --quick" if args.quick else "")
    log = lambda message: print(f"gan-jax image-study: {message}", file=sys.stderr, flush=True)
    study = image_study.run_image_study(config, args.out, command=command, log=log, bundle_uri=args.bundle)
    for entry in study["per_fraction"]:
        for name, m in entry["models"].items():
            a = m["summary"]["accuracy"]
            print(
                f"{100 * entry['fraction']:5g} % labels  {name:<48} accuracy {100 * a['mean']:5.1f} % "
                f"[{100 * a['ci95_low']:.1f}, {100 * a['ci95_high']:.1f}]"
            )
    print(f"{study['wall_seconds']:.0f} s; results: {storage.redact(args.out)}/image_study.md")
    return 0
