"""Data-parallel training of one image model (`fit`): one batch per jitted step from the input
pipeline, the same step as the fused trainer (`image.phase_step`).

Parallelism is by sharding, not pmap: the batch is split along the "data" axis of a device
mesh (`NamedSharding(mesh, P("data"))`), the state is replicated, and XLA inserts the gradient
all-reduce. The same code runs on 1 CPU, 8 simulated CPU devices and a GPU/TPU host. Each step
is jitted once with the state donated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax.config import Config
from gan_jax.training import distributed, engine
from gan_jax.training.engine import GANState
from gan_jax.training.image import (
    build_models,
    hparams_of,
    init_state,
    phase_step,
    start_gan_phase,
)
from gan_jax.training.input_pipeline import ImageBatches


def data_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all) whose axis "data" splits the batch."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Where the input pipeline should put batches: the leading axis split over "data"."""
    return NamedSharding(mesh, PartitionSpec("data"))


@functools.lru_cache(maxsize=32)
def step_fn(config: Config, phase: str, mesh: Mesh) -> Callable:
    """The jitted step (state, batch, labeled, key) -> (state, metrics) for `phase` ("ae" or
    "gan"): batch sharded over "data", everything else replicated, state donated."""
    models = build_models(config)
    replicated = NamedSharding(mesh, PartitionSpec())
    hp = hparams_of(config)

    place_batch = lambda a: jax.lax.with_sharding_constraint(a, batch_sharding(mesh))

    def step(state, batch, labeled, key):
        batch = {"image": batch["image"], "label": batch["label"], "labeled": labeled[batch["index"]]}
        state, metrics = phase_step(models, config, phase, state, batch, key, hp, place_batch=place_batch)
        return state._replace(step=state.step + 1), metrics

    return jax.jit(
        step,
        in_shardings=(replicated, batch_sharding(mesh), replicated, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,),
    )


def init_replicated(config: Config, mesh: Mesh, seed: int | None = None) -> GANState:
    """`init_state` jitted with its output pinned replicated on `mesh` (no host round trip)."""
    key = jax.random.key(config.cv.seed if seed is None else seed)
    replicated = NamedSharding(mesh, PartitionSpec())
    return jax.jit(functools.partial(init_state, config), out_shardings=replicated)(key)


def fit(
    config: Config,
    source,
    *,
    ae_steps: int,
    gan_steps: int,
    train_indices: np.ndarray | None = None,
    labeled: np.ndarray | None = None,
    mesh: Mesh | None = None,
    state: GANState | None = None,
    log_every: int = 50,
    on_log: Callable[[GANState, dict], None] | None = None,
) -> tuple[GANState, list[dict]]:
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
    mesh = mesh or data_mesh()
    if config.schedule.batch_size % mesh.size:
        raise ValueError(f"batch_size {config.schedule.batch_size} does not split over {mesh.size} devices")
    n = len(source)
    rows = np.arange(n) if train_indices is None else np.asarray(train_indices)
    if labeled is None:
        labeled = np.zeros(n, bool)
        labeled[rows] = True
    replicated = NamedSharding(mesh, PartitionSpec())
    # Global arrays, so that with several processes (gan_jax.training.distributed) each places its own part.
    labeled = distributed.global_array(np.asarray(labeled, bool), replicated)
    key_data = np.asarray(jax.random.key_data(jax.random.key(config.cv.seed)))
    key = jax.random.wrap_key_data(distributed.global_array(key_data, replicated))
    state = state if state is not None else init_replicated(config, mesh)
    start = int(jax.device_get(state.step))
    history, pending = [], []
    batches = ImageBatches(
        source,
        config.schedule.batch_size,
        seed=config.cv.seed,
        start=start,
        indices=rows,
        sharding=batch_sharding(mesh),
    )
    with batches:
        for step in range(start, ae_steps + gan_steps):
            phase = "ae" if step < ae_steps else "gan"
            if step == ae_steps > 0 and config.model.disc_from_encoder:
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
            raise engine.NonFiniteLossError(
                f"the {name!r} loss is not finite before step {step}; training stopped "
                "(try a lower learning rate)"
            )
        entry[name] = float(values.mean())
    return entry
