"""Checkpoint/resume of the image study: `gan-jax image-study` killed with SIGKILL mid-run and
continued with --resume gives the per-run metrics, loss history and final state of a run that
was never stopped, bit for bit; a checkpoint of another config is refused."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gan_jax import cli
from gan_jax.studies import image_checkpoints, image_study
from gan_jax.training import checkpoint

TINY = os.path.join(os.path.dirname(__file__), "tiny_image_experiment.py")
# 8×8 nuclei, chunks of 5 steps, a checkpoint every chunk: long enough to be killed mid-run (the
# kill lands at step 20 or soon after, 6 chunks and saves before the end).
ARGS = ["image-study", "-e", TINY, "--quick", "--set", "schedule.gan_steps=50", "--checkpoint-every", "5"]
SGAN_DIR = image_checkpoints.slug(image_study.SGAN)
TOTAL = 2 + 50  # quick: ae_steps 2


def env():
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f]
    env["XLA_FLAGS"] = " ".join([*flags, "--xla_force_host_platform_device_count=2"])
    return env


def study(tmp_path, name, *extra):
    argv = [sys.executable, "-m", "gan_jax.cli", *ARGS, "--checkpoint-dir", str(tmp_path / f"{name}_ckpt")]
    argv += ["--out", str(tmp_path / name), *extra]
    return subprocess.Popen(argv, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def final(tmp_path, name):
    record = json.loads((tmp_path / name / "image_study.json").read_text())
    ckpts = checkpoint.TrainCheckpoints(str(tmp_path / f"{name}_ckpt" / SGAN_DIR))
    step = ckpts.steps()[0]
    args = ocp.args.Composite(state=ocp.args.StandardRestore())  # the raw arrays, no template
    restored = ckpts.manager.restore(step, args=args).state
    ckpts.close()
    return record, step, restored


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("reference")
    proc = study(tmp_path, "ref")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return (*final(tmp_path, "ref"), tmp_path)


def wait_for_checkpoint(proc, folder, min_step):
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        steps = [int(n) for n in os.listdir(folder) if n.isdigit()] if folder.exists() else []
        if steps and max(steps) >= min_step:
            return
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint >= {min_step} appeared: {proc.communicate()}")


# Three studies one after another (the reference is set up inside this test's time): 184 s at
# load 14 on 2 cores, over pytest-timeout's default 300 s at load 17.
@pytest.mark.timeout(900)
def test_sigkill_mid_run_then_resume_gives_identical_per_run_metrics(tmp_path, reference):
    # Catches a resume that restarts the schedule, redraws keys or batches, loses the optimizer
    # state or the history: any of them changes the runs' metrics or the final parameters.
    proc = study(tmp_path, "killed")
    wait_for_checkpoint(proc, tmp_path / "killed_ckpt" / SGAN_DIR, 20)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = checkpoint.TrainCheckpoints(str(tmp_path / "killed_ckpt" / SGAN_DIR)).steps()
    assert done and done[0] < TOTAL, f"not killed mid-run: {done}"
    resumed = study(tmp_path, "killed", "--resume")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert f"resuming from step {done[0]} of {TOTAL}" in err
    record, step, state = final(tmp_path, "killed")
    ref_record, ref_step, ref_state, _ = reference
    assert step == ref_step == TOTAL
    for mine, ref in zip(record["per_fraction"], ref_record["per_fraction"], strict=True):
        for model in ref["models"]:
            assert mine["models"][model]["runs"] == ref["models"][model]["runs"], model
    assert record["histories"] == ref_record["histories"]
    leaves, ref_leaves = jax.tree.leaves(state), jax.tree.leaves(ref_state)
    assert len(leaves) == len(ref_leaves) > 0
    for a, b in zip(leaves, ref_leaves):
        np.testing.assert_array_equal(a, b)  # every parameter and optimizer moment


def test_checkpoints_are_not_overwritten_nor_resumed_by_another_config(tmp_path, reference, capsys):
    # In this process (`cli.main`, as the subprocess runs it): both are refused before any
    # training, so a second interpreter would only add its start-up.
    done = reference[-1]  # the reference's checkpoints, complete
    again = [*ARGS, "--checkpoint-dir", str(done / "ref_ckpt"), "--out", str(tmp_path / "again")]
    assert cli.main(again) == 2  # the same folder without --resume
    err = capsys.readouterr().err
    assert "already holds checkpoints" in err and "--resume" in err
    other = [*ARGS, "--set", "cv.seed=5", "--resume", "--checkpoint-dir", str(done / "ref_ckpt")]
    assert cli.main([*other, "--out", str(tmp_path / "other")]) == 2
    assert "written with another config (cv.seed: 0 -> 5)" in capsys.readouterr().err
