"""Train steps and the fused trainer.

One run = one (repeat, fold[, labelled fraction, hyperparameters]) of a study: fit the scaler on
the run's training rows, pretrain the autoencoder on them (eq. 4), then train the semi-
supervised GAN on the encoder's latent codes (eqs. 5-8). A training phase is one jitted
`lax.scan` over steps, `vmap`ped over runs, with the runs axis sharded over all devices; the
host sees metrics every `log_every` steps.

Labels are data: each run carries a mask of its *labelled* training rows. Everything
unsupervised (scaler, autoencoder, the SGAN's real/fake term, feature matching) uses all of
the run's training rows; only the supervised cross-entropy reads labels, and only those of the
labelled rows. Masks, keys and numeric hyperparameters are per-run arrays (`RunSpec`), so runs
that differ only in them share one compiled program.

Rows are never dropped: every run sees the full data matrix plus boolean masks, so folds of
unequal size share one compiled program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax.config import Config
from gan_jax.evaluation import evaluate
from gan_jax.models import (
    AutoEncoder,
    AuxClassifierDiscriminator,
    ConditionalDiscriminator,
    ConditionalGenerator,
    DiscriminatorClassifier,
    Generator,
    losses,
    preprocess,
)
from gan_jax.training import distributed

Params = Any
PHASES = ("ae", "gan")
# Adam's moment estimates; the learning rate is applied per run from `HParams`, so it is data.
AE_ADAM = optax.scale_by_adam()
# b1 = 0.5 is the usual GAN choice (Radford et al. 2016; Salimans et al. 2016).
GAN_ADAM = optax.scale_by_adam(b1=0.5)


class Network(NamedTuple):
    params: Params
    opt_state: optax.OptState


class TrainState(NamedTuple):
    step: jax.Array  # [] int32, global step over both phases
    scaler: preprocess.ScalerParams
    ae: Network
    disc: Network
    gen: Network


class ModelParams(NamedTuple):
    """What inference needs (and a bundle stores): the fitted scaler and every network's params."""

    scaler: preprocess.ScalerParams
    ae: Params
    disc: Params
    gen: Params


class HParams(NamedTuple):
    """Numeric hyperparameters of one run ([] float32 each): data, not compile-time constants."""

    ae_lr: jax.Array
    d_lr: jax.Array
    g_lr: jax.Array
    unsupervised_weight: jax.Array


class RunSpec(NamedTuple):
    """Everything that distinguishes one run from another in a fused call."""

    key: jax.Array  # [2] uint32: the run's base key
    train_mask: jax.Array  # [N] bool: the run's training rows (all of them unsupervised data)
    labeled_mask: jax.Array  # [N] bool: the training rows whose labels the classifier may read
    hparams: HParams


class Networks(NamedTuple):
    ae: AutoEncoder
    disc: DiscriminatorClassifier
    gen: Generator


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; names the run and the step."""


def build_networks(config: Config, n_features: int) -> Networks:
    classifier_dim = config.latent_dim if config.use_autoencoder else n_features
    return Networks(
        ae=AutoEncoder(config.ae_hidden, config.latent_dim, n_features),
        disc=DiscriminatorClassifier(config.disc_hidden, num_classes=2),
        gen=Generator(config.gen_hidden, classifier_dim, bounded=config.use_autoencoder),
    )


def hparams_of(config: Config, n_runs: int) -> HParams:
    """The config's numeric hyperparameters, one copy per run: [R] float32 each."""
    return HParams(*(np.full(n_runs, getattr(config, f), np.float32) for f in HParams._fields))


def run_keys(seed: int, run_ids: np.ndarray) -> jax.Array:
    """Each run's base key, a function of the seed and the run's index only."""
    base = jax.random.key_data(jax.random.key(seed))
    return jax.vmap(lambda r: jax.random.fold_in(base, r))(jnp.asarray(run_ids, jnp.uint32))


def _init_and_step_keys(run_key: jax.Array) -> tuple[jax.Array, jax.Array]:
    # Two independent streams: step keys are fold_in(step_key, step), so no training step can
    # reuse the initialisation's key whatever the number of steps.
    init_key, step_key = jax.random.split(run_key)
    return init_key, step_key


def init_state(config: Config, x: jax.Array, run: RunSpec) -> TrainState:
    """Initial state of one run; the scaler is fitted on the run's training rows only."""
    nets = build_networks(config, x.shape[1])
    k_ae, k_d, k_g = jax.random.split(_init_and_step_keys(run.key)[0], 3)
    classifier_dim = config.latent_dim if config.use_autoencoder else x.shape[1]
    ae = nets.ae.init(k_ae, jnp.zeros((1, x.shape[1])))["params"]
    disc = nets.disc.init(k_d, jnp.zeros((1, classifier_dim)))["params"]
    gen = nets.gen.init(k_g, jnp.zeros((1, config.noise_dim)))["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        scaler=preprocess.fit(config.scaler, x, run.train_mask),
        ae=Network(ae, AE_ADAM.init(ae)),
        disc=Network(disc, GAN_ADAM.init(disc)),
        gen=Network(gen, GAN_ADAM.init(gen)),
    )


def state_shapes(config: Config, n_features: int, n_runs: int | None = None) -> TrainState:
    """Shapes and dtypes (jax.ShapeDtypeStruct) of a run's TrainState, or of `n_runs` runs
    stacked; no compute. The one template of checkpoints and bundles."""
    n = 8  # any row count: no parameter's shape depends on it
    scalar = jax.ShapeDtypeStruct((), np.float32)
    run = RunSpec(
        jax.ShapeDtypeStruct((2,), np.uint32),
        jax.ShapeDtypeStruct((n,), bool),
        jax.ShapeDtypeStruct((n,), bool),
        HParams(*[scalar] * len(HParams._fields)),
    )
    init = functools.partial(init_state, config)
    if n_runs is not None:
        init = jax.vmap(init, in_axes=(None, 0))
        run = jax.tree.map(lambda s: jax.ShapeDtypeStruct((n_runs, *s.shape), s.dtype), run)
    return jax.eval_shape(init, jax.ShapeDtypeStruct((n, n_features), np.float32), run)


def model_params(state: TrainState) -> ModelParams:
    return ModelParams(state.scaler, state.ae.params, state.disc.params, state.gen.params)


def classifier_inputs(config: Config, model: ModelParams, x: jax.Array) -> jax.Array:
    """Raw features [N, F] → what the classifier sees: latent codes [N, L] or scaled features."""
    xs = preprocess.apply(model.scaler, x)
    if not config.use_autoencoder:
        return xs
    ae = build_networks(config, x.shape[1]).ae
    return ae.apply({"params": model.ae}, xs, method=AutoEncoder.encode)


def predict_proba(config: Config, model: ModelParams, x: jax.Array) -> jax.Array:
    """Malignant probability [N] (class 1 of the K-class head) of one run's model for raw
    feature rows x [N, F]."""
    disc = build_networks(config, x.shape[1]).disc
    logits, _ = disc.apply({"params": model.disc}, classifier_inputs(config, model, x))
    return jax.nn.softmax(logits, axis=-1)[:, evaluate.MALIGNANT]


def row_sampler(mask: jax.Array) -> Callable[[jax.Array, int], jax.Array]:
    """(key, size) -> `size` indices of rows where `mask` [N], uniform with replacement. The
    only way a step picks rows: a run's rows outside the mask can never be drawn."""
    rows = jnp.argsort(~mask, stable=True)  # masked rows first
    n = jnp.sum(mask)
    return lambda key, size: rows[jax.random.randint(key, (size,), 0, n)]


def _adam_update(opt: optax.GradientTransformation, net: Network, grads, lr: jax.Array) -> Network:
    updates, opt_state = opt.update(grads, net.opt_state, net.params)
    updates = jax.tree.map(lambda u: -lr * u, updates)
    return Network(optax.apply_updates(net.params, updates), opt_state)


def ae_step(nets: Networks, config: Config, state: TrainState, key, hp: HParams, xs, draw_train):
    """One autoencoder step on a batch of the run's scaled training rows (eq. 4): unsupervised,
    so every training row is used, labelled or not."""
    batch = xs[draw_train(key, config.batch_size)]  # [B, F]

    def loss_fn(params):
        return losses.reconstruction_loss_eq4(nets.ae.apply({"params": params}, batch), batch)

    loss, grads = jax.value_and_grad(loss_fn)(state.ae.params)
    return state._replace(ae=_adam_update(AE_ADAM, state.ae, grads, hp.ae_lr)), {"ae": loss}


def gan_step(
    nets: Networks, config: Config, state: TrainState, key, hp: HParams, features, y, draw_labeled, draw_train
):
    """One semi-supervised GAN step on classifier inputs features [N, D]: discriminator, then
    generator.

    The supervised cross-entropy sees a batch of *labelled* rows (`draw_labeled`); the
    real/fake term and feature matching see a batch of *all* training rows (`draw_train`), whose
    labels are never read. With `config.use_gan` False only the supervised term is trained: the
    same classifier as a plain supervised MLP on the labelled rows.
    """
    k_lab, k_real, k_zd, k_zg = jax.random.split(key, 4)
    b = config.batch_size
    lab = draw_labeled(k_lab, b)
    x_lab, y_lab = features[lab], y[lab]
    x_real = features[draw_train(k_real, b)]
    disc = lambda p, v: nets.disc.apply({"params": p}, v)
    gen = lambda p, z: nets.gen.apply({"params": p}, z)
    noise = lambda k: jax.random.normal(k, (b, config.noise_dim))

    def d_loss_fn(dp):
        if not config.use_gan:
            return losses.supervised_loss(disc(dp, x_lab)[0], y_lab)
        fake = jax.lax.stop_gradient(gen(state.gen.params, noise(k_zd)))
        return losses.sgan_discriminator_loss(
            disc(dp, x_lab)[0], y_lab, disc(dp, x_real)[0], disc(dp, fake)[0], hp.unsupervised_weight
        )

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(state.disc.params)
    state = state._replace(disc=_adam_update(GAN_ADAM, state.disc, d_grads, hp.d_lr))
    if not config.use_gan:
        return state, {"d": d_loss}
    disc_params = state.disc.params

    def g_loss_fn(gp):
        fake_logits, fake_features = disc(disc_params, gen(gp, noise(k_zg)))
        if config.gen_loss == "eq7":
            return losses.generator_loss_eq7(fake_logits)
        real_features = jax.lax.stop_gradient(disc(disc_params, x_real)[1])
        return losses.feature_matching_loss(real_features, fake_features)

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state.gen.params)
    state = state._replace(gen=_adam_update(GAN_ADAM, state.gen, g_grads, hp.g_lr))
    return state, {"d": d_loss, "g": g_loss}


def train_chunk(config: Config, phase: str, n_steps: int, state: TrainState, run: RunSpec, x, y):
    """`n_steps` steps of `phase` for one run, fused with `lax.scan`. Returns the new state and
    per-step losses {name: [n_steps]}. The step key is fold_in(run's step key, global step), so
    the result does not depend on how a training is cut into chunks (which makes resume exact)."""
    nets = build_networks(config, x.shape[1])
    draw_train = row_sampler(run.train_mask)
    if phase == "ae":
        inputs = preprocess.apply(state.scaler, x)
        step_fn = lambda s, k: ae_step(nets, config, s, k, run.hparams, inputs, draw_train)
    else:
        inputs = classifier_inputs(config, model_params(state), x)  # the encoder is frozen here
        draw_labeled = row_sampler(run.labeled_mask)
        step_fn = lambda s, k: gan_step(nets, config, s, k, run.hparams, inputs, y, draw_labeled, draw_train)
    step_key = _init_and_step_keys(run.key)[1]

    def body(s, _):
        s, metrics = step_fn(s, jax.random.fold_in(step_key, s.step))
        return s._replace(step=s.step + 1), metrics

    return jax.lax.scan(body, state, None, length=n_steps)


@functools.lru_cache(maxsize=64)
def fused_chunk_fn(config: Config, phase: str, n_steps: int, n_blocks: int = 1) -> Callable:
    """The jitted, run-vmapped chunk: (states, runs, x, y) -> (states, {loss: [n_steps, R]}).
    `config` must be `config.structure()`, so numeric settings never make a new program.

    With n_blocks > 1 (R a multiple of n_blocks × devices) the runs train in n_blocks blocks one
    after another inside the same program (`run_blocks`), each block all `n_steps` steps with
    its state resident in cache; the models are the same (see `train_runs`)."""
    fn = functools.partial(train_chunk, config, phase, n_steps)
    vmapped = jax.vmap(fn, in_axes=(0, 0, None, None), out_axes=(0, 1))
    return jax.jit(run_blocks(vmapped, n_blocks) if n_blocks > 1 else vmapped, donate_argnums=(0,))


def run_blocks(chunk: Callable, n_blocks: int) -> Callable:
    """`chunk` (run-vmapped: leaves [R, ...] in, state [R, ...] and losses [n_steps, R] out)
    applied to n_blocks blocks of runs in turn (`lax.map`), same inputs and outputs.

    Block j holds runs j, j + n_blocks, j + 2 n_blocks, ...: [R] reshaped to [R / n_blocks,
    n_blocks] keeps axis 0 sharded over the devices exactly as [R] was (each device's runs stay
    contiguous on it), so every block is spread evenly over all devices and no run moves
    between devices; the inverse reshape puts the runs back in their order."""

    def split(a):  # [R, ...] -> [n_blocks, R / n_blocks, ...]
        return jnp.swapaxes(a.reshape(-1, n_blocks, *a.shape[1:]), 0, 1)

    def merge(a):  # [n_blocks, R / n_blocks, ...] -> [R, ...]
        return jnp.swapaxes(a, 0, 1).reshape(-1, *a.shape[2:])

    def blocked(states, runs, x, y):
        new, step_losses = jax.lax.map(lambda b: chunk(*b, x, y), jax.tree.map(split, (states, runs)))
        # step_losses: [n_blocks, n_steps, R / n_blocks] -> [n_steps, R]
        return jax.tree.map(merge, new), jax.tree.map(lambda v: merge(jnp.swapaxes(v, 1, 2)).T, step_losses)

    return blocked


# Per-device block on CPU: as many runs as fit in this many bytes of training state (params and
# Adam moments) plus the run's own copy of the data, so a block stays in a core's cache (L2:
# 2 MiB per core on the machine measured) through its steps; block sizes compared in part (d)
# of scripts/bench_scale.py (results/bench_scale_devices_blocks/bench_scale.md).
CPU_BLOCK_BYTES = 2 << 20


def state_bytes_per_run(config: Config, n_features: int) -> int:
    """Bytes of one run's TrainState (scaler, params, Adam moments)."""
    return _state_bytes(config.structure(), n_features)


@functools.lru_cache(maxsize=64)
def _state_bytes(structure: Config, n_features: int) -> int:
    # Cached: tracing init_state for its shapes on every train_runs call would cost a trace each.
    leaves = jax.tree.leaves(state_shapes(structure, n_features))
    return int(sum(np.prod(s.shape) * np.dtype(s.dtype).itemsize for s in leaves))


def default_block_runs(config: Config, x_shape: tuple[int, int], platform: str) -> int | None:
    """Runs per device per block for `train_runs(block_runs="auto")`: on CPU the runs whose state
    and data copy ([N, F] float32) fit `CPU_BLOCK_BYTES`; elsewhere None (no blocks: a GPU or
    TPU wants the widest batch)."""
    if platform != "cpu":
        return None
    per_run = state_bytes_per_run(config, x_shape[1]) + 4 * x_shape[0] * x_shape[1]
    return max(1, CPU_BLOCK_BYTES // per_run)


def n_run_blocks(
    config: Config, x_shape: tuple[int, int], mesh: Mesh, n_runs: int, block_runs: int | str | None
) -> int:
    """How many blocks `train_runs` splits `n_runs` runs into on `mesh` (1: no blocks).

    Raises:
      ValueError: block_runs is not "auto", None or an int >= 1.
    """
    if block_runs == "auto":
        block_runs = default_block_runs(config, x_shape, mesh.devices.flat[0].platform)
    elif block_runs is not None and (not isinstance(block_runs, int) or block_runs < 1):
        raise ValueError(
            f"block_runs={block_runs!r}: expected 'auto', None (no blocks) or an int >= 1 "
            "(runs per device in each block)"
        )
    per_device = -(-n_runs // mesh.size)
    return 1 if block_runs is None else -(-per_device // block_runs)


@functools.lru_cache(maxsize=16)
def _init_fn(config: Config) -> Callable:
    return jax.jit(jax.vmap(functools.partial(init_state, config), in_axes=(None, 0)))


def runs_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all) whose single axis carries the runs."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("runs",))


def phase_schedule(config: Config, start_step: int = 0) -> list[tuple[str, int, int]]:
    """(phase, first step, n_steps) chunks from `start_step` to the end of training."""
    bounds = {"ae": (0, config.ae_phase_steps), "gan": (config.ae_phase_steps, config.total_steps)}
    chunks = []
    for phase in PHASES:
        lo, hi = bounds[phase]
        step = max(lo, start_step)
        while step < hi:
            n = min(config.log_every, hi - step)
            chunks.append((phase, step, n))
            step += n
    return chunks


class TrainResult(NamedTuple):
    state: TrainState  # leaves [R, ...] on the host-visible devices
    # One entry per chunk: {"step", "phase", <loss>: mean over runs and steps,
    # "per_run": {<loss>: [R] mean over the chunk's steps}}.
    history: list[dict]


def make_runs(
    config: Config,
    y: np.ndarray,
    train_masks: np.ndarray,
    labeled_masks: np.ndarray | None = None,
    run_ids: np.ndarray | None = None,
    hparams: HParams | None = None,
) -> RunSpec:
    """Host-side (numpy) RunSpec of R runs, checked.

    Args:
      train_masks: [R, N] bool training rows.
      labeled_masks: [R, N] bool labelled rows, each within its run's training rows and holding
        both classes (default: `evaluate.labeled_masks` at `config.labeled_fraction`).
      run_ids: [R] indices that seed each run (default 0..R-1).
      hparams: [R] arrays (default: the config's values for every run).
    """
    train_masks = np.asarray(train_masks, bool)
    n_runs = len(train_masks)
    run_ids = np.arange(n_runs) if run_ids is None else np.asarray(run_ids)
    if labeled_masks is None:
        labeled_masks = evaluate.labeled_masks(y, train_masks, config.labeled_fraction, config.seed, run_ids)
    labeled_masks = np.asarray(labeled_masks, bool)
    outside = labeled_masks & ~train_masks
    if outside.any():
        r, i = np.argwhere(outside)[0]
        raise ValueError(f"run {r}: row {i} is labelled but not a training row")
    for r, lab in enumerate(labeled_masks):
        if len(np.unique(np.asarray(y)[lab])) < 2:
            raise ValueError(f"run {r}: its labelled rows must hold both classes")
    hparams = hparams_of(config, n_runs) if hparams is None else HParams(*map(np.asarray, hparams))
    return RunSpec(np.asarray(run_keys(config.seed, run_ids)), train_masks, labeled_masks, hparams)


def place_inputs(mesh: Mesh, runs, x: np.ndarray, y: np.ndarray, n_blocks: int = 1):
    """(runs, x, y on the mesh, the run indices `take`, `put`): the runs axis padded to a multiple
    of n_blocks × the device count with copies of the last run and sharded; x [N, F] and y [N]
    replicated. Global arrays, so with several processes (gan_jax.training.distributed) each feeds its
    own devices."""
    n_runs = len(runs.train_mask)
    pad = -n_runs % (mesh.size * n_blocks)
    take = np.concatenate([np.arange(n_runs), np.full(pad, n_runs - 1)]).astype(int)
    put = lambda tree, sharding: jax.tree.map(lambda a: distributed.global_array(a, sharding), tree)
    replicated = NamedSharding(mesh, PartitionSpec())
    runs = put(jax.tree.map(lambda a: np.asarray(a)[take], runs), NamedSharding(mesh, PartitionSpec("runs")))
    return (
        runs,
        put(np.asarray(x, np.float32), replicated),
        put(np.asarray(y, np.int32), replicated),
        take,
        put,
    )


def train_runs(
    config: Config,
    x: np.ndarray,
    y: np.ndarray,
    runs: RunSpec,
    *,
    state: TrainState | None = None,
    mesh: Mesh | None = None,
    on_chunk: Callable[[TrainState, dict], None] | None = None,
    progress: bool = False,
    block_runs: int | str | None = "auto",
) -> TrainResult:
    """Trains R runs at once: x [N, F], y [N], `runs` from `make_runs` (leaves [R, ...]).

    A run's model depends only on its own RunSpec, never on the other runs of the call:
    replacing every other run leaves its parameters bit-identical (same number of runs per
    device). A run trained alone (R = 1) uses other compiled kernels, so it agrees with the
    same run in a batch only up to float rounding, which grows over training.

    The runs of a call may train in blocks, one after another inside the same compiled
    program (`block_runs`): each block keeps its state in the CPU's cache through a whole
    chunk of steps instead of streaming every run's state through memory at every step.
    Blocks change no model: a block's runs are bit-identical to an unblocked call of just
    those runs (same runs per device), and agree with one unblocked call of all runs up to
    float rounding (another batch width per device may round differently), as above.

    Args:
      state: a state to resume from (e.g. restored from a checkpoint); training continues
        from its step.
      mesh: devices to shard the runs over (default: all devices).
      on_chunk: called after every chunk with the state and the chunk's log entry
        (checkpointing, progress reporting).
      block_runs: runs per device in each block; "auto" (default): `default_block_runs`
        (blocks on CPU only); None: all runs in one block.
    Raises:
      NonFiniteLossError: a loss became NaN/inf; the message names the run and the step.
    """
    n_runs = len(runs.train_mask)
    mesh = mesh or runs_mesh()
    n_blocks = n_run_blocks(config, np.shape(x), mesh, n_runs, block_runs)
    runs, x, y, take, put = place_inputs(mesh, runs, x, y, n_blocks)
    pad, by_run = len(take) - n_runs, NamedSharding(mesh, PartitionSpec("runs"))
    structure = config.structure()
    if state is None:
        state = _init_fn(structure)(x, runs)
    else:
        state = jax.tree.map(lambda a: np.asarray(a)[take] if pad else a, state)
    state = put(state, by_run)

    start = int(np.asarray(distributed.to_host(state.step)).reshape(-1)[0])
    history = []
    bar = _progress_bar(config, start) if progress and distributed.is_main_process() else None
    for phase, first_step, n_steps in phase_schedule(config, start):
        state, step_losses = fused_chunk_fn(structure, phase, n_steps, n_blocks)(state, runs, x, y)
        step_losses = distributed.to_host(step_losses)  # the only host sync per chunk
        _check_finite(step_losses, first_step, n_runs)
        entry = {"step": first_step + n_steps, "phase": phase}
        entry.update({k: float(np.mean(v[:, :n_runs])) for k, v in step_losses.items()})
        entry["per_run"] = {k: np.mean(v[:, :n_runs], axis=0).tolist() for k, v in step_losses.items()}
        history.append(entry)
        if on_chunk is not None:
            on_chunk(_unpad(state, n_runs, pad), entry)
        if bar is not None:
            bar.update(n_steps)
            bar.set_postfix({k: f"{entry[k]:.3f}" for k in step_losses})
    if bar is not None:
        bar.close()
    if jax.process_count() > 1:  # every process gets every run's state, as host arrays
        state = distributed.to_host(state)
    return TrainResult(_unpad(state, n_runs, pad), history)


def _unpad(state: TrainState, n_runs: int, pad: int) -> TrainState:
    return jax.tree.map(lambda a: a[:n_runs], state) if pad else state


def _check_finite(step_losses: dict[str, np.ndarray], first_step: int, n_runs: int) -> None:
    for name, values in step_losses.items():  # values: [n_steps, R]
        bad = ~np.isfinite(values[:, :n_runs])
        if bad.any():
            step, run = np.argwhere(bad)[0]
            raise NonFiniteLossError(
                f"run {run}: the {name!r} loss is {values[step, run]} at step "
                f"{first_step + step}; training stopped (try a lower learning rate)"
            )


def _progress_bar(config: Config, start: int):
    from tqdm.auto import tqdm

    return tqdm(total=config.total_steps, initial=start, desc=config.name, unit="step")


@functools.lru_cache(maxsize=16)
def _predict_fn(config: Config) -> Callable:
    return jax.jit(jax.vmap(functools.partial(predict_proba, config), in_axes=(0, None)))


def predict_runs(config: Config, model: ModelParams, x: np.ndarray) -> np.ndarray:
    """Malignant probability [R, N] of every run's model (leaves [R, ...]) on rows x [N, F]."""
    return np.asarray(_predict_fn(config.structure())(model, jnp.asarray(x, jnp.float32)))


# --- Class-conditional generator of synthetic rows (config.synth_model "cgan" or "acgan") ---
#
# Its own fused call (`train_synth_runs`), on the same per-run masks as the classifier: a
# conditional GAN in the scaled feature space of each run's training rows. Real rows come only
# from the run's training rows; labels only from its labelled rows (the cGAN's real pairs, the
# AC-GAN's class term and the class prior); the AC-GAN's real/fake term sees every training row.

SYNTH_ADAM = optax.scale_by_adam(b1=0.5)
_SYNTH_STREAM = 0x5E17  # the synthesiser's keys: fold_in(run key, this), apart from the classifier's
NUM_CLASSES = 2


class SynthTransform(NamedTuple):
    """Original units ↔ the generator's space, fitted on one run's training rows."""

    scaler: preprocess.ScalerParams  # fitted on log1p(x) (config.synth_log1p) or x
    lo: jax.Array  # [F] each feature's minimum over the training rows (original units, >= 0)
    hi: jax.Array  # [F] each feature's maximum over the training rows


class SynthState(NamedTuple):
    step: jax.Array  # [] int32
    transform: SynthTransform
    prior: jax.Array  # [K] class shares among the run's labelled rows
    gen: Network
    disc: Network


class SynthHParams(NamedTuple):
    synth_g_lr: jax.Array  # [] float32
    synth_d_lr: jax.Array


class SynthRunSpec(NamedTuple):
    key: jax.Array  # [2] uint32
    train_mask: jax.Array  # [N] bool
    labeled_mask: jax.Array  # [N] bool
    hparams: SynthHParams


class SynthNetworks(NamedTuple):
    gen: ConditionalGenerator
    disc: ConditionalDiscriminator | AuxClassifierDiscriminator


def build_synth_networks(config: Config, n_features: int) -> SynthNetworks:
    if config.synth_model not in ("cgan", "acgan"):
        raise ValueError(f"config {config.name!r}: synth_model is {config.synth_model!r}; set cgan or acgan")
    disc_cls = AuxClassifierDiscriminator if config.synth_model == "acgan" else ConditionalDiscriminator
    return SynthNetworks(
        gen=ConditionalGenerator(config.synth_gen_hidden, n_features, NUM_CLASSES),
        disc=disc_cls(config.synth_disc_hidden, NUM_CLASSES),
    )


def make_synth_runs(config: Config, y: np.ndarray, train_masks: np.ndarray, **kwargs) -> SynthRunSpec:
    """Host-side SynthRunSpec of R runs; the same checks and arguments as `make_runs` (the
    labelled rows default to `config.labeled_fraction`). A run's synthesiser key is derived
    from, and independent of, the key its classifier gets in `make_runs`."""
    runs = make_runs(config, y, train_masks, **{k: v for k, v in kwargs.items() if k != "hparams"})
    keys = jax.vmap(lambda k: jax.random.fold_in(k, _SYNTH_STREAM))(jnp.asarray(runs.key))
    n = len(runs.train_mask)
    hparams = kwargs.get("hparams") or SynthHParams(
        *(np.full(n, getattr(config, f), np.float32) for f in SynthHParams._fields)
    )
    return SynthRunSpec(
        np.asarray(keys), runs.train_mask, runs.labeled_mask, SynthHParams(*map(np.asarray, hparams))
    )


def fit_synth_transform(config: Config, x: jax.Array, mask: jax.Array) -> SynthTransform:
    """The generator's space, fitted on the rows of x [N, F] where mask [N] only."""
    m = mask.astype(bool)[:, None]
    lo = jnp.maximum(jnp.min(jnp.where(m, x, jnp.inf), axis=0), 0.0)
    hi = jnp.max(jnp.where(m, x, -jnp.inf), axis=0)
    v = jnp.log1p(jnp.maximum(x, 0.0)) if config.synth_log1p else x
    return SynthTransform(preprocess.fit(config.synth_scaler, v, mask), lo, hi)


def synth_forward(config: Config, t: SynthTransform, x: jax.Array) -> jax.Array:
    """Original units [..., F] → the generator's scaled space."""
    v = jnp.log1p(jnp.maximum(x, 0.0)) if config.synth_log1p else x
    return preprocess.apply(t.scaler, v)


def synth_inverse(config: Config, t: SynthTransform, xs: jax.Array) -> jax.Array:
    """The generator's space [..., F] → original units, clipped to each feature's range over
    the run's training rows (SDV's `enforce_min_max_values`), itself within [0, ∞)."""
    v = xs * t.scaler.scale + t.scaler.shift
    x = jnp.expm1(v) if config.synth_log1p else v
    return jnp.clip(x, t.lo, t.hi)


def init_synth_state(config: Config, x: jax.Array, y: jax.Array, run: SynthRunSpec) -> SynthState:
    """Initial synthesiser state of one run; transform and class prior from its own rows."""
    nets = build_synth_networks(config, x.shape[1])
    k_g, k_d = jax.random.split(_init_and_step_keys(run.key)[0])
    z, c = jnp.zeros((1, config.synth_noise_dim)), jnp.zeros((1,), jnp.int32)
    gen = nets.gen.init(k_g, z, c)["params"]
    disc = nets.disc.init(k_d, jnp.zeros((1, x.shape[1])), c)["params"]
    lab = run.labeled_mask.astype(bool)
    counts = jnp.stack([jnp.sum(lab & (y == k)) for k in range(NUM_CLASSES)]).astype(jnp.float32)
    return SynthState(
        step=jnp.zeros((), jnp.int32),
        transform=fit_synth_transform(config, x, run.train_mask),
        prior=counts / jnp.sum(counts),
        gen=Network(gen, SYNTH_ADAM.init(gen)),
        disc=Network(disc, SYNTH_ADAM.init(disc)),
    )


def synth_step(
    nets: SynthNetworks,
    config: Config,
    state: SynthState,
    key,
    hp: SynthHParams,
    xs,
    y,
    draw_labeled,
    draw_train,
):
    """One conditional-GAN step on scaled training rows xs [N, F]: discriminator, then generator.
    Fakes are conditioned on labels drawn from the run's labelled class prior."""
    k_lab, k_real, k_zd, k_yd, k_zg, k_yg = jax.random.split(key, 6)
    b = config.synth_batch_size
    lab = draw_labeled(k_lab, b)
    x_lab, y_lab = xs[lab], y[lab]
    x_real = xs[draw_train(k_real, b)]  # AC-GAN's real/fake term: labels never read
    acgan = config.synth_model == "acgan"
    labels = lambda k: jax.random.categorical(k, jnp.log(state.prior), shape=(b,))
    noise = lambda k: jax.random.normal(k, (b, config.synth_noise_dim))
    gen = lambda p, z, c: nets.gen.apply({"params": p}, z, c)
    disc = lambda p, v, c: nets.disc.apply({"params": p}, v, c)
    y_fd = labels(k_yd)
    fake_d = jax.lax.stop_gradient(gen(state.gen.params, noise(k_zd), y_fd))

    def d_loss_fn(dp):
        fake_src, fake_cls = disc(dp, fake_d, y_fd)
        if not acgan:
            return losses.cgan_discriminator_loss(disc(dp, x_lab, y_lab)[0], fake_src)
        real_src = disc(dp, x_real, None)[0]
        return losses.acgan_discriminator_loss(
            real_src, fake_src, disc(dp, x_lab, None)[1], y_lab, fake_cls, y_fd
        )

    d_loss, d_grads = jax.value_and_grad(d_loss_fn)(state.disc.params)
    state = state._replace(disc=_adam_update(SYNTH_ADAM, state.disc, d_grads, hp.synth_d_lr))
    y_fg, disc_params = labels(k_yg), state.disc.params

    def g_loss_fn(gp):
        src, cls = disc(disc_params, gen(gp, noise(k_zg), y_fg), y_fg)
        return losses.acgan_generator_loss(src, cls, y_fg) if acgan else losses.cgan_generator_loss(src)

    g_loss, g_grads = jax.value_and_grad(g_loss_fn)(state.gen.params)
    state = state._replace(gen=_adam_update(SYNTH_ADAM, state.gen, g_grads, hp.synth_g_lr))
    return state, {"synth_d": d_loss, "synth_g": g_loss}


def train_synth_chunk(config: Config, n_steps: int, state: SynthState, run: SynthRunSpec, x, y):
    """`n_steps` synthesiser steps of one run, fused with `lax.scan` (keys as `train_chunk`)."""
    nets = build_synth_networks(config, x.shape[1])
    xs = synth_forward(config, state.transform, x)
    draw_train, draw_labeled = row_sampler(run.train_mask), row_sampler(run.labeled_mask)
    step_key = _init_and_step_keys(run.key)[1]

    def body(s, _):
        k = jax.random.fold_in(step_key, s.step)
        s, metrics = synth_step(nets, config, s, k, run.hparams, xs, y, draw_labeled, draw_train)
        return s._replace(step=s.step + 1), metrics

    return jax.lax.scan(body, state, None, length=n_steps)


@functools.lru_cache(maxsize=16)
def fused_synth_chunk_fn(config: Config, n_steps: int) -> Callable:
    fn = functools.partial(train_synth_chunk, config, n_steps)
    return jax.jit(jax.vmap(fn, in_axes=(0, 0, None, None), out_axes=(0, 1)), donate_argnums=(0,))


@functools.lru_cache(maxsize=16)
def _init_synth_fn(config: Config) -> Callable:
    return jax.jit(jax.vmap(functools.partial(init_synth_state, config), in_axes=(None, None, 0)))


class SynthResult(NamedTuple):
    state: SynthState  # leaves [R, ...]
    history: list[dict]


def train_synth_runs(
    config: Config, x: np.ndarray, y: np.ndarray, runs: SynthRunSpec, *, mesh: Mesh | None = None
) -> SynthResult:
    """Trains the class-conditional generator of R runs in one fused, run-vmapped call (the
    runs axis sharded over `mesh`), `config.synth_steps` steps in chunks of `log_every`.

    Raises:
      NonFiniteLossError: a loss became NaN/inf (names the run and the step).
    """
    n_runs = len(runs.train_mask)
    mesh = mesh or runs_mesh()
    runs, x, y, take, put = place_inputs(mesh, runs, x, y)
    pad, by_run = len(take) - n_runs, NamedSharding(mesh, PartitionSpec("runs"))
    structure = config.structure()
    state = put(_init_synth_fn(structure)(x, y, runs), by_run)
    history, step = [], 0
    while step < config.synth_steps:
        n = min(config.log_every, config.synth_steps - step)
        state, step_losses = fused_synth_chunk_fn(structure, n)(state, runs, x, y)
        step_losses = jax.device_get(step_losses)
        _check_finite(step_losses, step, n_runs)
        step += n
        history.append(
            {
                "step": step,
                "phase": "synth",
                **{k: float(np.mean(v[:, :n_runs])) for k, v in step_losses.items()},
            }
        )
    return SynthResult(_unpad(state, n_runs, pad), history)
