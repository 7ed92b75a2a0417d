"""Training checkpoints: exact round trip, keep-last-N, fallback from a corrupt newest step,
refusal of another config, exact resume after SIGKILL, and a usable checkpoint after SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from gan_jax import runtime
from gan_jax.config import Config, CVConfig, ScheduleConfig, load_experiment
from gan_jax.data import load_bundled
from gan_jax.evaluation.cross_validation import train_and_evaluate
from gan_jax.evaluation.evaluate import cv_folds
from gan_jax.training import checkpoint, table
from gan_jax.training.checkpoint import CheckpointWarning, IncompatibleCheckpoint, TrainCheckpoints

TINY = Config(
    schedule=ScheduleConfig(ae_steps=10, gan_steps=20, log_every=10), cv=CVConfig(n_folds=2, n_repeats=1)
)


def _state(seed: int):
    """A GANState of TINY's shapes filled with random numbers (exactness shows up in bits)."""
    template = checkpoint.state_template(TINY, 30, 2)
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(a.dtype), template), template


def _meta():
    return {"config": TINY.to_dict(), "data_fingerprint": "x", "history": []}


def _assert_same(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert u.dtype == v.dtype and np.array_equal(u, v)


def test_round_trip_is_exact_and_keeps_the_newest(tmp_path):
    (s10, template), (s20, _), (s30, _) = _state(10), _state(20), _state(30)
    with TrainCheckpoints(str(tmp_path), keep=2) as ckpts:
        for step, s in [(10, s10), (20, s20), (30, s30)]:
            ckpts.save(step, s, _meta())
    ckpts = TrainCheckpoints(str(tmp_path))
    assert ckpts.steps() == [30, 20]
    state, meta = ckpts.restore_latest(template)
    assert meta["step"] == 30 and meta["config"] == json.loads(json.dumps(TINY.to_dict()))
    assert type(state).__name__ == "GANState"
    _assert_same(state, s30)


def test_metadata_is_a_snapshot_at_save_time(tmp_path):
    # Saves are asynchronous; training appends to the history list right after a save.
    s10, template = _state(10)
    history = [{"step": 10}]
    with TrainCheckpoints(str(tmp_path)) as ckpts:
        ckpts.save(10, s10, {**_meta(), "history": history})
        history.append({"step": 20})
    _, meta = TrainCheckpoints(str(tmp_path)).restore_latest(template)
    assert meta["history"] == [{"step": 10}]


@pytest.mark.parametrize("damage", ["truncate arrays", "delete metadata", "delete arrays"])
def test_corrupt_newest_falls_back_to_the_previous_with_a_warning(tmp_path, damage):
    (s10, template), (s20, _) = _state(10), _state(20)
    with TrainCheckpoints(str(tmp_path)) as ckpts:
        ckpts.save(10, s10, _meta())
        ckpts.save(20, s20, _meta())
    newest = tmp_path / "20"
    if damage == "truncate arrays":
        for f in (newest / "state").rglob("*"):
            if f.is_file() and f.stat().st_size > 0:
                f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    else:
        import shutil

        shutil.rmtree(newest / ("meta" if damage == "delete metadata" else "state"))
    with pytest.warns(CheckpointWarning, match="step 20 .* unreadable"):
        state, meta = TrainCheckpoints(str(tmp_path)).restore_latest(template)
    assert meta["step"] == 10 and not newest.exists()
    _assert_same(state, s10)


def test_unfinished_orbax_folder_is_ignored(tmp_path):
    s10, template = _state(10)
    with TrainCheckpoints(str(tmp_path)) as ckpts:
        ckpts.save(10, s10, _meta())
    (tmp_path / "20.orbax-checkpoint-tmp-1234").mkdir()  # what a kill during a save leaves
    assert TrainCheckpoints(str(tmp_path)).steps() == [10]


def test_another_config_is_refused_and_its_checkpoint_kept(tmp_path):
    ds = load_bundled()
    masks = cv_folds(ds.y, 2, 1, 0)
    train_and_evaluate(TINY, checkpoint_dir=str(tmp_path))
    other = TINY.replace(**{"schedule.d_lr": 5e-4})
    with pytest.raises(IncompatibleCheckpoint, match=r"another config \(schedule.d_lr: 0.001 -> 0.0005\)"):
        train_and_evaluate(other, checkpoint_dir=str(tmp_path), resume=True)
    with pytest.raises(checkpoint.CheckpointError, match="already holds checkpoints .*--resume"):
        train_and_evaluate(TINY, checkpoint_dir=str(tmp_path))
    assert TrainCheckpoints(str(tmp_path)).steps() == [30, 20, 10]
    runs = table.make_runs(TINY, ds.y, masks)
    fewer_labels = table.make_runs(TINY.replace(**{"cv.labeled_fraction": 0.5}), ds.y, masks)
    other_folds = table.make_runs(TINY, ds.y, ~masks)
    fingerprint = lambda r: checkpoint.fingerprint(ds.x, ds.y, r)
    assert len({fingerprint(runs), fingerprint(fewer_labels), fingerprint(other_folds)}) == 3


def test_save_steps_follow_the_chunk_boundaries():
    """The first chunk boundary at or after each multiple of `every`, and the end."""
    assert checkpoint.save_steps(TINY, 10) == {10, 20, 30}
    assert checkpoint.save_steps(TINY, 15) == {20, 30}
    assert checkpoint.save_steps(TINY, 100) == {30}


def test_signal_sets_the_flag_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with runtime.stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert stop.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


# -- subprocesses: SIGKILL + resume is exact, SIGTERM leaves a usable checkpoint -----------

# 22 chunks of 10 steps, a checkpoint at each: long enough to be killed mid-run.
KILL_ARGS = ["--quick", "--set", "schedule.gan_steps=200", "--checkpoint-every", "10", "--no-progress"]
KILL_CONFIG = load_experiment("paper", quick=True).replace(**{"schedule.gan_steps": 200})


def _env():
    env = dict(os.environ)
    # Two CPU devices: what this machine has; the persistent compilation cache comes along.
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
    env["XLA_FLAGS"] = " ".join([*flags, "--xla_force_host_platform_device_count=2"])
    return env


def _train(tmp_path, name, *extra):
    argv = [
        sys.executable,
        "-m",
        "gan_jax.cli",
        "train",
        *KILL_ARGS,
        "--checkpoint-dir",
        str(tmp_path / f"{name}_ckpt"),
        "--out",
        str(tmp_path / name),
        *extra,
    ]
    return subprocess.Popen(argv, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc, folder, min_step):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        steps = [int(n) for n in os.listdir(folder) if n.isdigit()] if folder.exists() else []
        if steps and max(steps) >= min_step:
            return
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint >= {min_step} appeared: {proc.communicate()}")


def _final(tmp_path, name):
    ckpts = TrainCheckpoints(str(tmp_path / f"{name}_ckpt"))
    template = checkpoint.state_template(KILL_CONFIG, 30, 4)
    state, meta = ckpts.restore_latest(template)
    results = json.loads((tmp_path / name / "results.json").read_text())
    return state, meta, results


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("reference")
    proc = _train(tmp_path, "ref")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return _final(tmp_path, "ref")


def _assert_resumes_to_reference(tmp_path, name, reference):
    proc = _train(tmp_path, name, "--resume")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "resuming from step" in err
    state, meta, results = _final(tmp_path, name)
    ref_state, ref_meta, ref_results = reference
    assert meta["step"] == ref_meta["step"] == KILL_CONFIG.total_steps
    _assert_same(state, ref_state)  # every parameter and optimizer moment, bit for bit
    assert results["runs"] == ref_results["runs"] and results["history"] == ref_results["history"]
    return results


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path, reference):
    proc = _train(tmp_path, "killed")
    _wait_for_checkpoint(proc, tmp_path / "killed_ckpt", 40)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = TrainCheckpoints(str(tmp_path / "killed_ckpt")).steps()
    assert done and done[0] < KILL_CONFIG.total_steps, f"not killed mid-run: {done}"
    results = _assert_resumes_to_reference(tmp_path, "killed", reference)
    assert 40 <= results["resumed_from_step"] < KILL_CONFIG.total_steps


def test_sigterm_saves_a_usable_checkpoint_and_exits(tmp_path, reference):
    proc = _train(tmp_path, "stopped")
    _wait_for_checkpoint(proc, tmp_path / "stopped_ckpt", 20)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM at step" in err and "--resume" in err
    assert not (tmp_path / "stopped" / "results.json").exists()
    steps = TrainCheckpoints(str(tmp_path / "stopped_ckpt")).steps()
    stopped_at = int(err.split("at step ")[1].split(";")[0])
    assert steps[0] == stopped_at < KILL_CONFIG.total_steps
    _assert_resumes_to_reference(tmp_path, "stopped", reference)


def test_a_checkpoint_of_another_format_is_refused_and_kept(tmp_path):
    """Bug caught: a checkpoint written by another gan_jax (another state layout) taken for a
    corrupt one and deleted, or read into the wrong layout."""
    s10, template = _state(10)
    with TrainCheckpoints(str(tmp_path)) as ckpts:
        ckpts.save(10, s10, _meta())
    meta_file = tmp_path / "10" / "meta" / "metadata"  # Orbax JsonSave writes the JSON here
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "format": checkpoint.FORMAT_VERSION - 1}))
    ckpts = TrainCheckpoints(str(tmp_path))
    with pytest.raises(IncompatibleCheckpoint, match=f"has format {checkpoint.FORMAT_VERSION - 1}"):
        ckpts.restore_latest(template)
    assert ckpts.steps() == [10]  # kept
