"""Result records: the one run record and the one JSON writer of every study, training run and
benchmark result, and the digest that names a set of fold or labelled-row masks inside them.

A results file carries its run record at the top level: the keys in `RECORD_KEYS` (what ran, on
which clean commit, libraries and device, when, and how busy the machine was). `run_record` opens
it when the run starts, `finish_record` closes it (wall time, load after), and
`missing_record_keys` says what a record lacks; tests/test_results_records.py checks every file in
results/ with it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from gan_jax import runtime
from gan_jax.artifacts import storage

RECORD_KEYS = ("command", "git_commit", "dirty", "versions", "device", "started", "load_average")
LOAD_NOTE = (
    "os.getloadavg() of the whole machine (1, 5, 15 min). Above the core count, other jobs "
    "competed for these cores and the timings are pessimistic (wall time more than CPU-seconds)."
)


def available_cores() -> int:
    """The cores this process may run on (its affinity mask), not the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def invocation(argv: list[str] | None = None) -> str:
    """This process's command line as a person would retype it: `gan-jax <args>` for the CLI,
    `python -m <module> <args>` for a module, `python <script> <args>` for a script (its path
    relative to the working directory)."""
    args = sys.argv[1:] if argv is None else list(argv)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    program = sys.argv[0] if sys.argv else ""
    if spec is not None and spec.name not in ("__main__", None):
        head = ["python -m", spec.name.removesuffix(".__main__")]
    elif os.path.basename(program) == "gan-jax":
        head = ["gan-jax"]
    else:
        head = ["python", os.path.relpath(program) if program else "-"]
    return " ".join([*head, *args])


def run_record(command: str | None = None) -> dict[str, Any]:
    """The start of a run record; call it when the run starts, after its JAX set-up (device
    count, compilation cache): it starts JAX's backends.

    Args:
      command: the command that reruns this result; `invocation()` when None.

    Returns:
      `command`, `git_commit` (with "+dirty" for uncommitted changes outside results/), `dirty`,
      `versions` (`runtime.library_versions()`), `device` (`runtime.device_description()`),
      `xla_flags`, `started` (UTC, ISO 8601) and `load_average` (`before`, `cores`), plus a
      private start time that `finish_record` removes.
    """
    commit = runtime.git_commit()  # the code that runs, read before any file can change
    return {
        "command": command or invocation(),
        "git_commit": commit,
        "dirty": commit.endswith("+dirty") or commit == "unknown",
        "versions": runtime.library_versions(),
        "device": runtime.device_description(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average": {"before": list(os.getloadavg()), "cores": available_cores()},
        "_t0": time.perf_counter(),
    }


def finish_record(rec: dict[str, Any], load_samples: Iterable[float] = ()) -> dict[str, Any]:
    """A finished copy of a record from `run_record()`: `wall_s` since it started, and a
    `load_average` that gains `after`, `max_1min` (over before, after and the 1-minute
    `load_samples` taken during the run), `oversubscribed` (that peak above the cores) and a
    note. `rec` itself stays open, so a run that writes as it goes can finish it again."""
    if "_t0" not in rec:
        raise ValueError("finish_record needs the open record from run_record() (it has no start time)")
    load = dict(rec["load_average"])
    after = list(os.getloadavg())
    peak = max([load["before"][0], after[0], *load_samples])
    load.update(after=after, max_1min=peak, oversubscribed=peak > load["cores"], note=LOAD_NOTE)
    done = {k: v for k, v in rec.items() if k != "_t0"}
    done.update(load_average=load, wall_s=time.perf_counter() - rec["_t0"])
    return done


def missing_record_keys(data: Any, *, allow_dirty: bool = False) -> list[str]:
    """What a results file's top level lacks of a complete, clean run record (empty when
    complete): each missing key, a dirty or unknown commit, versions without jax, a device
    without its platform, a load average without before/after. `allow_dirty` accepts a commit
    with "+dirty" (a test's run in a checkout being edited)."""
    if not isinstance(data, dict):
        return ["the file is not a JSON object"]
    problems = [f"no {key!r}" for key in RECORD_KEYS if key not in data]
    commit = str(data.get("git_commit", ""))
    clean = commit.removesuffix("+dirty") if allow_dirty else commit
    dirty = bool(data.get("dirty")) and not allow_dirty
    if "git_commit" in data and (dirty or "+dirty" in clean or not re.fullmatch("[0-9a-f]{40}", clean)):
        problems.append(f"git_commit {commit!r} is not a clean 40-hex commit")
    if "versions" in data and not (isinstance(data["versions"], dict) and data["versions"].get("jax")):
        problems.append("versions lack jax")
    if "device" in data and not (isinstance(data["device"], dict) and "platform" in data["device"]):
        problems.append("device lacks platform")
    load = data.get("load_average")
    if "load_average" in data and not (isinstance(load, dict) and {"before", "after"} <= set(load)):
        problems.append("load_average lacks before/after (never finished)")
    return problems


def write_json(uri: str, obj: Any) -> None:
    """Writes JSON to any storage URI (numpy scalars and arrays as plain numbers and lists);
    local files are replaced atomically."""
    storage.write_text(uri, json.dumps(obj, indent=1, sort_keys=False, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def masks_digest(masks: np.ndarray) -> str:
    """SHA-256 of boolean masks (bit-packed): equal digests mean the same rows were chosen."""
    return hashlib.sha256(np.packbits(np.asarray(masks, bool)).tobytes()).hexdigest()
