"""`gan-jax`: one command with subcommands, each a module of `gan_jax.commands` that exposes
`add_arguments(parser)` and `run(args) -> int`; this file only parses and dispatches.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gan_jax import runtime

# What `gan-jax --help` says above the commands (a whole sentence, not a docstring's first line).
DESCRIPTION = (
    "Breast-cancer detection with an autoencoder and a semi-supervised GAN in JAX: train, "
    "evaluate, reproduce the study, export, serve and predict. `gan-jax COMMAND --help` "
    "describes each command."
)

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("gan_jax.commands.train", "cross-validate an experiment and write its results"),
    "evaluate": ("gan_jax.commands.evaluate", "print the metrics table of a results file"),
    "reproduce": ("gan_jax.commands.reproduce", "run the reproduction study and write results/"),
    "export": ("gan_jax.commands.export", "train one model and write it as a served bundle"),
    "serve": ("gan_jax.commands.serve", "serve a bundle over HTTP (native, KServe v2, SageMaker, Vertex AI)"),
    "predict": ("gan_jax.commands.predict", "score a CSV file of cases with a bundle"),
    "sweep": ("gan_jax.commands.sweep", "search hyperparameters in one compiled call, optionally nested CV"),
    "synth": ("gan_jax.commands.synth", "write synthetic rows (marked SYNTHETIC) from a conditional GAN"),
    "synth-report": ("gan_jax.commands.synth_report", "fidelity, utility and privacy of a synthetic CSV"),
    "sample": ("gan_jax.commands.sample", "save a PNG grid of generator samples from an image bundle"),
    "image-study": ("gan_jax.commands.image_study", "conv SGAN vs baselines on synthetic nuclei images, CV"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan-jax", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    runtime.split_host_devices()  # before anything initialises JAX
    args = build_parser().parse_args(argv)
    runtime.enable_compilation_cache()
    try:
        return importlib.import_module(args._module).run(args) or 0
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        print(f"gan-jax {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
