"""End-to-end image path on the synthetic nuclei demo set (no download): conv autoencoder
pretraining, then the semi-supervised GAN with a labelled fraction, against the same
discriminator trained on the labelled rows only. Prints JSON; numbers are from this run.

    python scripts/images_demo.py [--size 32] [--labeled 0.1] [--ae-steps 100] [--gan-steps 400]
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from gan_jax.config import IMAGES, ConvConfig
from gan_jax.data import nuclei
from gan_jax.training import image, image_fit


def accuracy(config, state, test) -> float:
    predict = jax.jit(lambda s, x: image.predict_proba(config, s, x))
    probs = np.concatenate([predict(state, test.images[i : i + 500]) for i in range(0, len(test), 500)])
    return float(np.mean((probs > 0.5) == test.labels()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--labeled", type=float, default=0.1, help="labelled fraction of train")
    parser.add_argument("--ae-steps", type=int, default=100)
    parser.add_argument("--gan-steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train = nuclei.arrays("train", seed=args.seed, size=args.size)
    test = nuclei.arrays("test", seed=args.seed, size=args.size)
    rng = np.random.default_rng(args.seed)
    labeled = np.zeros(len(train), bool)
    for c in (0, 1):  # stratified labelled subset
        rows = np.flatnonzero(train.labels() == c)
        labeled[rng.choice(rows, int(round(args.labeled * len(rows))), replace=False)] = True
    base = IMAGES.replace(
        model=ConvConfig(
            image_shape=(args.size, args.size, 3),
            features=(16, 32, 64),
            gen_features=(64, 32, 16),
            disc_hidden=64,
            latent_dim=32,
            compute_dtype=image.default_compute_dtype(),
        ),
        **{"schedule.batch_size": 64, "cv.seed": args.seed},
    )
    out = {
        "size": args.size,
        "labeled_fraction": args.labeled,
        "n_labeled": int(labeled.sum()),
        "n_train": len(train),
        "n_test": len(test),
        "ae_steps": args.ae_steps,
        "gan_steps": args.gan_steps,
        "devices": len(jax.devices()),
        "backend": jax.default_backend(),
        "compute_dtype": base.model.compute_dtype,
    }
    # Supervised only as the image study builds it: no GAN at all (no generator step, no
    # real/fake term), not a GAN whose unsupervised term is weighted 0.
    runs = {"sgan": base, "supervised_only": base.replace(**{"model.use_gan": False})}
    for name, config in runs.items():
        t0 = time.perf_counter()
        state, history = image_fit.fit(
            config,
            train,
            ae_steps=args.ae_steps,
            gan_steps=args.gan_steps,
            labeled=labeled,
            mesh=image_fit.data_mesh(jax.devices()[:1]),
            log_every=100,
        )
        seconds = round(time.perf_counter() - t0, 1)
        out[name] = {
            "test_accuracy": accuracy(config, state, test),
            "train_s": seconds,
            "last_log": history[-1],
        }
        print(json.dumps({name: out[name]}), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
