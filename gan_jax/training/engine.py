"""The one run engine: trains R independent runs of one model family at once.

A run is one (repeat, fold[, labelled fraction, hyperparameters]) of a study. Everything that
distinguishes runs is data (`RunSpec`: key, training mask, labelled mask, numeric
hyperparameters as arrays), so runs that differ only in it share one compiled program. A
training phase is cut into chunks of `log_every` steps; a chunk is one jitted `lax.scan` over
steps, `vmap`ped over runs, the runs axis sharded over all devices (padded to a multiple of
them), the state donated; the host sees the losses once per chunk (finite check, history, the
per-chunk callback: checkpoints, progress, TensorBoard).

A model family plugs in as a `Trainer`: pure functions `init` (one run's first state) and
`step` (one training step of one run), plus `prepare` (what every step of a chunk reads,
computed once per chunk) and `predict`. The engine owns keys, placement, padding, blocks, the
schedule, the finite check, the fused chunk, prediction and the host gather; the table, image
and synthesiser trainers (`gan_jax.training.table`, `.image`, `.synth`) own only their maths.
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

from gan_jax.training import blocks, callbacks, distributed

Params = Any


class Network(NamedTuple):
    params: Params
    opt_state: optax.OptState


# Adam's moment estimates; the learning rate is applied per run from `HParams`, so it is data.
AE_ADAM = optax.scale_by_adam()
# b1 = 0.5 is the usual GAN choice (Radford et al. 2016; Salimans et al. 2016).
GAN_ADAM = optax.scale_by_adam(b1=0.5)


def adam_update(opt: optax.GradientTransformation, net: Network, grads, lr: jax.Array) -> Network:
    """`net` after one step of `opt` (Adam's moments) at learning rate `lr` (an array: data)."""
    updates, opt_state = opt.update(grads, net.opt_state, net.params)
    updates = jax.tree.map(lambda u: -lr * u, updates)
    return Network(optax.apply_updates(net.params, updates), opt_state)


class GANState(NamedTuple):
    """One run's training state (haiku mnist_gan's GANState idea): a `Network` per model."""

    step: jax.Array  # [] int32, global step over every phase
    fitted: Any  # what `init` fitted on the run's own rows (table: scaler; synth: transform, prior)
    ae: Network | None  # the autoencoder (None: the synthesiser has none)
    disc: Network
    gen: Network
    teacher: Params = None  # the table trainer's EMA copy of disc params (`schedule.ssl_extras`)


class HParams(NamedTuple):
    """Numeric hyperparameters of one classifier run ([] float32 each): data, not compile-time
    constants (the synthesiser has its own, `synth.SynthHParams`)."""

    ae_lr: jax.Array
    d_lr: jax.Array
    g_lr: jax.Array
    unsupervised_weight: jax.Array


class RunSpec(NamedTuple):
    """Everything that distinguishes one run from another in a fused call."""

    key: jax.Array  # [2] uint32: the run's base key
    train_mask: jax.Array  # [N] bool: the run's training rows (all of them unsupervised data)
    labeled_mask: jax.Array  # [N] bool: the training rows whose labels the classifier may read
    hparams: Any  # a NamedTuple of [] float32 (`HParams`, `synth.SynthHParams`)


class Trainer(NamedTuple):
    """A model family, as pure functions of a `structure()` config (hashable: a jit key).

    init(config, data, run) -> GANState of one run.
    prepare(config, phase, state, run, data) -> inputs: what every step of a chunk reads,
      computed once per chunk (e.g. the run's scaled rows, its row samplers).
    step(config, phase, state, key, run, inputs) -> (state, {loss name: [] float}); the engine
      advances `state.step`.
    predict(config, model, x) -> [N] malignant probability of one run's model.
    begin_phase(config, phase, state) -> state, at the first step of a phase after another
      (e.g. the image trainer copies the encoder's trunk into the discriminator); None: nothing.
    program(config, phase) -> the config a phase's chunk is compiled for (default: config).
    """

    init: Callable
    prepare: Callable
    step: Callable
    predict: Callable | None = None
    begin_phase: Callable | None = None
    program: Callable | None = None


class Schedule(NamedTuple):
    """Phases in order, (name, number of steps) each, and the steps per chunk."""

    phases: tuple[tuple[str, int], ...]
    log_every: int

    @property
    def total_steps(self) -> int:
        return sum(n for _, n in self.phases)


class TrainResult(NamedTuple):
    state: GANState  # leaves [R, ...], host-visible
    # One entry per chunk: {"step", "phase", <loss>: mean over runs and steps,
    # "per_run": {<loss>: [R] mean over the chunk's steps}}.
    history: list[dict]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; names the run and the step."""


def run_keys(seed: int, run_ids: np.ndarray) -> jax.Array:
    """Each run's base key, a function of the seed and the run's index only."""
    base = jax.random.key_data(jax.random.key(seed))
    return jax.vmap(lambda r: jax.random.fold_in(base, r))(jnp.asarray(run_ids, jnp.uint32))


def init_and_step_keys(run_key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(init key, step key) of a run. Two independent streams: step keys are fold_in(step key,
    step), so no training step can reuse the initialisation's key whatever the number of steps."""
    init_key, step_key = jax.random.split(run_key)
    return init_key, step_key


class RowSampler(NamedTuple):
    """Uniform draws with replacement among the rows of a mask: the only way a step picks rows,
    so a run's rows outside the mask can never be drawn. A pytree (arrays only)."""

    rows: jax.Array  # [N] int: the mask's rows first
    n: jax.Array  # [] how many rows the mask holds

    def __call__(self, key: jax.Array, size: int) -> jax.Array:
        """`size` row indices."""
        return self.rows[jax.random.randint(key, (size,), 0, self.n)]


def row_sampler(mask: jax.Array) -> RowSampler:
    """The sampler of the rows where `mask` [N]."""
    return RowSampler(jnp.argsort(~mask, stable=True), jnp.sum(mask))


def make_runs(
    y: np.ndarray,
    train_masks: np.ndarray,
    labeled_masks: np.ndarray,
    hparams: Any,
    seed: int,
    run_ids: np.ndarray | None = None,
) -> RunSpec:
    """Host-side (numpy) RunSpec of R runs, checked.

    Args:
      train_masks, labeled_masks: [R, N] bool; each run's labelled rows lie within its training
        rows and hold both classes.
      hparams: a NamedTuple of [R] arrays.
      run_ids: [R] indices that seed each run (default 0..R-1).
    Raises:
      ValueError: a labelled row outside its run's training rows, or one class only.
    """
    train_masks = np.asarray(train_masks, bool)
    labeled_masks = np.asarray(labeled_masks, bool)
    run_ids = np.arange(len(train_masks)) if run_ids is None else np.asarray(run_ids)
    outside = labeled_masks & ~train_masks
    if outside.any():
        r, i = np.argwhere(outside)[0]
        raise ValueError(f"run {r}: row {i} is labelled but not a training row")
    for r, lab in enumerate(labeled_masks):
        if len(np.unique(np.asarray(y)[lab])) < 2:
            raise ValueError(f"run {r}: its labelled rows must hold both classes")
    hparams = type(hparams)(*map(np.asarray, hparams))
    return RunSpec(np.asarray(run_keys(seed, run_ids)), train_masks, labeled_masks, hparams)


def runs_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all) whose single axis carries the runs."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("runs",))


def put(tree: Any, sharding: NamedSharding) -> Any:
    """Host arrays as global arrays on `sharding` (each process feeds its own devices)."""
    return jax.tree.map(lambda a: distributed.global_array(a, sharding), tree)


def place_inputs(mesh: Mesh, runs: RunSpec, data: Any, n_blocks: int = 1):
    """(runs, data on the mesh, the run indices `take`): the runs axis padded to a multiple of
    n_blocks × the device count with copies of the last run and sharded; `data` (a pytree of
    host arrays, placed as they are) replicated."""
    n_runs = len(runs.train_mask)
    pad = -n_runs % (mesh.size * n_blocks)
    take = np.concatenate([np.arange(n_runs), np.full(pad, n_runs - 1)]).astype(int)
    runs = put(jax.tree.map(lambda a: np.asarray(a)[take], runs), NamedSharding(mesh, PartitionSpec("runs")))
    return runs, put(data, NamedSharding(mesh, PartitionSpec())), take


def unpad(tree: Any, n_runs: int) -> Any:
    """The first n_runs runs of a padded [R_padded, ...] pytree."""
    return jax.tree.map(lambda a: a[:n_runs], tree)


def phase_schedule(schedule: Schedule, start_step: int = 0) -> list[tuple[str, int, int]]:
    """(phase, first step, n_steps) chunks from `start_step` to the end of training."""
    chunks, lo = [], 0
    for phase, length in schedule.phases:
        step, hi = max(lo, start_step), lo + length
        while step < hi:
            n = min(schedule.log_every, hi - step)
            chunks.append((phase, step, n))
            step += n
        lo = hi
    return chunks


def phase_starts(schedule: Schedule) -> dict[str, int]:
    """The first step of each phase."""
    starts, lo = {}, 0
    for phase, length in schedule.phases:
        starts[phase], lo = lo, lo + length
    return starts


def train_chunk(trainer: Trainer, config: Any, phase: str, n_steps: int, state: GANState, run: RunSpec, data):
    """`n_steps` steps of `phase` for one run, fused with `lax.scan`. Returns the new state and
    per-step losses {name: [n_steps]}. The step key is fold_in(run's step key, global step), so
    the result does not depend on how a training is cut into chunks (which makes resume exact)."""
    inputs = trainer.prepare(config, phase, state, run, data)
    step_key = init_and_step_keys(run.key)[1]

    def body(s, _):
        s, losses = trainer.step(config, phase, s, jax.random.fold_in(step_key, s.step), run, inputs)
        return s._replace(step=s.step + 1), losses

    return jax.lax.scan(body, state, None, length=n_steps)


@functools.lru_cache(maxsize=64)
def fused_chunk_fn(trainer: Trainer, config: Any, phase: str, n_steps: int, n_blocks: int = 1) -> Callable:
    """The jitted, run-vmapped chunk: (states, runs, data) -> (states, {loss: [n_steps, R]}).
    `config` must be a `structure()`, so numeric settings never make a new program.

    With n_blocks > 1 (R a multiple of n_blocks × devices) the runs train in n_blocks blocks one
    after another inside the same program (`blocks.run_blocks`), each block all `n_steps` steps with
    its state resident in cache; the models are the same (see `train_runs`)."""
    fn = functools.partial(train_chunk, trainer, config, phase, n_steps)
    vmapped = jax.vmap(fn, in_axes=(0, 0, None), out_axes=(0, 1))
    return jax.jit(blocks.run_blocks(vmapped, n_blocks) if n_blocks > 1 else vmapped, donate_argnums=(0,))


@functools.lru_cache(maxsize=32)
def _init_fn(trainer: Trainer, config: Any) -> Callable:
    return jax.jit(jax.vmap(functools.partial(trainer.init, config), in_axes=(None, 0)))


@functools.lru_cache(maxsize=32)
def _begin_phase_fn(trainer: Trainer, config: Any, phase: str) -> Callable:
    return jax.jit(functools.partial(trainer.begin_phase, config, phase))  # tree surgery: any [R, ...]


def check_finite(step_losses: dict[str, np.ndarray], first_step: int, n_runs: int) -> None:
    """Raises NonFiniteLossError naming the first run and step whose loss is NaN or inf.

    Args:
      step_losses: {name: [n_steps, R_padded]} host arrays; the first n_runs runs are checked.
    """
    for name, values in step_losses.items():
        bad = ~np.isfinite(values[:, :n_runs])
        if bad.any():
            step, run = np.argwhere(bad)[0]
            raise NonFiniteLossError(
                f"run {run}: the {name!r} loss is {values[step, run]} at step "
                f"{first_step + step}; training stopped (try a lower learning rate)"
            )


def _log_entry(phase: str, end_step: int, step_losses: dict[str, np.ndarray], n_runs: int) -> dict:
    entry = {"step": end_step, "phase": phase}
    entry.update({k: float(np.mean(v[:, :n_runs])) for k, v in step_losses.items()})
    entry["per_run"] = {k: np.mean(v[:, :n_runs], axis=0).tolist() for k, v in step_losses.items()}
    return entry


def train_runs(
    trainer: Trainer,
    config: Any,
    schedule: Schedule,
    data: Any,
    runs: RunSpec,
    *,
    state: GANState | None = None,
    mesh: Mesh | None = None,
    on_chunk: Callable[[GANState, dict], None] | None = None,
    block_runs: int | str | None = "auto",
    progress: str | None = None,
) -> TrainResult:
    """Trains R runs at once: `data` a pytree of host arrays every run sees (e.g. (x, y)),
    `runs` leaves [R, ...].

    A run's model depends only on its own RunSpec, never on the other runs of the call:
    replacing every other run leaves its parameters bit-identical (same number of runs per
    device). A run trained alone (R = 1) uses other compiled kernels, so it agrees with the
    same run in a batch only up to float rounding, which grows over training.

    The runs may train in blocks inside the same program (`block_runs`, `blocks.run_blocks`):
    a block's runs are bit-identical to an unblocked call of just those runs.

    Args:
      state: a state to resume from (e.g. restored from a checkpoint); training continues
        from its step.
      mesh: devices to shard the runs over (default: all devices).
      on_chunk: called after every chunk with the state and the chunk's log entry
        (checkpoints, progress, TensorBoard; `callbacks.chain` several).
      block_runs: runs per device in each block; "auto" (default): `blocks.default_block_runs`
        (blocks on CPU only); None: all runs in one block.
      progress: label of a progress bar (None: no bar).
    Raises:
      NonFiniteLossError: a loss became NaN/inf; the message names the run and the step.
    """
    n_runs = len(runs.train_mask)
    mesh = mesh or runs_mesh()
    structure = config.structure()
    per_run = blocks.run_bytes(trainer, config, schedule, data, runs) if block_runs == "auto" else 0
    n_blocks = blocks.n_run_blocks(per_run, mesh, n_runs, block_runs)
    runs, data, take = place_inputs(mesh, runs, data, n_blocks)
    padded = len(take) != n_runs
    if state is None:
        state = _init_fn(trainer, structure)(data, runs)
    elif padded:
        state = jax.tree.map(lambda a: np.asarray(a)[take], state)
    state = put(state, NamedSharding(mesh, PartitionSpec("runs")))
    start = int(np.asarray(distributed.to_host(state.step)).reshape(-1)[0])
    starts, history = phase_starts(schedule), []
    if progress is not None:
        on_chunk = callbacks.chain(on_chunk, callbacks.progress(schedule.total_steps, start, progress))
    for phase, first_step, n_steps in phase_schedule(schedule, start):
        if trainer.begin_phase is not None and first_step == starts[phase] > 0:
            state = _begin_phase_fn(trainer, structure, phase)(state)
        program = structure if trainer.program is None else trainer.program(structure, phase)
        chunk = fused_chunk_fn(trainer, program, phase, n_steps, n_blocks)
        state, step_losses = chunk(state, runs, data)
        step_losses = distributed.to_host(step_losses)  # the only host sync per chunk
        check_finite(step_losses, first_step, n_runs)
        entry = _log_entry(phase, first_step + n_steps, step_losses, n_runs)
        history.append(entry)
        if on_chunk is not None:
            on_chunk(unpad(state, n_runs) if padded else state, entry)
    if jax.process_count() > 1:  # every process gets every run's state, as host arrays
        state = distributed.to_host(state)
    return TrainResult(unpad(state, n_runs) if padded else state, history)


@functools.lru_cache(maxsize=32)
def _predict_fn(trainer: Trainer, config: Any) -> Callable:
    return jax.jit(jax.vmap(functools.partial(trainer.predict, config), in_axes=(0, None)))


def predict_runs(trainer: Trainer, config: Any, model: Any, x: Any, chunk: int | None = None) -> np.ndarray:
    """Malignant probability [R, N] of every run's model (leaves [R, ...]) on rows x [N, ...],
    `chunk` rows at a time (None: all at once). `model` is what `train_runs` returns: complete
    on every process, so each process predicts locally (no cross-process gather)."""
    fn = _predict_fn(trainer, config.structure())
    chunk = chunk or max(len(x), 1)
    parts = [np.asarray(fn(model, jnp.asarray(x[i : i + chunk]))) for i in range(0, len(x), chunk)]
    return np.concatenate(parts, axis=1)


def fit_predict(
    trainer: Trainer,
    config: Any,
    schedule: Schedule,
    data: Any,
    runs: RunSpec,
    x_eval: Any,
    model_of: Callable[[GANState], Any] = lambda state: state,
    chunk: int | None = None,
    **train_kwargs,
) -> tuple[TrainResult, np.ndarray]:
    """`train_runs` then `predict_runs` of the trained models on x_eval: (result, proba [R, N]).

    Args:
      model_of: what `trainer.predict` takes, from the trained state (e.g. its params only).
      train_kwargs: passed to `train_runs` (state, mesh, on_chunk, block_runs, progress).
    """
    result = train_runs(trainer, config, schedule, data, runs, **train_kwargs)
    return result, predict_runs(trainer, config, model_of(result.state), x_eval, chunk)
