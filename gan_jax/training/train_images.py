"""Data-parallel training steps for images: conv autoencoder pretraining (eq. 4) and the
semi-supervised GAN (eqs. 5-8) with conv models, augmentation (eq. 3) inside the step.

Parallelism is by sharding, not pmap: the batch is split along the "data" axis of a device
mesh (`NamedSharding(mesh, P("data"))`), the state is replicated, and XLA inserts the gradient
all-reduce. The same code runs on 1 CPU, 8 simulated CPU devices and a GPU/TPU host. Compute
is in `ImageConfig.compute_dtype` (bf16 on accelerators), parameters and optimizer state stay
float32, losses are computed in float32. Each step is jitted once with the state donated.

The API follows `gan_jax.training.train` (a NamedTuple state, `build_models`, `init_state`, `ae_step`,
`gan_step`, `predict_proba`), with one batch per step from the input pipeline instead of the
whole table in memory; see the module's report for what unifying the two would take.

Labels are only seen through `labeled` [N] bool, indexed by each batch's row indices: rows
outside it get their label replaced by 0 *and* zero weight before the loss, so no loss can
depend on a hidden label.

Two trainers share the one `ae_step` and the one `gan_step`:
- `fit`: data parallel, one batch per jitted step from the input pipeline (one model, big data);
- `train_image_runs`: fused like `gan_jax.training.train.train_runs` for cross-validation studies: the
  images held on the devices (uint8, replicated), each run a `train.RunSpec` (key, training
  mask, labelled mask, numeric hyperparameters as arrays), every step drawing its batch from
  its run's own training rows in-graph (`train.row_sampler`), `lax.scan` over a chunk of steps,
  `vmap` over runs, the runs axis sharded over `train.runs_mesh()`, the state donated.
Learning rates and the unsupervised weight reach the steps as arrays (`train.HParams`), never as
compile-time constants, so runs that differ only in them share one program.
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

from gan_jax.models import conv, losses
from gan_jax.training import augment, distributed, train

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
    # False: the same classifier trained on the supervised loss only (no generator, no real/fake
    # term): the baseline that tells what the GAN adds.
    use_gan: bool = True
    # Start the discriminator's conv trunk from the pretrained encoder's (same widths): the
    # autoencoder's features are what the classifier builds on, as the latent codes are for
    # the table.
    disc_from_encoder: bool = True
    compute_dtype: str = "float32"  # "bfloat16" on GPU/TPU; see `default_compute_dtype`
    augment: augment.AugmentConfig = augment.AugmentConfig()
    seed: int = 0

    def structure(self) -> ImageConfig:
        """This config with the settings that are per-run data in the fused trainer (learning
        rates, unsupervised weight, seed) set to fixed values: the key of compiled programs."""
        return dataclasses.replace(self, **{f: getattr(_STRUCTURE, f) for f in RUN_DATA_FIELDS})


# Settings that are arrays in the fused trainer (`train.HParams` and the run keys).
RUN_DATA_FIELDS = (*train.HParams._fields, "seed")
_STRUCTURE = ImageConfig()

TINY = ImageConfig(
    image_shape=(8, 8, 3),
    batch_size=8,
    features=(4, 8),
    gen_features=(8, 4),
    disc_hidden=6,
    latent_dim=3,
    noise_dim=4,
)


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
        # Adam's moments only: the learning rate is applied from `train.HParams` (data), as in
        # the table trainer, so one compiled step serves every learning rate.
        ae_opt=train.AE_ADAM,
        disc_opt=train.GAN_ADAM,  # b1 = 0.5 (Radford et al. 2016)
        gen_opt=train.GAN_ADAM,
    )


def hparams_of(config: ImageConfig) -> train.HParams:
    """The config's numeric hyperparameters as [] float32 arrays (one run)."""
    return train.HParams(*(np.float32(getattr(config, f)) for f in train.HParams._fields))


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


def _update(opt, params, opt_state, grads, lr):
    """(params, opt_state) after one Adam step at learning rate `lr` (an array)."""
    return train._adam_update(opt, train.Network(params, opt_state), grads, lr)


def ae_step(
    models: ImageModels, config: ImageConfig, state: ImageTrainState, batch: Batch, key, hp: train.HParams
):
    """One autoencoder step on an augmented batch (eq. 4); unsupervised: labels never read."""
    x = _inputs(config, batch, key)

    def loss_fn(params):
        return losses.reconstruction_loss_eq4(models.ae.apply({"params": params}, x), x)

    loss, grads = jax.value_and_grad(loss_fn)(state.ae_params)
    ae_params, ae_opt = _update(models.ae_opt, state.ae_params, state.ae_opt, grads, hp.ae_lr)
    return state._replace(ae_params=ae_params, ae_opt=ae_opt), {"ae": loss}


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
    config: ImageConfig,
    state: ImageTrainState,
    batch: Batch,
    key,
    hp: train.HParams,
    place_batch: Callable[[jax.Array], jax.Array] = lambda a: a,
):
    """One SGAN step: discriminator (supervised on labelled rows + eq. 8), then generator.
    With `config.use_gan` False only the supervised term trains the discriminator.

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
    noise = lambda k: place_batch(jax.random.normal(k, (x.shape[0], config.noise_dim)))

    def d_loss_fn(dp):
        real_logits = disc(dp, x)[0]
        supervised = masked_supervised_loss(real_logits, batch["label"], batch["labeled"])
        if not config.use_gan:
            return supervised
        fake = jax.lax.stop_gradient(gen(state.gen_params, noise(k_zd)))
        unsupervised = losses.discriminator_loss_eq8(real_logits, disc(dp, fake)[0])
        return supervised + hp.unsupervised_weight * unsupervised

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(state.disc_params)
    disc_params, disc_opt = _update(models.disc_opt, state.disc_params, state.disc_opt, d_grads, hp.d_lr)
    state = state._replace(disc_params=disc_params, disc_opt=disc_opt)
    if not config.use_gan:
        return state, {"d": d_loss}

    def g_loss_fn(gp):
        fake_logits, fake_features = disc(disc_params, gen(gp, noise(k_zg)))
        if config.gen_loss == "eq7":
            return losses.generator_loss_eq7(fake_logits)
        real_features = jax.lax.stop_gradient(disc(disc_params, x)[1])
        return losses.feature_matching_loss(real_features, fake_features)

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state.gen_params)
    gen_params, gen_opt = _update(models.gen_opt, state.gen_params, state.gen_opt, g_grads, hp.g_lr)
    return state._replace(gen_params=gen_params, gen_opt=gen_opt), {"d": d_loss, "g": g_loss}


def run_step(
    models: ImageModels,
    config: ImageConfig,
    phase: str,
    state: ImageTrainState,
    batch: Batch,
    key,
    hp: train.HParams,
    **options,
):
    """One step of `phase` ("ae" or "gan") with the step key fold_in(key, step); advances the
    step counter. The one step both trainers run; `options` go to `gan_step`."""
    key = jax.random.fold_in(key, state.step)
    if phase == "ae":
        state, metrics = ae_step(models, config, state, batch, key, hp)
    else:
        state, metrics = gan_step(models, config, state, batch, key, hp, **options)
    return state._replace(step=state.step + 1), metrics


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
    hp = hparams_of(config)

    place_batch = lambda a: jax.lax.with_sharding_constraint(a, batch_sharding(mesh))

    def step(state, batch, labeled, key):
        batch = {"image": batch["image"], "label": batch["label"], "labeled": labeled[batch["index"]]}
        return run_step(models, config, phase, state, batch, key, hp, place_batch=place_batch)

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


def sample_images(config: ImageConfig, gen_params: Params, n: int, seed: int = 0) -> np.ndarray:
    """n generator samples G(z), z ~ N(0, I) drawn from `seed`, as uint8 images [n, H, W, C]
    (the inverse of `augment.to_float`: [-1, 1] → 0..255)."""
    z = jax.random.normal(jax.random.key(seed), (n, config.noise_dim))
    fake = np.asarray(build_models(config).gen.apply({"params": gen_params}, z), np.float32)
    return np.clip(np.round((fake + 1.0) * 127.5), 0, 255).astype(np.uint8)


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
    from gan_jax.training.input_pipeline import ImageBatches

    mesh = mesh or data_mesh()
    if config.batch_size % mesh.size:
        raise ValueError(f"batch_size {config.batch_size} does not split over {mesh.size} devices")
    n = len(source)
    rows = np.arange(n) if train_indices is None else np.asarray(train_indices)
    if labeled is None:
        labeled = np.zeros(n, bool)
        labeled[rows] = True
    replicated = NamedSharding(mesh, PartitionSpec())
    # Global arrays, so that with several processes (gan_jax.training.distributed) each places its own part.
    labeled = distributed.global_array(np.asarray(labeled, bool), replicated)
    key_data = np.asarray(jax.random.key_data(jax.random.key(config.seed)))
    key = jax.random.wrap_key_data(distributed.global_array(key_data, replicated))
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


# --- Fused, run-vmapped trainer (cross-validation studies) ----------------------------------


def make_runs(
    config: ImageConfig,
    labels: np.ndarray,
    train_masks: np.ndarray,
    labeled_masks: np.ndarray,
    run_ids: np.ndarray | None = None,
) -> train.RunSpec:
    """Host-side `train.RunSpec` of R runs, checked by `train.make_runs`: run keys from
    (config.seed, run id), the config's learning rates and unsupervised weight for every run.

    Args:
      train_masks, labeled_masks: [R, N] bool; each run's labelled rows lie within its training
        rows and hold both classes (`evaluate.labeled_masks` draws them).
    """
    n_runs = len(train_masks)
    hparams = train.HParams(*(np.full(n_runs, getattr(config, f), np.float32) for f in train.HParams._fields))
    return train.make_runs(config, labels, train_masks, labeled_masks, run_ids, hparams)


def init_run(config: ImageConfig, run: train.RunSpec) -> ImageTrainState:
    """Initial state of one run, from its own key only."""
    return init_state(config, train._init_and_step_keys(run.key)[0])


def train_image_chunk(
    config: ImageConfig,
    phase: str,
    n_steps: int,
    state: ImageTrainState,
    run: train.RunSpec,
    images: jax.Array,
    labels: jax.Array,
):
    """`n_steps` steps of `phase` for one run, fused with `lax.scan`.

    images [N, H, W, C] uint8 and labels [N] are the whole set; each step draws its batch from
    the run's training rows only (`train.row_sampler`), and the batch carries which of its rows
    are labelled. Step keys are fold_in(run's step key, global step), so chunking never changes
    the result. Returns the new state and per-step losses {name: [n_steps]}.
    """
    models = build_models(config)
    draw_train = train.row_sampler(run.train_mask)
    step_key = train._init_and_step_keys(run.key)[1]

    def body(s, _):
        k_rows, k_step = jax.random.split(jax.random.fold_in(step_key, s.step))
        rows = draw_train(k_rows, config.batch_size)
        batch = {"image": images[rows], "label": labels[rows], "labeled": run.labeled_mask[rows]}
        return run_step(models, config, phase, s, batch, k_step, run.hparams)

    return jax.lax.scan(body, state, None, length=n_steps)


@functools.lru_cache(maxsize=32)
def fused_image_chunk_fn(config: ImageConfig, phase: str, n_steps: int) -> Callable:
    """Jitted, run-vmapped chunk (states, runs, images, labels) -> (states, {loss: [n_steps, R]});
    `config` must be `config.structure()`, the state is donated."""
    fn = functools.partial(train_image_chunk, config, phase, n_steps)
    return jax.jit(jax.vmap(fn, in_axes=(0, 0, None, None), out_axes=(0, 1)), donate_argnums=(0,))


@functools.lru_cache(maxsize=8)
def _init_runs_fn(config: ImageConfig) -> Callable:
    return jax.jit(jax.vmap(functools.partial(init_run, config)))


@jax.jit
def _start_gan_phase_runs(state: ImageTrainState) -> ImageTrainState:
    return start_gan_phase(state)  # tree surgery: the same for a stacked state [R, ...]


class ImageRunsResult(NamedTuple):
    state: ImageTrainState  # leaves [R, ...]
    history: list[dict]  # one entry per chunk, as `train.TrainResult.history`


def train_image_runs(
    config: ImageConfig,
    images: np.ndarray,
    labels: np.ndarray,
    runs: train.RunSpec,
    *,
    ae_steps: int,
    gan_steps: int,
    log_every: int = 100,
    mesh: Mesh | None = None,
    state: ImageTrainState | None = None,
    on_chunk: Callable[[ImageTrainState, dict], None] | None = None,
) -> ImageRunsResult:
    """Trains R runs at once on images [N, H, W, C] uint8 with labels [N]: `ae_steps`
    autoencoder steps, then `gan_steps` SGAN steps, in chunks of `log_every` (one host sync
    each). A run's model depends only on its own RunSpec (never on the other runs of the call,
    nor on images outside its training rows, nor on labels outside its labelled rows).

    Args:
      runs: from `make_runs` (leaves [R, ...]).
      mesh: devices the runs axis is sharded over (default `train.runs_mesh()`).
      state: resume from it (leaves [R, ...]); training continues from its step.
      on_chunk: called after every chunk with the state and the chunk's log entry.
    Raises:
      ValueError: images are not uint8 [N, H, W, C] of `config.image_shape`, or labels not [N].
      NonFiniteLossError: a loss became NaN/inf (names the run and the step).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if (
        images.dtype != np.uint8
        or images.shape[1:] != tuple(config.image_shape)
        or len(labels) != len(images)
    ):
        raise ValueError(
            f"images {images.dtype} {images.shape}, labels {labels.shape}: expected uint8 "
            f"[N, {', '.join(map(str, config.image_shape))}] and labels [N]"
        )
    n_runs = len(runs.train_mask)
    mesh = mesh or train.runs_mesh()
    # place_inputs pads and shards the runs; it casts its x to float32, so the images (4× smaller
    # as uint8, converted per batch inside the step) are placed by its `put` instead.
    runs, _, labels, take, put = train.place_inputs(mesh, runs, np.zeros((1, 1)), labels)
    images = put(images, NamedSharding(mesh, PartitionSpec()))
    pad, by_run = len(take) - n_runs, NamedSharding(mesh, PartitionSpec("runs"))
    structure = config.structure()
    if state is None:
        state = _init_runs_fn(structure)(runs)
    elif pad:
        state = jax.tree.map(lambda a: np.asarray(a)[take], state)
    state = put(state, by_run)
    start = int(np.asarray(distributed.to_host(state.step)).reshape(-1)[0])
    schedule = train.phase_schedule(_Schedule(ae_steps, ae_steps + gan_steps, log_every), start)
    history = []
    for phase, first_step, n_steps in schedule:
        if phase == "gan" and first_step == ae_steps > 0 and config.disc_from_encoder:
            state = _start_gan_phase_runs(state)
        # The autoencoder phase does not depend on use_gan: one program for both models.
        program = structure if phase == "gan" else dataclasses.replace(structure, use_gan=True)
        state, step_losses = fused_image_chunk_fn(program, phase, n_steps)(state, runs, images, labels)
        step_losses = distributed.to_host(step_losses)  # the only host sync per chunk
        train._check_finite(step_losses, first_step, n_runs)
        entry = {"step": first_step + n_steps, "phase": phase}
        entry.update({k: float(np.mean(v[:, :n_runs])) for k, v in step_losses.items()})
        history.append(entry)
        if on_chunk is not None:
            on_chunk(train._unpad(state, n_runs, pad), entry)
    return ImageRunsResult(train._unpad(state, n_runs, pad), history)


class _Schedule(NamedTuple):  # what `train.phase_schedule` reads of a config
    ae_phase_steps: int
    total_steps: int
    log_every: int


@functools.lru_cache(maxsize=8)
def _predict_runs_fn(config: ImageConfig) -> Callable:
    return jax.jit(jax.vmap(functools.partial(predict_proba, config), in_axes=(0, None)))


def predict_runs(
    config: ImageConfig, state: ImageTrainState, images: np.ndarray, chunk: int = 512
) -> np.ndarray:
    """Malignant probability [R, N] of every run's discriminator-classifier (state leaves
    [R, ...]) on uint8 images [N, H, W, C], `chunk` images at a time (no augmentation)."""
    fn = _predict_runs_fn(config.structure())
    parts = [np.asarray(fn(state, images[i : i + chunk])) for i in range(0, len(images), chunk)]
    return np.concatenate(parts, axis=1)
