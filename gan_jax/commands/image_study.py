"""`gan-jax image-study`: the conv SGAN, the same classifier supervised only and a pixel
logistic regression on an image set (default: the SYNTHETIC nuclei demo set; --data: a folder
of pictures, a MedMNIST .npz or a TFDS catalog dataset) under repeated stratified k-fold or the
data set's own train/test split; writes <out>/image_study.json, .md, .png and
image_samples.png; with --bundle, one model to serve."""

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
    parser.add_argument(
        "--data",
        metavar="URI",
        help="images to study: a folder (<split>/<label>/*.png|jpg or <label>/*), a MedMNIST .npz, "
        "tfds:<name> (patch_camelyon, curated_breast_imaging_ddsm) or nuclei; local, s3:// or gs:// "
        "(default: the experiment's data.uri)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="TFDS data directory (sets data.data_dir)")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field, dotted into sections, e.g. --set schedule.batch_size=32 "
        "--set data.image_shape=(32,32,1) --set data.malignant=tumour",
    )
    parser.add_argument("--out", default="results", help="results folder URI (default results)")
    ckpt = parser.add_argument_group("checkpoints")
    ckpt.add_argument(
        "--checkpoint-dir", metavar="URI", help="save training checkpoints here (local, s3://, gs://)"
    )
    ckpt.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --checkpoint-dir"
    )
    ckpt.add_argument(
        "--checkpoint-every", type=int, metavar="STEPS", help="steps between checkpoints (default log_every)"
    )
    ckpt.add_argument("--keep", type=int, default=3, help="newest checkpoints to keep per model (default 3)")
    parser.add_argument(
        "--bundle",
        metavar="URI",
        help="also export the conv SGAN of run 0 (first "
        "fraction, first fold) as a servable image bundle (gan-jax serve URI)",
    )


def config_from_args(args: argparse.Namespace):
    """The image experiment's config with --quick, --data, --data-dir, --seed and --set.

    Raises:
      ValueError: the experiment's model is not a conv model (not an image experiment).
    """
    from gan_jax.commands import apply_overrides, with_data_and_seed
    from gan_jax.config import ConvConfig, load_experiment

    config = load_experiment(args.experiment, quick=args.quick)
    if not isinstance(config.model, ConvConfig):
        raise ValueError(
            f"experiment {args.experiment!r} has a {config.model.KIND!r} model section; image-study "
            "needs an image experiment (model: ConvConfig), e.g. images"
        )
    config = apply_overrides(config, args.set)
    if args.data_dir is not None:
        config = config.replace(**{"data.data_dir": args.data_dir})
    return with_data_and_seed(config, args.data, args.seed)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, for the results."""
    parts = ["gan-jax image-study", f"--experiment {args.experiment}"] + (["--quick"] if args.quick else [])
    parts += [f"--data {args.data}"] if args.data else []
    parts += [f"--data-dir {args.data_dir}"] if args.data_dir else []
    parts += [f"--seed {args.seed}"] if args.seed is not None else []
    parts += [f"--set '{item}'" for item in args.set]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from gan_jax import runtime
    from gan_jax.artifacts import storage
    from gan_jax.studies import image_checkpoints, image_study

    config = config_from_args(args)
    log = lambda message: print(f"gan-jax image-study: {message}", file=sys.stderr, flush=True)
    if args.checkpoint_dir is None and (args.resume or args.checkpoint_every is not None):
        raise ValueError("--resume and --checkpoint-every need --checkpoint-dir")
    checkpoints = None
    if args.checkpoint_dir is not None:
        checkpoints = image_checkpoints.CheckpointSettings(
            args.checkpoint_dir, args.resume, args.checkpoint_every, args.keep
        )
    try:
        study = image_study.run_image_study(
            config,
            args.out,
            command=command_line(args),
            log=log,
            bundle_uri=args.bundle,
            checkpoints=checkpoints,
        )
    except runtime.TrainingStopped as e:
        print(f"gan-jax image-study: {e}; continue with the same command and --resume", file=sys.stderr)
        return 128 + e.signum  # what a shell reports for a job ended by that signal
    for entry in study["per_fraction"]:
        for name, m in entry["models"].items():
            a = m["summary"]["accuracy"]
            print(
                f"{100 * entry['fraction']:5g} % labels  {name:<48} accuracy {100 * a['mean']:5.1f} % "
                f"[{100 * a['ci95_low']:.1f}, {100 * a['ci95_high']:.1f}]"
            )
    print(f"runs: {study['evaluation']}")
    print(f"{study['wall_seconds']:.0f} s; results: {storage.redact(args.out)}/image_study.md")
    return 0
