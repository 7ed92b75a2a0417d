"""Which results the code has moved past: for each JSON in results/, the files its command's code
depends on, changed between the commit in its record and HEAD.

    python -m benchmarks.stale_results            # one line per results JSON: current / stale / incomplete
    python -m benchmarks.stale_results --check    # exit 1 if any is stale or incomplete

A file's code is the entry module of its recorded command (`gan-jax <sub>` → gan_jax/commands/<sub>.py,
`python -m X`, `python path.py`, a shell script and the commands it runs) and everything that
module imports, statically (every `import` in the file, function-local ones too), inside the
repository; experiments/ whenever the experiment loader (gan_jax/config/__init__.py, which loads
them by path) is in it; and the dependency files (pyproject.toml, requirements/). A record
without a clean commit is `incomplete`.
Markdown, PNG and CSV files follow the JSON whose record covers them (benchmarks/results_plan.py).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass

from benchmarks import results_plan
from gan_jax.artifacts import records

DEPENDENCY_FILES = ("pyproject.toml", "requirements")
EXPERIMENT_LOADER = "gan_jax/config/__init__.py"  # loads experiments/*.py by path, not by import
_SHELL_COMMANDS = re.compile(r"gan-jax\s+[\w-]+|python3?\s+-m\s+[\w.]+|[\w./-]+\.py\b")


@dataclass(frozen=True)
class Status:
    path: str  # relative to the results folder
    state: str  # "current", "stale" or "incomplete"
    detail: str


def entry_files(command: str, root: str) -> list[str]:
    """The repository files (relative to `root`) a recorded command starts from."""
    words = shlex.split(command)
    while words and re.fullmatch(r"\w+=.*", words[0]):  # VAR=value prefixes
        words = words[1:]
    if not words:
        return []
    if words[0] == "gan-jax":  # the command's module, not cli.py (which names every command)
        sub = next((w for w in words[1:] if not w.startswith("-")), "")
        path = f"gan_jax/commands/{sub.replace('-', '_')}.py"
        return [path] if sub and os.path.isfile(os.path.join(root, path)) else []
    if words[0] in ("python", "python3") and len(words) > 2 and words[1] == "-m":
        found = module_file(words[2], root)
        return [found] if found else []
    if words[0] in ("python", "python3") and len(words) > 1:
        words = words[1:]
    script = words[0]
    if not os.path.isfile(os.path.join(root, script)):
        return []
    if not script.endswith(".sh"):
        return [script]
    with open(os.path.join(root, script)) as f:  # a shell script: itself and what it runs
        found = [entry_files(c, root) for c in _SHELL_COMMANDS.findall(f.read())]
    return [script, *(p for paths in found for p in paths)]


def module_file(name: str, root: str, near: str = "") -> str | None:
    """The file of dotted module `name` under `root` (or beside the importing file `near`)."""
    parts = name.split(".")
    for base in (root, os.path.join(root, os.path.dirname(near))) if near else (root,):
        for candidate in (os.path.join(*parts) + ".py", os.path.join(*parts, "__init__.py")):
            if os.path.isfile(os.path.join(base, candidate)):
                return os.path.relpath(os.path.join(base, candidate), root)
    return None


def _imported_names(path: str, root: str) -> list[str]:
    with open(os.path.join(root, path)) as f:
        tree = ast.parse(f.read(), path)
    package = os.path.dirname(path).replace(os.sep, ".")
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing file's package
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            names += [base, *(f"{base}.{a.name}" for a in node.names)]
    return [n for n in names if n]


def import_closure(entries: list[str], root: str) -> set[str]:
    """`entries` and every repository file they import, transitively (package __init__ files too)."""
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        path = todo.pop()
        if path in seen or not path.endswith(".py"):
            continue
        seen.add(path)
        for name in _imported_names(path, root):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                found = module_file(".".join(parts[:i]), root, near=path)
                if found and found not in seen:
                    todo.append(found)
        if path == EXPERIMENT_LOADER and os.path.isdir(os.path.join(root, "experiments")):
            todo += [f"experiments/{f}" for f in sorted(os.listdir(os.path.join(root, "experiments")))]
    return seen | {p for p in entries if not p.endswith(".py")}


def _git(root: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=60)


def changed_since(commit: str, command: str, root: str) -> list[str] | str:
    """The files `command`'s code depends on that differ between `commit` and HEAD, or why that
    cannot be told."""
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        return f"commit {commit[:12]} is not in this repository's history"
    entries = entry_files(command, root)
    if not entries:
        return f"no repository file runs the command {command!r}"
    deps = [d for d in DEPENDENCY_FILES if os.path.exists(os.path.join(root, d))]
    diff = _git(
        root, "diff", "--name-only", commit, "HEAD", "--", *sorted(import_closure(entries, root)), *deps
    )
    return diff.stdout.split() if diff.returncode == 0 else f"git diff failed: {diff.stderr.strip()}"


def status_of(path: str, rec: dict, root: str) -> Status:
    """Whether results file `path` (its JSON record `rec`) is current at HEAD of `root`:
    `incomplete` (its record lacks something; staleness is added where it can be told), `stale`
    or `current`."""
    problems = records.missing_record_keys(rec)
    commit = str(rec.get("git_commit", "")).removesuffix("+dirty") if isinstance(rec, dict) else ""
    changed = changed_since(commit, rec["command"], root) if commit and "command" in rec else "no record"
    if isinstance(changed, str):
        return Status(path, "incomplete", "; ".join([*problems, changed]))
    shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
    since = f"made at {commit[:12]}; " + (f"changed since: {shown}" if changed else "its code is unchanged")
    if problems:
        return Status(path, "incomplete", "; ".join([*problems, since]))
    return Status(path, "stale" if changed else "current", since)


def check(root: str, results: str = "results") -> list[Status]:
    """The status of every JSON under `root`/`results`, by path relative to the results folder."""
    folder = os.path.join(root, results)
    out = []
    for dirpath, _, names in sorted(os.walk(folder)):
        for name in sorted(n for n in names if n.endswith(".json")):
            path = os.path.relpath(os.path.join(dirpath, name), folder)
            try:
                with open(os.path.join(dirpath, name)) as f:
                    rec = json.load(f)
            except json.JSONDecodeError as e:
                out.append(Status(path, "incomplete", f"not JSON ({e})"))
                continue
            out.append(status_of(path, rec, root))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--results", default="results", help="results folder, relative to --root")
    p.add_argument("--check", action="store_true", help="exit 1 if any result is stale or incomplete")
    args = p.parse_args(argv)
    statuses = check(args.root, args.results)
    for s in statuses:
        step = results_plan.step_of(s.path)
        others = [o for o in step.outputs if not o.endswith(".json")] if step else []
        beside = f" (with {', '.join(others)})" if others and s.path == step.records[0] else ""
        print(f"{s.state:<10} {s.path}{beside}: {s.detail}")
    bad = [s for s in statuses if s.state != "current"]
    print(f"{len(statuses) - len(bad)} current, {len(bad)} stale or incomplete of {len(statuses)}")
    return 1 if args.check and bad else 0


if __name__ == "__main__":
    sys.exit(main())
