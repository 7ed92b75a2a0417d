"""Every file in results/ traces to a complete run record (issue 22, item 5).

Decision for non-JSON files: a Markdown, PNG or CSV file is covered by the JSON record of the
step that writes it in benchmarks/results_plan.py (`source_record`): the same command writes both
in the same run, and a `--report-only` redraw reads the JSON alone. So the plan must name every
file in results/, and every JSON there must carry a complete, clean record whose commit is in
this repository's history and whose command is its step's.

`test_every_results_json_has_a_complete_clean_record` names each incomplete file and what it
lacks. `PENDING_REGENERATION` lists, by name, the files made before complete records existed and
not yet remade (`python -m benchmarks.regenerate_results --only <step>`): the test tolerates
exactly those, fails on any other incomplete file, and fails when a listed file has become
complete, so the list only shrinks.
"""

import json
import os
import subprocess

import pytest

from benchmarks import results_plan
from gan_jax.artifacts import records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "results")


def results_files() -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, n), RESULTS) for d, _, names in os.walk(RESULTS) for n in names
    )


def commit_exists(commit: str) -> bool:
    run = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
    return run.returncode == 0


def record_problems(path: str) -> list[str]:
    """What the record of results/`path` (a JSON) lacks, as readable lines."""
    with open(os.path.join(RESULTS, path)) as f:
        rec = json.load(f)
    problems = records.missing_record_keys(rec)
    commit = str(rec.get("git_commit", "")) if isinstance(rec, dict) else ""
    if not problems and not commit_exists(commit):
        problems.append(f"commit {commit[:12]} is not in this repository's history")
    step = results_plan.step_of(path)
    if step and isinstance(rec, dict) and "command" in rec and rec["command"] != step.command:
        problems.append(f"command {rec['command']!r} is not its step's {step.command!r}")
    return problems


def test_the_plan_names_every_file_in_results_once():
    unplanned = [p for p in results_files() if results_plan.step_of(p) is None]
    assert not unplanned, f"files in results/ that no step of benchmarks/results_plan.py writes: {unplanned}"
    outputs = [o for s in results_plan.STEPS for o in s.outputs]
    assert len(outputs) == len(set(outputs)), "a file is written by two steps"
    names = [s.name for s in results_plan.STEPS]
    assert len(names) == len(set(names))


def test_every_non_json_file_traces_to_a_json_record_in_results():
    for path in results_files():
        source = results_plan.source_record(path)
        assert source and source.endswith(".json"), path
        assert os.path.exists(os.path.join(RESULTS, source)), f"{path}: its record {source} is missing"


# Made before complete run records, not yet remade at a clean commit of today's code (each one's
# step and expected minutes: benchmarks/results_plan.py). Empty it as they are regenerated.
PENDING_REGENERATION: frozenset[str] = frozenset()


def test_every_results_json_has_a_complete_clean_record():
    incomplete = {p: record_problems(p) for p in results_files() if p.endswith(".json")}
    incomplete = {p: v for p, v in incomplete.items() if v and p not in PENDING_REGENERATION}
    missing = [
        o for s in results_plan.STEPS for o in s.outputs if not os.path.exists(os.path.join(RESULTS, o))
    ]
    report = "\n".join(
        [*(f"{p}: {'; '.join(v)}" for p, v in incomplete.items()), *(f"{m}: missing" for m in missing)]
    )
    assert not report, f"regenerate these (python -m benchmarks.regenerate_results):\n{report}"


def test_pending_regeneration_lists_only_files_still_incomplete():
    done = sorted(
        p
        for p in PENDING_REGENERATION
        if not os.path.exists(os.path.join(RESULTS, p)) or not record_problems(p)
    )
    assert not done, f"complete or gone now: remove them from PENDING_REGENERATION: {done}"


def _complete(**changes):
    rec = {
        "command": "python -m benchmarks.bench_train --out results",
        "git_commit": "a" * 40,
        "dirty": False,
        "versions": {"jax": "0.10.2"},
        "device": {"platform": "cpu", "count": 2, "kind": "cpu"},
        "started": "2026-01-01T00:00:00+00:00",
        "load_average": {"before": [1.0, 1.0, 1.0], "after": [1.0, 1.0, 1.0], "cores": 2},
    }
    rec.update(changes)
    return {k: v for k, v in rec.items() if v is not None}


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"git_commit": "a" * 40 + "+dirty"}, "not a clean"),
        ({"dirty": True}, "not a clean"),
        ({"git_commit": None}, "no 'git_commit'"),
        ({"versions": {"numpy": "2"}}, "versions lack jax"),
        ({"device": None}, "no 'device'"),
        ({"load_average": {"before": [1.0, 1.0, 1.0], "cores": 2}}, "never finished"),
        ({"started": None}, "no 'started'"),
        ({"command": None}, "no 'command'"),
    ],
)
def test_missing_record_keys_names_each_gap(changes, problem):
    assert records.missing_record_keys(_complete()) == []
    assert any(problem in p for p in records.missing_record_keys(_complete(**changes)))


def test_allow_dirty_accepts_only_the_dirty_mark():
    dirty = _complete(git_commit="a" * 40 + "+dirty", dirty=True)
    assert records.missing_record_keys(dirty, allow_dirty=True) == []
    assert records.missing_record_keys(_complete(git_commit="unknown"), allow_dirty=True) != []


def test_a_finished_run_record_is_complete_apart_from_a_dirty_checkout():
    rec = records.finish_record(records.run_record("python -m demo"))
    problems = records.missing_record_keys(rec)
    assert problems == [] or (rec["dirty"] and len(problems) == 1 and "not a clean" in problems[0])
    assert rec["command"] == "python -m demo" and "_t0" not in rec and rec["wall_s"] >= 0
    with pytest.raises(ValueError, match="run_record"):
        records.finish_record(rec)  # already finished: no start time
