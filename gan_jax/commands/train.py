"""`gan-jax train`: cross-validate an experiment, print the metrics table, write results.json.

With --checkpoint-dir the training state is saved every --checkpoint-every steps and
--resume continues from the newest good checkpoint; SIGINT/SIGTERM save one and stop.
"""

from __future__ import annotations

import argparse
import sys

from gan_jax.commands import add_experiment_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gan_jax.training import distributed

    add_experiment_arguments(parser)
    distributed.add_arguments(parser)
    parser.add_argument("--out", help="results folder URI (default: runs/<experiment>)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="do not write TensorBoard event files to <out>/tensorboard",
    )
    ckpt = parser.add_argument_group("checkpoints and storage")
    ckpt.add_argument(
        "--checkpoint-dir", metavar="URI", help="save training checkpoints here (local path, s3:// or gs://)"
    )
    ckpt.add_argument(
        "--resume", action="store_true", help="continue from the newest good checkpoint in --checkpoint-dir"
    )
    ckpt.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="steps between checkpoints (default: the config's log_every)",
    )
    ckpt.add_argument("--keep", type=int, default=3, help="newest checkpoints to keep (default 3)")
    ckpt.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="S3-compatible endpoint, e.g. http://minio:9000 (default: "
        "$AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL, else AWS)",
    )


def run(args: argparse.Namespace) -> int:
    from gan_jax.training import distributed

    distributed.initialize_from_args(args)  # before JAX starts
    from gan_jax import runtime
    from gan_jax.artifacts import storage
    from gan_jax.evaluation.cross_validation import format_summary, train_and_evaluate

    storage.set_s3_endpoint(args.s3_endpoint)
    config = config_from_args(args)
    out = args.out or f"runs/{config.name}"
    if args.checkpoint_dir is None and (args.resume or args.checkpoint_every is not None):
        raise ValueError("--resume and --checkpoint-every need --checkpoint-dir")
    try:
        results = train_and_evaluate(
            config,
            out,
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume,
            checkpoint_every=args.checkpoint_every,
            keep=args.keep,
            progress=not args.no_progress,
            log=lambda msg: print(f"gan-jax train: {msg}", file=sys.stderr),
            tensorboard=not args.no_tensorboard,
        )
    except runtime.TrainingStopped as e:
        print(f"gan-jax train: {e}; continue with the same command and --resume", file=sys.stderr)
        # 128 + signal number, what a shell reports for a job ended by that signal, so a
        # scheduler sees a stopped training, not a finished one.
        return 128 + e.signum
    if not distributed.is_main_process():
        return 0  # process 0 reports and writes
    print(format_summary(results))
    print(f"trained in {results['train_seconds']:.1f} s; results: {storage.redact(out)}/results.json")
    if not args.no_tensorboard:
        print(f"curves: tensorboard --logdir {storage.redact(out)}/tensorboard")
    return 0
