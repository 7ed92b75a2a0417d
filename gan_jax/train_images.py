"""Data-parallel training steps for images: conv autoencoder pretraining (eq. 4) and the
semi-supervised GAN (eqs. 5-8) with conv models, augmentation (eq. 3) inside the step.

Parallelism is by sharding, not pmap: the batch is split along the "data" axis of a device
mesh (`NamedSharding(mesh, P("data"))`), the state is replicated, and XLA inserts the gradient
all-reduce. The same code runs on 1 CPU, 8 simulated CPU devices and a GPU/TPU host. Compute
is in `ImageConfig.compute_dtype` (bf16 on accelerators), parameters and optimizer state stay
float32, losses are computed in float32. Each step is jitted once with the state donated.

The API follows `gan_jax.train` (a NamedTuple state, `build_models`, `init_state`, `ae_step`,
`gan_step`, `predict_proba`), with one batch per step from the input pipeline instead of the
whole table in memory; see the module's report for what unifying the two would take.

Labels are only seen through `labeled` [N] bool, indexed by each batch's row indices: rows
outside it get their label replaced by 0 *and* zero weight before the loss, so no loss can
depend on a hidden label.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax import augment, losses
from gan_jax.models import conv

Params = Any
Batch = dict[str, jax.Array]  # {"image": [B, H, W, C] uint8, "label": [B] int32, "index": [B]}


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """Everything that shapes the compiled step (frozen: a static jit argument)."""

    image_shape: tuple[int, int, int] = (64, 64, 3)
    batch_size: int = 64  # global, over all devices of the "data" axis
    features: tuple[int, ...] = (32, 64, 128)  # encoder / discriminator widths
    gen_features: tuple[int, ...] = (256, 128, 64)
    disc_hidden: int = 128
    latent_dim: int = 64
    noise_dim: int = 100
    ae_lr: float = 1e-3
    d_lr: float = 2e-4
    g_lr: float = 2e-4
    unsupervised_weight: float = 1.0
    gen_loss: str = "feature_matching"  # or "eq7"
    # Start the discriminator's conv trunk from the pretrained encoder's (same widths): the
    # autoencoder's features are what the classifier builds on, as the latent codes are for
    # the table.
    disc_from_encoder: bool = True
    compute_dtype: str = "float32"  # "bfloat16" on GPU/TPU; see `default_compute_dtype`
    augment: augment.AugmentConfig = augment.AugmentConfig()
    seed: int = 0


TINY = ImageConfig(
    image_shape=(8, 8, 3), batch_size=8, features=(4, 8), gen_features=(8, 4), disc_hidden=6,
    latent_dim=3, noise_dim=4,
)  # fmt: skip


def default_compute_dtype() -> str:
    """bfloat16 where the backend has fast bf16 matmuls (GPU, TPU), float32 on CPU."""
    return "bfloat16" if jax.default_backend() in ("gpu", "tpu") else "float32"


class ImageTrainState(NamedTuple):
    step: jax.Array  # [] int32, global step over both phases
    ae_params: Params
    ae_opt: optax.OptState
    disc_params: Params
    disc_opt: optax.OptState
    gen_params: Params
    gen_opt: optax.OptState


class ImageModels(NamedTuple):
    ae: conv.ConvAutoEncoder
    disc: conv.ConvDiscriminatorClassifier
    gen: conv.ConvGenerator
    ae_opt: optax.GradientTransformation
    disc_opt: optax.GradientTransformation
    gen_opt: optax.GradientTransformation


def build_models(config: ImageConfig) -> ImageModels:
    dtype = jnp.dtype(config.compute_dtype)
    return ImageModels(
        ae=conv.ConvAutoEncoder(config.features, config.latent_dim, config.image_shape, dtype),
        disc=conv.ConvDiscriminatorClassifier(config.features, config.disc_hidden, 2, dtype),
        gen=conv.ConvGenerator(config.gen_features, config.image_shape, dtype),
        ae_opt=optax.adam(config.ae_lr),
        # b1 = 0.5 as for the table GAN (Radford et al. 2016).
        disc_opt=optax.adam(config.d_lr, b1=0.5),
        gen_opt=optax.adam(config.g_lr, b1=0.5),
    )


def init_state(config: ImageConfig, key: jax.Array) -> ImageTrainState:
    """Initial float32 parameters and optimizer states of the three models."""
    models = build_models(config)
    k_ae, k_d, k_g = jax.random.split(jax.random.fold_in(key, 0x1A1), 3)
    image = jnp.zeros((1, *config.image_shape))
    ae_params = models.ae.init(k_ae, image)["params"]
    disc_params = models.disc.init(k_d, image)["params"]
    gen_params = models.gen.init(k_g, jnp.zeros((1, config.noise_dim)))["params"]
    return ImageTrainState(
        step=jnp.zeros((), jnp.int32),
        ae_params=ae_params,
        ae_opt=models.ae_opt.init(ae_params),
        disc_params=disc_params,
        disc_opt=models.disc_opt.init(disc_params),
        gen_params=gen_params,
        gen_opt=models.gen_opt.init(gen_params),
    )


def _inputs(config: ImageConfig, batch: Batch, key: jax.Array) -> jax.Array:
    """uint8 images → augmented float images in [-1, 1] (f32; the models cast to compute)."""
    return augment.augment_batch(key, augment.to_float(batch["image"]), config.augment)


def ae_step(models: ImageModels, config: ImageConfig, state: ImageTrainState, batch: Batch, key):
    """One autoencoder step on an augmented batch (eq. 4)."""
    x = _inputs(config, batch, key)

    def loss_fn(params):
        return losses.reconstruction_loss_eq4(models.ae.apply({"params": params}, x), x)

    loss, grads = jax.value_and_grad(loss_fn)(state.ae_params)
    updates, ae_opt = models.ae_opt.update(grads, state.ae_opt, state.ae_params)
    return state._replace(ae_params=optax.apply_updates(state.ae_params, updates), ae_opt=ae_opt), {
        "ae": loss
    }


def masked_supervised_loss(logits: jax.Array, labels: jax.Array, labeled: jax.Array) -> jax.Array:
    """K-class cross-entropy averaged over the labelled rows of the batch only (0 if none).

    Hidden labels are replaced by 0 before the loss, so its value cannot depend on them.
    """
    labels = jnp.where(labeled, labels, 0)
    per_row = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    weight = labeled.astype(per_row.dtype)
    return jnp.sum(per_row * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def gan_step(
    models: ImageModels, config: ImageConfig, state: ImageTrainState, batch: Batch,
    labeled: jax.Array, key: jax.Array,
):  # fmt: skip
    """One SGAN step: discriminator (supervised on labelled rows + eq. 8), then generator.

    Args:
      labeled: [N] bool over the whole image set; row i's label may be used iff labeled[i].
    """
    k_aug, k_zd, k_zg = jax.random.split(key, 3)
    x = _inputs(config, batch, k_aug)
    is_labeled = labeled[batch["index"]]
    disc = lambda p, v: models.disc.apply({"params": p}, v)
    gen = lambda p, z: models.gen.apply({"params": p}, z)
    noise = lambda k: jax.random.normal(k, (x.shape[0], config.noise_dim))

    def d_loss_fn(dp):
        fake = jax.lax.stop_gradient(gen(state.gen_params, noise(k_zd)))
        real_logits = disc(dp, x)[0]
        supervised = masked_supervised_loss(real_logits, batch["label"], is_labeled)
        unsupervised = losses.discriminator_loss_eq8(real_logits, disc(dp, fake)[0])
        return supervised + config.unsupervised_weight * unsupervised

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(state.disc_params)
    updates, disc_opt = models.disc_opt.update(d_grads, state.disc_opt, state.disc_params)
    disc_params = optax.apply_updates(state.disc_params, updates)

    def g_loss_fn(gp):
        fake_logits, fake_features = disc(disc_params, gen(gp, noise(k_zg)))
        if config.gen_loss == "eq7":
            return losses.generator_loss_eq7(fake_logits)
        real_features = jax.lax.stop_gradient(disc(disc_params, x)[1])
        return losses.feature_matching_loss(real_features, fake_features)

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state.gen_params)
    updates, gen_opt = models.gen_opt.update(g_grads, state.gen_opt, state.gen_params)
    state = state._replace(
        disc_params=disc_params, disc_opt=disc_opt,
        gen_params=optax.apply_updates(state.gen_params, updates), gen_opt=gen_opt,
    )  # fmt: skip
    return state, {"d": d_loss, "g": g_loss}


def start_gan_phase(state: ImageTrainState) -> ImageTrainState:
    """Copies the encoder's conv trunk into the discriminator (`disc_from_encoder`)."""
    # A copy, not the same buffers: the step donates the state, and one buffer donated twice
    # (as encoder and as discriminator) is an error.
    trunk = jax.tree.map(jnp.copy, state.ae_params["encoder"]["trunk"])
    return state._replace(disc_params={**state.disc_params, "trunk": trunk})


def data_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all) whose axis "data" splits the batch."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Where the input pipeline should put batches: the leading axis split over "data"."""
    return NamedSharding(mesh, PartitionSpec("data"))


@functools.lru_cache(maxsize=32)
def step_fn(config: ImageConfig, phase: str, mesh: Mesh) -> Callable:
    """The jitted step (state, batch, labeled, key) -> (state, metrics) for `phase` ("ae" or
    "gan"): batch sharded over "data", everything else replicated, state donated."""
    models = build_models(config)
    replicated = NamedSharding(mesh, PartitionSpec())

    def step(state, batch, labeled, key):
        key = jax.random.fold_in(key, state.step)
        if phase == "ae":
            state, metrics = ae_step(models, config, state, batch, key)
        else:
            state, metrics = gan_step(models, config, state, batch, labeled, key)
        return state._replace(step=state.step + 1), metrics

    return jax.jit(
        step,
        in_shardings=(replicated, batch_sharding(mesh), replicated, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,),
    )


def init_replicated(config: ImageConfig, mesh: Mesh, seed: int | None = None) -> ImageTrainState:
    """`init_state` jitted with its output pinned replicated on `mesh` (no host round trip)."""
    key = jax.random.key(config.seed if seed is None else seed)
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.jit(functools.partial(init_state, config), out_shardings=replicated)(key)


def predict_proba(config: ImageConfig, state: ImageTrainState, images: jax.Array) -> jax.Array:
    """Malignant probability [N] for uint8 images [N, H, W, C] (no augmentation)."""
    logits, _ = build_models(config).disc.apply({"params": state.disc_params}, augment.to_float(images))
    return jax.nn.softmax(logits, axis=-1)[:, 1]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; names the step."""


def fit(
    config: ImageConfig,
    source,
    *,
    ae_steps: int,
    gan_steps: int,
    train_indices: np.ndarray | None = None,
    labeled: np.ndarray | None = None,
    mesh: Mesh | None = None,
    state: ImageTrainState | None = None,
    log_every: int = 50,
    on_log: Callable[[ImageTrainState, dict], None] | None = None,
) -> tuple[ImageTrainState, list[dict]]:
    """Trains on `source` (an `ImageSource`): `ae_steps` autoencoder steps, then `gan_steps`
    SGAN steps, one batch per step from a prefetching `ImageBatches`.

    Args:
      train_indices: rows to train on (default all); nothing else is read.
      labeled: [N] bool, rows whose labels the supervised loss may use (default: all of
        `train_indices`).
      mesh: devices; the batch is split over its "data" axis (default: all devices).
      state: resume from it; its `step` is also the input pipeline's position, so batches
        continue exactly where they stopped.
      on_log: called every `log_every` steps with the state and the log entry.
    Returns:
      The final state and the log entries {"step", "phase", losses averaged since last log}.
    Raises:
      NonFiniteLossError: a loss was NaN/inf (checked at log time).
    """
    from gan_jax.input_pipeline import ImageBatches

    mesh = mesh or data_mesh()
    if config.batch_size % mesh.size:
        raise ValueError(f"batch_size {config.batch_size} does not split over {mesh.size} devices")
    n = len(source)
    rows = np.arange(n) if train_indices is None else np.asarray(train_indices)
    if labeled is None:
        labeled = np.zeros(n, bool)
        labeled[rows] = True
    replicated = NamedSharding(mesh, PartitionSpec())
    labeled = jax.device_put(jnp.asarray(labeled, bool), replicated)
    key = jax.device_put(jax.random.key(config.seed), replicated)
    state = state if state is not None else init_replicated(config, mesh)
    start = int(jax.device_get(state.step))
    history, pending = [], []
    batches = ImageBatches(
        source, config.batch_size, seed=config.seed, start=start, indices=rows, sharding=batch_sharding(mesh)
    )
    with batches:
        for step in range(start, ae_steps + gan_steps):
            phase = "ae" if step < ae_steps else "gan"
            if step == ae_steps > 0 and config.disc_from_encoder:
                state = start_gan_phase(state)
            state, metrics = step_fn(config, phase, mesh)(state, next(batches), labeled, key)
            pending.append(metrics)
            last = step + 1 == ae_steps + gan_steps or step + 1 == ae_steps
            if (step + 1) % log_every == 0 or last:
                entry = _log_entry(jax.device_get(pending), step + 1, phase)  # one host sync
                history.append(entry)
                pending = []
                if on_log is not None:
                    on_log(state, entry)
    return state, history


def _log_entry(metrics: list[dict], step: int, phase: str) -> dict:
    entry = {"step": step, "phase": phase}
    for name in metrics[0]:
        values = np.asarray([m[name] for m in metrics], np.float64)
        if not np.all(np.isfinite(values)):
            raise NonFiniteLossError(
                f"the {name!r} loss is not finite before step {step}; training stopped "
                "(try a lower learning rate)"
            )
        entry[name] = float(values.mean())
    return entry
