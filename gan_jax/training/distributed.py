"""Several processes (hosts) as one JAX program: `jax.distributed`, nothing home-made.

Every process runs the same command on the same data. `initialize` joins them (before JAX
touches a device); `jax.devices()` then lists the devices of all processes, the trainer's
runs mesh spans them, and each process feeds its own devices' part of every global array
(`global_array`). Every process builds identical host inputs (folds, masks, keys are pure
functions of the config and seed), so no input needs to travel between hosts; results are
gathered to every process with `to_host`, and only process 0 writes files and logs
(`is_main_process`).

When it initialises:
  - flags or environment: coordinator address (GAN_JAX_COORDINATOR or JAX's own
    JAX_COORDINATOR_ADDRESS), process count (GAN_JAX_NUM_PROCESSES) and id
    (GAN_JAX_PROCESS_ID);
  - `auto` (`--distributed auto`): `jax.distributed.initialize()` with no arguments, which
    detects Cloud TPU pod slices, SLURM, Open MPI and Kubernetes jobs by itself;
  - otherwise not at all: a single process, as before.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

ENV_COORDINATOR = "GAN_JAX_COORDINATOR"
ENV_NUM_PROCESSES = "GAN_JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "GAN_JAX_PROCESS_ID"
DEFAULT_TIMEOUT_S = 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--distributed, --coordinator, --num-processes, --process-id, --distributed-timeout."""
    g = parser.add_argument_group("multi-host (jax.distributed)")
    g.add_argument(
        "--distributed",
        choices=("off", "auto", "env"),
        default="env",
        help="auto: let JAX detect the cluster (Cloud TPU, SLURM, MPI, k8s); env "
        "(default): join only if a coordinator is given by flag or environment",
    )
    g.add_argument("--coordinator", metavar="HOST:PORT", help=f"process 0's address (or ${ENV_COORDINATOR})")
    g.add_argument("--num-processes", type=int, help=f"processes in the job (or ${ENV_NUM_PROCESSES})")
    g.add_argument("--process-id", type=int, help=f"this process's index (or ${ENV_PROCESS_ID})")
    g.add_argument(
        "--distributed-timeout",
        type=int,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help="seconds to wait for every process to join (default %(default)s)",
    )


def initialize_from_args(args: argparse.Namespace) -> bool:
    return initialize(
        args.coordinator,
        args.num_processes,
        args.process_id,
        mode=args.distributed,
        timeout_s=args.distributed_timeout,
    )


def initialize(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    mode: str = "env",
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> bool:
    """Joins this process to a multi-process JAX job when asked to; must run before JAX
    initialises its backends (before the first `jax.devices()` or array).

    Args:
      coordinator, num_processes, process_id: override the environment variables.
      mode: "off" (never), "auto" (JAX detects the cluster), "env" (only with a coordinator).
      timeout_s: how long to wait for all processes, so a missing one fails instead of hanging.
    Returns:
      True if `jax.distributed` was initialised.
    Raises:
      ValueError: a coordinator without a process count and id (outside auto mode).
    """
    import jax

    if mode == "off":
        return False
    coordinator = coordinator or os.environ.get(ENV_COORDINATOR) or os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    if mode == "env" and coordinator is None:
        return False
    if mode == "env" and (num_processes is None or process_id is None):
        raise ValueError(
            f"a coordinator ({coordinator}) needs the process count and this process's id: "
            f"--num-processes/--process-id or ${ENV_NUM_PROCESSES}/${ENV_PROCESS_ID}"
        )
    # CPU processes exchange data through a collectives library; on GPU/TPU this only
    # concerns the (unused) CPU backend.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=timeout_s,
    )
    return True


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"${name}={value!r} is not an integer") from None


def is_main_process() -> bool:
    """True on process 0 (the only one that writes results and logs)."""
    import jax

    return jax.process_index() == 0


def global_array(value: Any, sharding) -> Any:
    """`value` (a host array every process holds in full, or a jax.Array) as a global array
    with `sharding`; each process places only the pieces on its own devices."""
    import jax

    if isinstance(value, jax.Array):
        return jax.device_put(value, sharding)
    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def to_host(tree: Any) -> Any:
    """A pytree of (possibly multi-process) arrays as numpy arrays, complete on every process."""
    import jax

    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)
