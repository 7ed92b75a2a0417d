"""`gan-jax export OUT`: train one run of an experiment and write it as a served model bundle
(gan_jax/artifacts/bundle.py) to OUT (local path, s3:// or gs://). A table experiment trains on
every row or one CV fold; an image experiment (e.g. `--experiment image_folder --data FOLDER`)
on the data set's own training split, every image, or one fold (gan_jax/studies/image_export.py)."""

from __future__ import annotations

import argparse
import sys

from gan_jax.commands import add_experiment_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="bundle folder URI (local path, s3://bucket/key or gs://bucket/key)")
    add_experiment_arguments(parser)
    parser.add_argument("--data-dir", metavar="DIR", help="image experiments: TFDS data directory")
    parser.add_argument(
        "--fold",
        type=int,
        metavar="R",
        help="train on run R of the config's repeated k-fold and report its held-out "
        "metrics (default: train on every row, or an image set's own training split)",
    )
    parser.add_argument("--model-version", help="version string to serve (default: <name>-<checksum>)")
    parser.add_argument("--force", action="store_true", help="replace a bundle already at OUT")
    parser.add_argument("--s3-endpoint", metavar="URL", help="S3-compatible endpoint, e.g. http://minio:9000")


def run(args: argparse.Namespace) -> int:
    from gan_jax.artifacts import bundle, make_bundle, storage

    storage.set_s3_endpoint(args.s3_endpoint)
    if is_image_experiment(args.experiment):
        b = _image_bundle(args)
    else:
        b = make_bundle.train_bundle(config_from_args(args), fold=args.fold, model_version=args.model_version)
    bundle.export(b, args.out, overwrite=args.force)
    m = b.meta["metrics"]
    shown = m.get("held_out", m["train"])
    which = "held-out images" if b.kind == "image" else "held-out fold"
    which = which if "held_out" in m else "training rows (not a test score)"
    print(
        f"model {b.model_version}: accuracy {100 * shown['accuracy']:.2f} %, "
        f"ROC-AUC {100 * shown['roc_auc']:.2f} % on the {which}"
    )
    print(f"wrote the bundle to {storage.redact(args.out)} (checksum {b.checksum[:16]}...)")
    return 0


def is_image_experiment(spec: str) -> bool:
    from gan_jax.config import ConvConfig, load_experiment

    return isinstance(load_experiment(spec).model, ConvConfig)


def _image_bundle(args: argparse.Namespace):
    from gan_jax.commands import image_study as image_command
    from gan_jax.studies import image_export

    config = image_command.config_from_args(args)
    log = lambda message: print(f"gan-jax export: {message}", file=sys.stderr, flush=True)
    return image_export.train_image_bundle(config, fold=args.fold, model_version=args.model_version, log=log)
