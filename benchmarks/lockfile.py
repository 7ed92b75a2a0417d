"""The lock files (requirements/lock-pyX.Y.txt, written by scripts/lock.sh) and the versions a
results file records (`runtime.library_versions()`): which lock reproduces a result, and where
they disagree. Used by tests/test_lock.py and by the results README.
"""

from __future__ import annotations

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK_DIR = os.path.join(ROOT, "requirements")
REGENERATE = "scripts/lock.sh"
# Recorded beside the versions but not pinned by the lock: the interpreter and the project itself.
NOT_LOCKED = {"python", "gan-jax"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def normalize(name: str) -> str:
    """A distribution's name as PEP 503 compares them (Orbax_Checkpoint == orbax-checkpoint)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path(python: str) -> str:
    """The lock of a Python version ("3.11.7" or "3.11"): requirements/lock-py3.11.txt."""
    major_minor = ".".join(python.split(".")[:2])
    return os.path.join(LOCK_DIR, f"lock-py{major_minor}.txt")


def read_lock(path: str) -> dict[str, str]:
    """{normalized name: version} of every `name==version` line of a lock file.

    Raises:
        FileNotFoundError: naming the file and the command that writes it.
        ValueError: a requirement line that is not an exact pin.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no lock file {path}: write it with {REGENERATE}")
    pins = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            match = _PIN.match(text)
            if match is None:
                raise ValueError(f"{path}:{number}: not an exact pin (name==version): {text!r}")
            pins[normalize(match[1])] = match[2]
    return pins


def mismatches(versions: dict[str, str], lock: dict[str, str]) -> list[str]:
    """Where recorded versions (`runtime.library_versions()`) differ from a lock, one line each
    ("jax: recorded 0.10.2, lock 0.11.0"); empty when the lock reproduces them."""
    out = []
    for name, version in versions.items():
        key = normalize(name)
        if key in NOT_LOCKED:
            continue
        if key not in lock:
            out.append(f"{name}: recorded {version}, not in the lock")
        elif version != lock[key]:
            out.append(f"{name}: recorded {version}, lock {lock[key]}")
    return out


def reproduction_statement(versions: dict[str, str]) -> str:
    """One Markdown paragraph for results/README.md: which lock reproduces results recorded with
    `versions`, and how to install it; or, when they disagree, that and what to regenerate."""
    python = versions.get("python", "?")
    path = lock_path(python)
    rel = os.path.relpath(path, ROOT)
    try:
        diff = mismatches(versions, read_lock(path))
    except (FileNotFoundError, ValueError) as e:
        return f"These results were made with Python {python}; no usable lock reproduces them ({e})."
    if diff:
        return (
            f"These results were made with Python {python} and versions that differ from `{rel}`: "
            f"{'; '.join(diff)}. Regenerate the results, or the lock ({REGENERATE})."
        )
    named = ", ".join(f"{k} {v}" for k, v in versions.items() if normalize(k) not in NOT_LOCKED)
    return (
        f"These results were made with Python {python} and the versions `{rel}` pins (recorded beside "
        f"them and checked against the lock by tests/test_lock.py: {named}). To reproduce them on a "
        "fresh machine: "
        f"`python{python.rsplit('.', 1)[0]} -m venv .venv && . .venv/bin/activate && "
        f"pip install -r {rel} && pip install --no-deps -e .`, then the commands above "
        "(same seed and device count: the same numbers)."
    )
