"""`gan-jax synth`: train the class-conditional generator on one CV run's training rows and
write N synthetic rows per class as a CSV (30 named features + diagnosis) to any URI, with a
sidecar `<uri>.meta.json` that marks it synthetic and records the config, seed and the real
rows the generator saw (and those it never saw, for `gan-jax synth-report`)."""

from __future__ import annotations

import argparse

from gan_jax.commands import add_experiment_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_experiment_arguments(parser)
    parser.set_defaults(experiment="synth")
    parser.add_argument(
        "--out", required=True, help="CSV URI (local path, s3://bucket/key or gs://bucket/key)"
    )
    parser.add_argument("--n-per-class", type=int, default=500, help="rows per class (default 500)")
    parser.add_argument(
        "--run",
        type=int,
        default=0,
        metavar="R",
        help="train on run R of the config's repeated k-fold (default 0); its test "
        "rows stay unseen and are recorded as the hold-out",
    )
    parser.add_argument("--s3-endpoint", metavar="URL", help="S3-compatible endpoint, e.g. http://minio:9000")


def run(args: argparse.Namespace) -> int:
    from gan_jax.artifacts import storage
    from gan_jax.studies import synth

    storage.set_s3_endpoint(args.s3_endpoint)
    config = config_from_args(args)
    if args.n_per_class < 1:
        raise ValueError(f"--n-per-class must be >= 1, got {args.n_per_class}")
    meta = synth.synthesize_to(config, args.out, n_per_class=args.n_per_class, run=args.run)
    print(
        f"wrote {2 * args.n_per_class} rows ({synth.WARNING}) to {storage.redact(args.out)}; "
        f"generator {config.synth.model} trained in {meta['train_seconds']:.1f} s on "
        f"{len(meta['train_rows'])} real rows (run {args.run})"
    )
    return 0
