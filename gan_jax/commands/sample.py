"""`gan-jax sample BUNDLE -o grid.png`: draw generator samples G(z) from an image bundle and save
them as one PNG grid (`figures.save_image_grid`), to any URI. The images are SYNTHETIC: what the
GAN's generator makes of random noise, not patient data. A table bundle is refused: its
synthetic rows come from `gan-jax synth`."""

from __future__ import annotations

import argparse
import math


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="image bundle folder URI (local path, s3:// or gs://)")
    parser.add_argument("-o", "--out", required=True, help="PNG URI to write the grid to")
    parser.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise z (default 0)")
    parser.add_argument("--columns", type=int, help="images per grid row (default ceil(sqrt(n)))")


def run(args: argparse.Namespace) -> int:
    from gan_jax.artifacts import storage

    b, shape = sample_grid(args.bundle, args.out, n=args.n, seed=args.seed, columns=args.columns)
    print(
        f"wrote a grid of {args.n} SYNTHETIC samples ({shape[1]} x {shape[0]} px) from model "
        f"{b.model_version} (seed {args.seed}) to {storage.redact(args.out)}"
    )
    return 0


def sample_grid(bundle_uri: str, out: str, *, n: int = 64, seed: int = 0, columns: int | None = None):
    """Draws `n` samples of the image bundle at `bundle_uri` and writes their grid to `out`.

    Returns:
      (the bundle, the grid's shape [H, W, C]).
    Raises:
      BundleError (a ValueError): not an image bundle, or not a bundle at all.
      ValueError: n or columns < 1.
    """
    from gan_jax.artifacts import bundle, storage
    from gan_jax.studies import figures

    if n < 1 or (columns is not None and columns < 1):
        raise ValueError(f"--n and --columns must be >= 1, got {n} and {columns}")
    b = bundle.load(bundle_uri)
    if b.kind != "image":
        raise bundle.BundleError(
            f"{storage.redact(bundle_uri)} is a {b.kind} bundle; gan-jax sample draws images from an "
            "image bundle (for synthetic table rows use gan-jax synth)"
        )
    images = b.sample_images(n, seed)
    columns = columns or math.ceil(math.sqrt(n))
    with storage.open_uri(out, "wb") as f:
        figures.save_image_grid(images, f, columns)
    return b, figures.image_grid(images, columns).shape
