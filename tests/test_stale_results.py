"""benchmarks/stale_results.py on a tiny git repository built here: a result goes stale when a
file its command's code imports changes after its commit, and only then."""

import json
import os
import subprocess

import pytest

from benchmarks import stale_results

FILES = {
    "pyproject.toml": "[project]\nname = 'demo'\n",
    "gan_jax/__init__.py": "",
    "gan_jax/core.py": "from gan_jax import config, helpers\n",
    "gan_jax/config/__init__.py": "",
    "experiments/paper.py": "",
    "gan_jax/helpers.py": "X = 1\n",
    "gan_jax/unrelated.py": "Y = 1\n",
    "gan_jax/commands/__init__.py": "",
    "gan_jax/commands/train.py": "def run():\n    from gan_jax import core  # function-local: still a dependency\n",
    "benchmarks/__init__.py": "",
    "benchmarks/bench_demo.py": "from . import shared\n",
    "benchmarks/shared.py": "",
    "scripts/tool.py": "import sibling\n",
    "scripts/sibling.py": "",
    "scripts/run_all.sh": "gan-jax train --quick\n",
}


def git(root, *args):
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def commit_all(root, message):
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD")


def write(root, path, text):
    os.makedirs(os.path.dirname(os.path.join(root, path)) or root, exist_ok=True)
    with open(os.path.join(root, path), "w") as f:
        f.write(text)


def record(command, commit):
    return {
        "command": command,
        "git_commit": commit,
        "dirty": False,
        "versions": {"jax": "0"},
        "device": {"platform": "cpu"},
        "started": "2026-01-01T00:00:00+00:00",
        "load_average": {"before": [0, 0, 0], "after": [0, 0, 0], "cores": 1},
    }


@pytest.fixture
def repo(tmp_path):
    root = str(tmp_path)
    git(root, "init", "-q")
    for path, text in FILES.items():
        write(root, path, text)
    commit = commit_all(root, "code")
    results = {
        "train.json": record("gan-jax train --quick", commit),
        "bench.json": record("python -m benchmarks.bench_demo --out results", commit),
        "tool.json": record("python scripts/tool.py", commit),
        "shell.json": record("scripts/run_all.sh", commit),
        "dirty.json": record("gan-jax train", commit + "+dirty"),
        "bare.json": {"value": 1},
    }
    for name, rec in results.items():
        write(root, f"results/{name}", json.dumps(rec))
    commit_all(root, "results")
    return root


def states(root):
    return {s.path: s.state for s in stale_results.check(root)}


def test_nothing_changed_means_current_and_incomplete_records_are_named(repo):
    got = states(repo)
    assert got == {
        "train.json": "current",
        "bench.json": "current",
        "tool.json": "current",
        "shell.json": "current",
        "dirty.json": "incomplete",
        "bare.json": "incomplete",
    }


def test_a_changed_unrelated_file_leaves_results_current(repo):
    write(repo, "gan_jax/unrelated.py", "Y = 2\n")
    commit_all(repo, "unrelated")
    assert states(repo)["train.json"] == "current" and states(repo)["bench.json"] == "current"


def test_a_changed_dependency_makes_its_results_stale(repo):
    write(repo, "gan_jax/helpers.py", "X = 2\n")  # imported by core, imported inside train.run
    commit_all(repo, "helpers")
    got = states(repo)
    assert got["train.json"] == "stale" and got["shell.json"] == "stale"  # the shell script runs train
    assert got["bench.json"] == "current" and got["tool.json"] == "current"
    detail = {s.path: s.detail for s in stale_results.check(repo)}["train.json"]
    assert "gan_jax/helpers.py" in detail


@pytest.mark.parametrize(
    "path, stale",
    [
        ("benchmarks/shared.py", "bench.json"),
        ("scripts/sibling.py", "tool.json"),
        ("pyproject.toml", "tool.json"),
        ("experiments/paper.py", "train.json"),  # loaded by path through gan_jax/config
    ],
)
def test_relative_sibling_and_dependency_file_changes_count(repo, path, stale):
    write(repo, path, "# changed\n")
    commit_all(repo, "change")
    assert states(repo)[stale] == "stale"


def test_check_flag_exits_non_zero_when_anything_is_stale(repo, capsys):
    assert stale_results.main(["--root", repo]) == 0
    assert stale_results.main(["--root", repo, "--check"]) == 1  # dirty.json and bare.json
    for name in ("dirty.json", "bare.json"):
        os.remove(os.path.join(repo, "results", name))
    assert stale_results.main(["--root", repo, "--check"]) == 0
    write(repo, "gan_jax/helpers.py", "X = 3\n")
    commit_all(repo, "helpers")
    assert stale_results.main(["--root", repo, "--check"]) == 1
    assert "stale      train.json" in capsys.readouterr().out
