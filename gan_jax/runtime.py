"""Process-level JAX set-up shared by the CLI, scripts and tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def split_host_devices() -> None:
    """Exposes one XLA CPU device per core, so sharding the runs axis uses every core (XLA keeps
    a small model on one core otherwise). Must run before JAX initialises its backends; it only
    affects the CPU platform and leaves an explicit setting alone."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n or 1}".strip()


def enable_compilation_cache(path: str | None = None) -> str:
    """Turns on JAX's persistent compilation cache (a 4.5 s compile became 0.8 s on a 2-core
    CPU). The folder is `path`, $GAN_JAX_CACHE_DIR, or ~/.cache/gan_jax/jax."""
    import jax

    path = path or os.environ.get("GAN_JAX_CACHE_DIR") or os.path.expanduser("~/.cache/gan_jax/jax")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers, written beside every result."""
    import importlib.metadata as md
    import platform

    versions = {"python": platform.python_version()}
    for name in ("gan_jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "scikit-learn"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_description() -> dict[str, object]:
    import jax

    devices = jax.devices()
    return {"platform": devices[0].platform, "count": len(devices), "kind": devices[0].device_kind}


def git_commit() -> str:
    """The checkout's commit (with "+dirty" for uncommitted changes outside results/, which the
    benchmarks themselves rewrite), or "unknown"."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=10)
        commit = run("rev-parse", "HEAD").stdout.strip()
        changed = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results")
        dirty = changed.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if commit and dirty else commit or "unknown"


# -- a graceful stop on SIGINT/SIGTERM ----------------------------------------------------


class StopFlag:
    """Set by SIGINT/SIGTERM; the trainer's entry point checks it at chunk boundaries."""

    signum: int | None = None


class TrainingStopped(Exception):
    """Training stopped on a signal after saving a checkpoint at `step` in `uri`."""

    def __init__(self, step: int, signum: int, uri: str):
        import signal

        self.step, self.signum, self.uri = step, signum, uri
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint in {uri}")


@contextlib.contextmanager
def stop_on_signals(signums: tuple[int, ...] | None = None) -> Iterator[StopFlag]:
    """While active, the first SIGINT/SIGTERM only sets the returned flag (a jitted chunk
    cannot be interrupted, and the state between chunks is what gets saved); a second one
    stops at once. Outside the main thread, signals cannot be caught and the flag stays unset."""
    import signal

    flag = StopFlag()

    def handler(signum, frame):
        if flag.signum is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping now")
        flag.signum = signum

    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread
        for s in signums or (signal.SIGINT, signal.SIGTERM):
            previous[s] = signal.signal(s, handler)
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
