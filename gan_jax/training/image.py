"""The image trainer: conv autoencoder pretraining (eq. 4) and the semi-supervised GAN (eqs.
5-8) with conv models, augmentation (eq. 3) inside the step, plugged into `engine`.

Two ways to run the same step: `train_runs` (fused cross-validation: the images held on the
devices as uint8, each run drawing its batches from its own training rows in-graph, `lax.scan`
over a chunk of steps, `vmap` over runs: the engine) and `image_fit.fit` (data parallel: one
model, one batch per jitted step from the input pipeline). Compute is in
`config.model.compute_dtype` (bf16 on accelerators), parameters and optimizer state stay
float32, losses are computed in float32.

Labels are only seen through `labeled` [B] bool, the batch rows' entries of the run's labelled
mask: rows outside it get their label replaced by 0 *and* zero weight before the loss, so no
loss can depend on a hidden label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.config import IMAGES, Config, ConvConfig
from gan_jax.models import conv, losses
from gan_jax.training import augment, engine
from gan_jax.training.engine import AE_ADAM, GAN_ADAM, GANState, HParams, Network, RunSpec, adam_update
from gan_jax.training.generator_step import generator_update

Params = Any
Batch = dict[str, jax.Array]  # {"image": [B, H, W, C] uint8, "label": [B] int32, "labeled": [B] bool}


# A tiny image config for tests: 8×8 images, narrow conv models, batches of 8.
TINY = IMAGES.replace(
    model=ConvConfig(
        image_shape=(8, 8, 3), features=(4, 8), gen_features=(8, 4), disc_hidden=6, latent_dim=3, noise_dim=4
    ),
    **{"schedule.batch_size": 8},
)


def default_compute_dtype() -> str:
    """bfloat16 where the backend has fast bf16 matmuls (GPU, TPU), float32 on CPU."""
    return "bfloat16" if jax.default_backend() in ("gpu", "tpu") else "float32"


class ImageModels(NamedTuple):
    ae: conv.ConvAutoEncoder
    disc: conv.ConvDiscriminatorClassifier
    gen: conv.ConvGenerator


def build_models(config: Config) -> ImageModels:
    dtype = jnp.dtype(config.model.compute_dtype)
    return ImageModels(
        ae=conv.ConvAutoEncoder(
            config.model.features, config.model.latent_dim, config.model.image_shape, dtype
        ),
        disc=conv.ConvDiscriminatorClassifier(config.model.features, config.model.disc_hidden, 2, dtype),
        gen=conv.ConvGenerator(config.model.gen_features, config.model.image_shape, dtype),
    )


def hparams_of(config: Config) -> HParams:
    """The config's numeric hyperparameters as [] float32 arrays (one run)."""
    return HParams(*(np.float32(getattr(config.schedule, f)) for f in HParams._fields))


def init_state(config: Config, key: jax.Array) -> GANState:
    """Initial float32 parameters and optimizer states of the three models."""
    models = build_models(config)
    k_ae, k_d, k_g = jax.random.split(jax.random.fold_in(key, 0x1A1), 3)
    image = jnp.zeros((1, *config.model.image_shape))
    ae = models.ae.init(k_ae, image)["params"]
    disc = models.disc.init(k_d, image)["params"]
    gen = models.gen.init(k_g, jnp.zeros((1, config.model.noise_dim)))["params"]
    return GANState(
        step=jnp.zeros((), jnp.int32),
        fitted=(),  # nothing is fitted on the rows: images are scaled by a fixed map
        ae=Network(ae, AE_ADAM.init(ae)),
        disc=Network(disc, GAN_ADAM.init(disc)),
        gen=Network(gen, GAN_ADAM.init(gen)),
    )


def _inputs(config: Config, batch: Batch, key: jax.Array) -> jax.Array:
    """uint8 images → augmented float images in [-1, 1] (f32; the models cast to compute)."""
    return augment.augment_batch(key, augment.to_float(batch["image"]), config.model.augment)


def ae_step(models: ImageModels, config: Config, state: GANState, batch: Batch, key, hp: HParams):
    """One autoencoder step on an augmented batch (eq. 4); unsupervised: labels never read."""
    x = _inputs(config, batch, key)

    def loss_fn(params):
        return losses.reconstruction_loss_eq4(models.ae.apply({"params": params}, x), x)

    loss, grads = jax.value_and_grad(loss_fn)(state.ae.params)
    return state._replace(ae=adam_update(AE_ADAM, state.ae, grads, hp.ae_lr)), {"ae": loss}


def masked_supervised_loss(logits: jax.Array, labels: jax.Array, labeled: jax.Array) -> jax.Array:
    """K-class cross-entropy averaged over the labelled rows of the batch only (0 if none).

    Hidden labels are replaced by 0 before the loss, so its value cannot depend on them.
    """
    labels = jnp.where(labeled, labels, 0)
    per_row = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    weight = labeled.astype(per_row.dtype)
    return jnp.sum(per_row * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def gan_step(
    models: ImageModels,
    config: Config,
    state: GANState,
    batch: Batch,
    key,
    hp: HParams,
    place_batch: Callable[[jax.Array], jax.Array] = lambda a: a,
):
    """One SGAN step: discriminator (supervised on labelled rows + eq. 8), then generator.
    With `config.model.use_gan` False only the supervised term trains the discriminator.

    Args:
      batch: {"image": [B, H, W, C] uint8, "label": [B], "labeled": [B] bool}; row i's label
        is read (by `masked_supervised_loss` only) iff labeled[i].
      place_batch: lays out an array with the batch's leading axis as the batch is (the
        data-parallel step splits the noise over devices with it; otherwise every device
        would run the generator on the whole batch).
    """
    k_aug, k_zd, k_zg = jax.random.split(key, 3)
    x = _inputs(config, batch, k_aug)
    disc = lambda p, v: models.disc.apply({"params": p}, v)
    gen = lambda p, z: models.gen.apply({"params": p}, z)
    noise = lambda k: place_batch(jax.random.normal(k, (x.shape[0], config.model.noise_dim)))

    def d_loss_fn(dp):
        real_logits = disc(dp, x)[0]
        supervised = masked_supervised_loss(real_logits, batch["label"], batch["labeled"])
        if not config.model.use_gan:
            return supervised
        fake = jax.lax.stop_gradient(gen(state.gen.params, noise(k_zd)))
        unsupervised = losses.discriminator_loss_eq8(real_logits, disc(dp, fake)[0])
        return supervised + hp.unsupervised_weight * unsupervised

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(state.disc.params)
    state = state._replace(disc=adam_update(GAN_ADAM, state.disc, d_grads, hp.d_lr))
    if not config.model.use_gan:
        return state, {"d": d_loss}
    state, g_loss = generator_update(state, disc, gen, noise(k_zg), x, config.schedule.gen_loss, hp.g_lr)
    return state, {"d": d_loss, "g": g_loss}


def phase_step(
    models: ImageModels, config: Config, phase: str, state: GANState, batch: Batch, key, hp, **options
):
    """One step of `phase` ("ae" or "gan") with the step key fold_in(key, step); the one step
    both ways of training run (the caller advances `state.step`). `options` go to `gan_step`."""
    key = jax.random.fold_in(key, state.step)
    if phase == "ae":
        return ae_step(models, config, state, batch, key, hp)
    return gan_step(models, config, state, batch, key, hp, **options)


def start_gan_phase(state: GANState) -> GANState:
    """Copies the encoder's conv trunk into the discriminator (`disc_from_encoder`)."""
    # A copy, not the same buffers: the step donates the state, and one buffer donated twice
    # (as encoder and as discriminator) is an error.
    trunk = jax.tree.map(jnp.copy, state.ae.params["encoder"]["trunk"])
    return state._replace(disc=state.disc._replace(params={**state.disc.params, "trunk": trunk}))


def sample_images(config: Config, gen_params: Params, n: int, seed: int = 0) -> np.ndarray:
    """n generator samples G(z), z ~ N(0, I) drawn from `seed`, as uint8 images [n, H, W, C]
    (the inverse of `augment.to_float`: [-1, 1] → 0..255)."""
    z = jax.random.normal(jax.random.key(seed), (n, config.model.noise_dim))
    fake = np.asarray(build_models(config).gen.apply({"params": gen_params}, z), np.float32)
    return np.clip(np.round((fake + 1.0) * 127.5), 0, 255).astype(np.uint8)


def predict_proba(config: Config, state: GANState, images: jax.Array) -> jax.Array:
    """Malignant probability [N] for uint8 images [N, H, W, C] (no augmentation)."""
    logits, _ = build_models(config).disc.apply({"params": state.disc.params}, augment.to_float(images))
    return jax.nn.softmax(logits, axis=-1)[:, 1]


# --- the engine's plug: init + step ----------------------------------------------------------


def init_run(config: Config, data, run: RunSpec) -> GANState:
    """Initial state of one run, from its own key only."""
    return init_state(config, engine.init_and_step_keys(run.key)[0])


class Inputs(NamedTuple):
    images: jax.Array  # [N, H, W, C] uint8, the whole set
    labels: jax.Array  # [N] int32
    draw_train: engine.RowSampler


def prepare(config: Config, phase: str, state: GANState, run: RunSpec, data) -> Inputs:
    images, labels = data
    return Inputs(images, labels, engine.row_sampler(run.train_mask))


def step(config: Config, phase: str, state: GANState, key, run: RunSpec, inputs: Inputs):
    """One step of one run: a batch drawn from the run's training rows only, carrying which of
    its rows are labelled."""
    k_rows, k_step = jax.random.split(key)
    rows = inputs.draw_train(k_rows, config.schedule.batch_size)
    batch = {"image": inputs.images[rows], "label": inputs.labels[rows], "labeled": run.labeled_mask[rows]}
    return phase_step(build_models(config), config, phase, state, batch, k_step, run.hparams)


def begin_phase(config: Config, phase: str, state: GANState) -> GANState:
    return start_gan_phase(state) if phase == "gan" and config.model.disc_from_encoder else state


def program(config: Config, phase: str) -> Config:
    # The autoencoder phase does not depend on use_gan: one program for both models.
    return config if phase == "gan" else config.replace(**{"model.use_gan": True})


TRAINER = engine.Trainer(init_run, prepare, step, predict_proba, begin_phase, program)


def schedule(config: Config) -> engine.Schedule:
    s = config.schedule
    return engine.Schedule((("ae", s.ae_steps), ("gan", s.gan_steps)), s.log_every)


def make_runs(
    config: Config,
    labels: np.ndarray,
    train_masks: np.ndarray,
    labeled_masks: np.ndarray,
    run_ids: np.ndarray | None = None,
) -> RunSpec:
    """Host-side `RunSpec` of R runs, checked by `engine.make_runs`: run keys from
    (config.cv.seed, run id), the config's learning rates and unsupervised weight for every run.

    Args:
      train_masks, labeled_masks: [R, N] bool; each run's labelled rows lie within its training
        rows and hold both classes (`evaluate.labeled_masks` draws them).
    """
    n_runs = len(train_masks)
    hparams = HParams(*(np.full(n_runs, getattr(config.schedule, f), np.float32) for f in HParams._fields))
    return engine.make_runs(labels, train_masks, labeled_masks, hparams, config.cv.seed, run_ids)


def image_data(config: Config, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, H, W, C], labels int32 [N]), checked.

    Raises:
      ValueError: images are not uint8 [N, H, W, C] of `config.model.image_shape`, or labels not [N].
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if (
        images.dtype != np.uint8
        or images.shape[1:] != tuple(config.model.image_shape)
        or len(labels) != len(images)
    ):
        raise ValueError(
            f"images {images.dtype} {images.shape}, labels {labels.shape}: expected uint8 "
            f"[N, {', '.join(map(str, config.model.image_shape))}] and labels [N]"
        )
    # uint8 on the devices (4× smaller than float32), converted per batch inside the step.
    return images, labels.astype(np.int32)


def train_runs(
    config: Config,
    images: np.ndarray,
    labels: np.ndarray,
    runs: RunSpec,
    **kwargs,
) -> engine.TrainResult:
    """Trains R runs at once on images [N, H, W, C] uint8 with labels [N]: the config's
    `schedule.ae_steps` autoencoder steps, then `schedule.gan_steps` SGAN steps, in chunks of
    `schedule.log_every` (`engine.train_runs`; `kwargs`: mesh, state, on_chunk, block_runs). A
    run's model depends only on its own RunSpec
    (never on the other runs of the call, nor on images outside its training rows, nor on
    labels outside its labelled rows).

    Raises:
      ValueError: images are not uint8 [N, H, W, C] of `config.model.image_shape`, or labels not [N].
      NonFiniteLossError: a loss became NaN/inf (names the run and the step).
    """
    data = image_data(config, images, labels)
    return engine.train_runs(TRAINER, config, schedule(config), data, runs, **kwargs)


def predict_runs(config: Config, state: GANState, images: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Malignant probability [R, N] of every run's discriminator-classifier (state leaves
    [R, ...]) on uint8 images [N, H, W, C], `chunk` images at a time (no augmentation)."""
    return engine.predict_runs(TRAINER, config, state, np.asarray(images), chunk)


def fit_predict(
    config: Config, images: np.ndarray, labels: np.ndarray, runs: RunSpec, **kwargs
) -> tuple[engine.TrainResult, np.ndarray]:
    """`train_runs` then every run's malignant probability [R, N] on every image."""
    result = train_runs(config, images, labels, runs, **kwargs)
    return result, predict_runs(config, result.state, images)
