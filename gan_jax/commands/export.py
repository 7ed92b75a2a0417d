"""`gan-jax export OUT`: train one run of an experiment (all rows, or one CV fold) and write it
as a served model bundle (gan_jax/artifacts/bundle.py) to OUT (local path, s3:// or gs://)."""

from __future__ import annotations

import argparse

from gan_jax.commands import add_experiment_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="bundle folder URI (local path, s3://bucket/key or gs://bucket/key)")
    add_experiment_arguments(parser)
    parser.add_argument(
        "--fold",
        type=int,
        metavar="R",
        help="train on run R of the config's repeated k-fold and report its held-out "
        "metrics (default: train on every row)",
    )
    parser.add_argument("--model-version", help="version string to serve (default: <name>-<checksum>)")
    parser.add_argument("--force", action="store_true", help="replace a bundle already at OUT")
    parser.add_argument("--s3-endpoint", metavar="URL", help="S3-compatible endpoint, e.g. http://minio:9000")


def run(args: argparse.Namespace) -> int:
    from gan_jax.artifacts import bundle, storage

    storage.set_s3_endpoint(args.s3_endpoint)
    config = config_from_args(args)
    b = bundle.train_bundle(config, fold=args.fold, model_version=args.model_version)
    bundle.export(b, args.out, overwrite=args.force)
    m = b.meta["metrics"]
    shown = m.get("held_out", m["train"])
    which = "held-out fold" if "held_out" in m else "training rows (not a test score)"
    print(
        f"model {b.model_version}: accuracy {100 * shown['accuracy']:.2f} %, "
        f"ROC-AUC {100 * shown['roc_auc']:.2f} % on the {which}"
    )
    print(f"wrote the bundle to {storage.redact(args.out)} (checksum {b.checksum[:16]}...)")
    return 0
