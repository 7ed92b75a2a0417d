"""Run blocks: the runs of one fused call trained block after block inside the same compiled
program (`lax.map`), so that on a CPU each block's state stays in cache through a whole chunk
of steps instead of streaming every run's state through memory at every step."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

# Per-device block on CPU: as many runs as fit in this many bytes of training state (params and
# Adam moments) plus the run's own float copy of the data, so a block stays in a core's cache
# (L2: 2 MiB per core on the machine measured) through its steps; block sizes compared in part
# (d) of scripts/bench_scale.py (results/bench_scale_devices_blocks/bench_scale.md).
CPU_BLOCK_BYTES = 2 << 20


def default_block_runs(per_run_bytes: int, platform: str) -> int | None:
    """Runs per device per block for `block_runs="auto"`: on CPU the runs whose hot bytes
    (`run_bytes`) fit `CPU_BLOCK_BYTES`; elsewhere None (no blocks: a GPU or TPU wants the
    widest batch)."""
    if platform != "cpu":
        return None
    return max(1, CPU_BLOCK_BYTES // per_run_bytes)


def n_run_blocks(per_run_bytes: int, mesh: Mesh, n_runs: int, block_runs: int | str | None) -> int:
    """How many blocks `n_runs` runs train in on `mesh` (1: no blocks).

    Raises:
      ValueError: block_runs is not "auto", None or an int >= 1.
    """
    if block_runs == "auto":
        block_runs = default_block_runs(per_run_bytes, mesh.devices.flat[0].platform)
    elif block_runs is not None and (not isinstance(block_runs, int) or block_runs < 1):
        raise ValueError(
            f"block_runs={block_runs!r}: expected 'auto', None (no blocks) or an int >= 1 "
            "(runs per device in each block)"
        )
    per_device = -(-n_runs // mesh.size)
    return 1 if block_runs is None else -(-per_device // block_runs)


def run_blocks(chunk: Callable, n_blocks: int) -> Callable:
    """`chunk` (run-vmapped: (states, runs, data), leaves [R, ...] in, state [R, ...] and losses
    [n_steps, R] out) applied to n_blocks blocks of runs in turn (`lax.map`), same inputs and
    outputs.

    Block j holds runs j, j + n_blocks, j + 2 n_blocks, ...: [R] reshaped to [R / n_blocks,
    n_blocks] keeps axis 0 sharded over the devices exactly as [R] was (each device's runs stay
    contiguous on it), so every block is spread evenly over all devices and no run moves
    between devices; the inverse reshape puts the runs back in their order."""

    def split(a):  # [R, ...] -> [n_blocks, R / n_blocks, ...]
        return jnp.swapaxes(a.reshape(-1, n_blocks, *a.shape[1:]), 0, 1)

    def merge(a):  # [n_blocks, R / n_blocks, ...] -> [R, ...]
        return jnp.swapaxes(a, 0, 1).reshape(-1, *a.shape[2:])

    def blocked(states, runs, data):
        new, step_losses = jax.lax.map(lambda b: chunk(*b, data), jax.tree.map(split, (states, runs)))
        # step_losses: [n_blocks, n_steps, R / n_blocks] -> [n_steps, R]
        return jax.tree.map(merge, new), jax.tree.map(lambda v: merge(jnp.swapaxes(v, 1, 2)).T, step_losses)

    return blocked


def _nbytes(tree: Any, floating_only: bool = False) -> int:
    leaves = jax.tree.leaves(tree)
    keep = [s for s in leaves if not floating_only or jnp.issubdtype(s.dtype, jnp.floating)]
    return int(sum(np.prod(s.shape) * np.dtype(s.dtype).itemsize for s in keep))


def _shapes(tree: Any) -> Any:
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), tree)


class _Hashable:
    """A pytree of ShapeDtypeStructs as an lru_cache key (by its structure and shapes)."""

    def __init__(self, tree: Any):
        self.tree = tree
        leaves, treedef = jax.tree.flatten(tree)
        self.key = (treedef, tuple((s.shape, str(s.dtype)) for s in leaves))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Hashable) and self.key == other.key


@functools.lru_cache(maxsize=64)
def _run_bytes(trainer, structure: Any, phase: str, shapes: _Hashable) -> int:
    # Cached: tracing init for its shapes on every call would cost a trace each.
    data_shapes, run_shapes = shapes.tree
    state = jax.eval_shape(functools.partial(trainer.init, structure), data_shapes, run_shapes)
    prepare = functools.partial(trainer.prepare, structure, phase)
    inputs = jax.eval_shape(prepare, state, run_shapes, data_shapes)
    return _nbytes(state) + _nbytes(inputs, floating_only=True)


def run_bytes(trainer, config: Any, schedule, data: Any, runs) -> int:
    """Bytes one run keeps hot through a chunk: its state (params, Adam moments, fitted
    transforms) plus the float inputs `prepare` makes for it (e.g. its scaled copy of the data),
    those of the first phase. `trainer`: an `engine.Trainer`; `schedule`: its `engine.Schedule`;
    `runs`: an `engine.RunSpec` ([R, ...] leaves; one run's shapes are used)."""
    one_run = jax.tree.map(lambda a: np.asarray(a)[0], runs)
    shapes = _Hashable(_shapes((data, one_run)))
    return _run_bytes(trainer, config.structure(), schedule.phases[0][0], shapes)
