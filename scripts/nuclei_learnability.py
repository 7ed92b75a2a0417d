"""How learnable is the synthetic nuclei demo set? Trains two plain classifiers on its train
split and reports accuracy on its test split, so the demo set is known to be neither trivial
nor noise. Prints JSON.

    python scripts/nuclei_learnability.py [--seed 0] [--epochs 4]

Baselines: logistic regression on 16×16 mean-pooled pixels, and the conv
discriminator-classifier (`models.conv.Discriminator64`) trained supervised with Adam on the
augmented images (eq. 3), no GAN.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.data import nuclei
from gan_jax.models import conv, losses
from gan_jax.training import augment
from gan_jax.training.input_pipeline import ImageBatches


def logistic_regression(train, test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def pooled(x):
        x = x.astype(np.float32) / 255.0
        return x.reshape(len(x), 16, 4, 16, 4, 3).mean((2, 4)).reshape(len(x), -1)

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    clf.fit(pooled(train.images), train.labels())
    return float(clf.score(pooled(test.images), test.labels()))


def small_cnn(train, test, seed: int, epochs: int, batch_size: int = 64) -> float:
    model = conv.Discriminator64(num_classes=2)
    opt = optax.adam(1e-3)
    params = jax.jit(model.init)(jax.random.key(seed), jnp.zeros((1, 64, 64, 3)))["params"]
    opt_state = opt.init(params)
    aug = augment.AugmentConfig()

    @jax.jit
    def step(params, opt_state, batch, key):
        x = augment.augment_batch(key, augment.to_float(batch["image"]), aug)

        def loss_fn(p):
            return losses.supervised_loss(model.apply({"params": p}, x)[0], batch["label"])

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    steps = epochs * (len(train) // batch_size)
    with ImageBatches(train, batch_size, seed=seed, sharding=jax.devices()[0]) as batches:
        for i in range(steps):
            params, opt_state, _ = step(params, opt_state, next(batches), jax.random.key(i))
    predict = jax.jit(lambda p, x: jnp.argmax(model.apply({"params": p}, augment.to_float(x))[0], -1))
    pred = np.concatenate([predict(params, test.images[i : i + 500]) for i in range(0, len(test), 500)])
    return float(np.mean(pred == test.labels()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    t0 = time.perf_counter()
    train, test = nuclei.arrays("train", seed=args.seed), nuclei.arrays("test", seed=args.seed)
    result = {"seed": args.seed, "n_train": len(train), "n_test": len(test)}
    result["generate_s"] = round(time.perf_counter() - t0, 2)
    result["logreg_pixels_test_accuracy"] = logistic_regression(train, test)
    t1 = time.perf_counter()
    result["cnn_test_accuracy"] = small_cnn(train, test, args.seed, args.epochs)
    result["cnn_epochs"], result["cnn_train_s"] = args.epochs, round(time.perf_counter() - t1, 1)
    result["chance"] = float(max(np.mean(test.labels()), 1 - np.mean(test.labels())))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
