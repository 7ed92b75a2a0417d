"""The one run record and the one writer of every benchmark in this package.

A benchmark calls `record(argv)` when it starts (what runs, on which code, libraries and device,
and how busy the machine was), `finish(rec, load_samples)` when it ends (wall time, load average
after, and whether other jobs competed for the cores), and `write(out, name, rec, markdown)` to put
`<out>/<name>.json` and `<out>/<name>.md` side by side. The record is the library's
(`gan_jax.artifacts.records.run_record`), the same one every study writes, at the top level of the
JSON: `command`, `git_commit`, `dirty`, `versions`, `device`, `started`, `load_average`.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gan_jax.artifacts import records, storage


def command_line(argv: Sequence[str], module: str) -> str:
    """The command that reruns this benchmark: `python -m <module> <argv...>`."""
    return " ".join(["python -m", module, *argv])


# Benchmarks that moved from scripts/ into this package; results recorded before the move name
# the old file, and the README shows the command that runs the same benchmark today.
MOVED = (
    "bench_train",
    "bench_scale",
    "bench_images",
    "bench_checkpoint",
    "energy_bench",
    "ctgan_bench",
    "load_test",
    "bench_load_test_client",
    "bench_naive_fastapi",
)
_OLD_SCRIPT = re.compile(r"^(?:python )?scripts/(" + "|".join(MOVED) + r")\.py\b")


def current_command(command: str) -> str:
    """A results file's recorded command, as a reader would type it today (the README and
    the benchmarks' own Markdown show it)."""
    command = _OLD_SCRIPT.sub(r"python -m benchmarks.\1", command)
    return command if command.startswith("python ") else f"python {command}"


def _calling_module(depth: int = 2) -> str:
    """The dotted name of the module that called `record` (`benchmarks.bench_train` whether it runs
    as `python -m benchmarks.bench_train` or is imported by a test)."""
    frame = inspect.stack()[depth].frame
    spec = frame.f_globals.get("__spec__")
    return spec.name if spec is not None else frame.f_globals.get("__name__", "unknown")


def record(argv: Sequence[str] | None = None, *, module: str | None = None) -> dict[str, Any]:
    """The start of a benchmark's run record: `records.run_record` (the library's one record
    builder, see its keys there) for the command `python -m <module> <argv...>`.

    Args:
      argv: the benchmark's arguments (without the program name); `sys.argv[1:]` when None.
      module: the benchmark's module for the command line; the caller's module when None.

    Call it after the benchmark's JAX set-up (device count, compilation cache): it starts JAX's
    backends.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    return records.run_record(command_line(argv, module or _calling_module()))


def finish(rec: dict[str, Any], load_samples: Iterable[float] = ()) -> dict[str, Any]:
    """A finished copy of a record from `record()` (`records.finish_record`: wall time, load
    average after and at its peak). `rec` itself stays open, so a benchmark that writes as it
    goes can finish it again."""
    return records.finish_record(rec, load_samples)


def write(out_dir: str, name: str, data: dict[str, Any], markdown: str) -> tuple[str, str]:
    """Writes `<out_dir>/<name>.json` (the record) and `<out_dir>/<name>.md` (its summary) to any
    storage URI (local folders are made as needed). Returns the two URIs."""
    if "_t0" in data:
        raise ValueError(f"the {name} record was never finished: call harness.finish(rec) before write")
    json_uri, md_uri = storage.join(out_dir, f"{name}.json"), storage.join(out_dir, f"{name}.md")
    records.write_json(json_uri, data)
    storage.write_text(md_uri, markdown)
    return json_uri, md_uri


def rewrite_markdown(json_path: str, markdown: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """Rewrites the `.md` beside a benchmark's `.json` from that JSON alone (after the summary's
    wording changed: no rerun). Returns the record."""
    rec = json.loads(storage.read_text(json_path))
    storage.write_text(json_path.removesuffix(".json") + ".md", markdown(rec))
    return rec
