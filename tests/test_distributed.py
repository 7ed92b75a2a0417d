"""Two CPU processes on loopback, joined by jax.distributed, run `gan-jax sweep`, a checkpointed
`gan-jax train`, a data-parallel image training and the synthesiser's fused trainer together (one
pair for all four)."""

import json
import os
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan_jax.config import ScheduleConfig, SynthConfig, load_experiment
from gan_jax.data import load_bundled, nuclei
from gan_jax.data.images import ArraySource
from gan_jax.evaluation import evaluate, sweep
from gan_jax.evaluation.cross_validation import train_and_evaluate
from gan_jax.training import checkpoint, distributed, engine, image, image_fit
from gan_jax.training import synth as synth_trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_SET = {
    "model.latent_dim": 4,
    "model.ae_hidden": (8,),
    "model.disc_hidden": (8, 8),
    "model.gen_hidden": (8,),
    "model.noise_dim": 4,
    "schedule.ae_steps": 10,
    "schedule.gan_steps": 40,
    "schedule.batch_size": 16,
    "cv.n_folds": 3,
    "cv.n_repeats": 1,
    "schedule.ae_lr": 0.03,
    "schedule.d_lr": 0.03,
}
PARAMS = ["g_lr=1e-3,3e-3"]
# A worker (all four steps, beside the references) that takes longer is killed: the suite never hangs here.
WORKER_TIMEOUT_S = 480


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sweep_argv(out, port, process_id):
    """`gan-jax sweep` joining the job from its own flags, as a user's command does."""
    sets = [f"--set={k}={v!r}" for k, v in TINY_SET.items()]
    return [
        "sweep",
        "--quick",
        *sets,
        *(f"--param={p}" for p in PARAMS),
        "--out",
        str(out),
        "--no-progress",
        "--coordinator",
        f"127.0.0.1:{port}",
        "--num-processes",
        "2",
        "--process-id",
        str(process_id),
        "--distributed-timeout",
        "60",
    ]


def _train_argv(out):
    """A checkpointed `gan-jax train` in the job the sweep joined (`--distributed off`: no second join)."""
    sets = [f"--set={k}={v!r}" for k, v in TINY_SET.items()]
    return [
        "train",
        "--quick",
        *sets,
        "--out",
        str(out / "results"),
        "--checkpoint-dir",
        str(out / "ckpt"),
        "--checkpoint-every",
        "10",
        "--keep",
        "10",
        "--no-progress",
        "--no-tensorboard",
        "--distributed",
        "off",
    ]


# One pair of processes runs every multi-process check, one after another, so the suite pays
# for starting, importing and joining two JAX processes once: a sweep, a checkpointed training
# run, and a data-parallel image training (each process feeding its own device's half of every
# batch). A marker line before each step lets each test read its own step's output.
PAIR_WORKER = """
import json, sys
import numpy as np
from gan_jax import cli
from gan_jax.training import distributed
sweep_argv, train_argv, proba_path, synth_path = json.loads(sys.argv[1]), json.loads(sys.argv[2]), *sys.argv[3:]
print("== sweep", flush=True)
assert cli.main(sweep_argv) == 0
print("== train", flush=True)
assert cli.main(train_argv) == 0
print("== images", flush=True)
from gan_jax.training import image, image_fit
from gan_jax.data import nuclei
from gan_jax.data.images import ArraySource
images, labels = nuclei.generate(64, seed=0, size=8)
state, _ = image_fit.fit(image.TINY, ArraySource(images, labels), ae_steps=4, gan_steps=4, log_every=4)
proba = distributed.to_host(image.predict_proba(image.TINY, state, images))
if distributed.is_main_process():
    np.save(proba_path, np.asarray(proba))
print("== synth", flush=True)
import jax
from tests.test_distributed import synth_config_and_runs
from gan_jax.training import engine
from gan_jax.training import synth as synth_trainer
config, x, y, runs = synth_config_and_runs()
result = synth_trainer.train_synth_runs(config, x, y, runs, mesh=engine.runs_mesh())
if distributed.is_main_process():
    leaves = [np.asarray(a) for a in jax.tree.leaves(result.state)]
    np.savez(synth_path, *leaves, losses=np.asarray(result.history[-1]["per_run"]["synth_g"]))
print("== done", flush=True)
"""


def synth_config_and_runs():
    """(config, x, y, runs): a tiny AC-GAN synthesiser on 3 folds of the bundled data."""
    from gan_jax.config import Config
    from gan_jax.training import synth as synth_trainer

    config = Config(
        synth=SynthConfig(
            model="acgan", gen_hidden=(8,), disc_hidden=(8,), noise_dim=4, steps=6, batch_size=16
        ),
        schedule=ScheduleConfig(log_every=3),
    )
    ds = load_bundled()
    runs = synth_trainer.make_synth_runs(config, ds.y, evaluate.cv_folds(ds.y, 3, 1, seed=0))
    return config, ds.x, ds.y, runs


def _steps(text: str) -> dict[str, str]:
    """{step: that step's output} from one worker's output, split at the marker lines."""
    steps, current = {}, None
    for line in text.splitlines():
        if line.startswith("== "):
            current = line[3:]
            steps[current] = []
        elif current is not None:
            steps[current].append(line)
    return {step: "\n".join(lines) for step, lines in steps.items()}


@pytest.fixture(scope="module")
def started_pair(tmp_path_factory):
    """(out folder, the two worker processes), started and left running: the one-process
    references (`references`) are computed while they work, so the suite waits for the slower
    of the two instead of their sum. Any worker still running at the end is killed."""
    out = tmp_path_factory.mktemp("two_processes")
    env = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
    }
    port = _free_port()
    argv = lambda i: [
        sys.executable,
        "-c",
        PAIR_WORKER,
        json.dumps(_sweep_argv(out / "sweep", port, i)),
        json.dumps(_train_argv(out / "train")),
        str(out / "proba.npy"),
        str(out / "synth.npz"),
    ]
    # Output to files, not pipes: nobody reads a pipe while the references run, and a worker
    # blocked on a full one would stall its partner at the next collective.
    logs = [open(out / f"worker{i}.log", "w") for i in range(2)]  # noqa: SIM115 - closed below
    procs = [
        subprocess.Popen(argv(i), env=env, cwd=ROOT, text=True, stdout=logs[i], stderr=subprocess.STDOUT)
        for i in range(2)
    ]
    try:
        yield out, procs
    finally:
        for p in procs:  # only the processes this fixture started
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs:
            f.close()


@pytest.fixture(scope="module")
def references(started_pair):
    """What one process with two devices computes for the sweep, the image training and the
    synthesiser (the checkpoint's reference resumes from the pair's own checkpoints, later)."""
    mesh = engine.runs_mesh(jax.devices()[:2])
    config = load_experiment("paper", quick=True).replace(**TINY_SET)
    ds = load_bundled()
    settings = sweep.grid(config, sweep.parse_space(PARAMS))
    sweep_one = sweep.run_sweep(
        config, ds.x, ds.y, settings, evaluate.cv_folds(ds.y, 3, 1, config.cv.seed), mesh=mesh
    )

    images, labels = nuclei.generate(64, seed=0, size=8)
    state, _ = image_fit.fit(
        image.TINY,
        ArraySource(images, labels),
        ae_steps=4,
        gan_steps=4,
        log_every=4,
        mesh=image_fit.data_mesh(jax.devices()[:2]),
    )
    proba_one = np.asarray(image.predict_proba(image.TINY, state, images))

    config, x, y, runs = synth_config_and_runs()
    synth_one = synth_trainer.train_synth_runs(config, x, y, runs, mesh=mesh)
    return {"sweep": sweep_one, "proba": proba_one, "synth": synth_one}


@pytest.fixture(scope="module")
def pair(started_pair, references):
    """(out folder, [each process's {step: output}]) of the one pair of worker processes, once
    both have finished (after the references: see `started_pair`)."""
    out, procs = started_pair
    for p in procs:
        p.wait(timeout=WORKER_TIMEOUT_S)
    outputs = [(out / f"worker{i}.log").read_text() for i in range(2)]
    for i, (p, text) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"process {i} failed:\n{text[-3000:]}"
    return out, [_steps(text) for text in outputs]


def test_the_worker_output_splits_into_steps():
    steps = _steps("jax noise\n== sweep\nresults: x\n== train\nok\n== images\n== synth\n== done\n")
    assert steps == {"sweep": "results: x", "train": "ok", "images": "", "synth": "", "done": ""}


@pytest.mark.timeout(WORKER_TIMEOUT_S + 180)  # workers are killed first; then the reference
def test_two_processes_train_one_sweep_with_the_metrics_of_one_process(pair, references):
    """Bugs caught: processes that each train every run (or only their own and report those),
    arrays not assembled across hosts, or results written by every process."""
    out, outputs = pair
    result = json.loads((out / "sweep" / "sweep.json").read_text())
    assert result["processes"] == 2 and result["device"]["count"] == 2
    assert (
        "results:" in outputs[0]["sweep"] and "results:" not in outputs[1]["sweep"]
    )  # only process 0 reports

    one = references["sweep"]
    for k in evaluate.METRICS:
        np.testing.assert_allclose(result["metrics_per_run"][k], one["metrics_per_run"][k], rtol=0, atol=1e-6)


@pytest.mark.timeout(WORKER_TIMEOUT_S + 180)
def test_two_processes_write_one_checkpoint_that_one_process_resumes_to_the_same_metrics(pair):
    """Bugs caught: a multi-process save that writes only process 0's shards (or each process a
    different folder), a checkpoint that cannot be restored with another process count, and a
    resume that does not continue from the saved step."""
    out, _ = pair
    two = json.loads((out / "train" / "results" / "results.json").read_text())
    ckpt = out / "train" / "ckpt"
    steps = sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit())
    config = load_experiment("paper", quick=True).replace(**TINY_SET)
    assert steps == sorted(checkpoint.save_steps(config, 10))
    middle = steps[len(steps) // 2]
    for later in steps[len(steps) // 2 + 1 :]:  # as if the job had died after `middle`
        shutil.rmtree(ckpt / str(later))

    one = train_and_evaluate(
        config,
        checkpoint_dir=str(ckpt),
        resume=True,
        tensorboard=False,
        mesh=engine.runs_mesh(jax.devices()[:2]),
    )
    assert one["resumed_from_step"] == middle < config.total_steps
    for k in evaluate.METRICS:
        np.testing.assert_allclose(
            [r[k] for r in one["runs"]], [r[k] for r in two["runs"]], rtol=0, atol=1e-6
        )


@pytest.mark.timeout(WORKER_TIMEOUT_S + 180)
def test_two_processes_train_images_data_parallel_like_one_process(pair, references):
    """Bugs caught: batches placed whole on every process (or only on process 0), replicated
    inputs that cannot span processes, and gradients not reduced across hosts."""
    out, _ = pair
    np.testing.assert_allclose(np.load(out / "proba.npy"), references["proba"], rtol=0, atol=1e-5)


def test_a_coordinator_without_process_count_is_refused(monkeypatch):
    monkeypatch.delenv(distributed.ENV_NUM_PROCESSES, raising=False)
    monkeypatch.delenv(distributed.ENV_PROCESS_ID, raising=False)
    with pytest.raises(ValueError, match="needs the process count"):
        distributed.initialize("127.0.0.1:1234")


def test_without_a_coordinator_nothing_is_initialised(monkeypatch):
    for name in (distributed.ENV_COORDINATOR, "JAX_COORDINATOR_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.initialize() is False
    assert distributed.initialize("127.0.0.1:1", 2, 0, mode="off") is False


@pytest.mark.timeout(WORKER_TIMEOUT_S + 180)
def test_two_processes_train_the_synthesiser_like_one_process(pair, references):
    """Bugs caught: the synthesiser's state gathered with jax.device_get (which fails on arrays
    spanning processes), runs not assembled across hosts, padding copies returned as runs."""
    out, _ = pair
    one = references["synth"]
    saved = np.load(out / "synth.npz")
    leaves = jax.tree.leaves(one.state)
    assert len(saved.files) == len(leaves) + 1
    for i, want in enumerate(leaves):
        got = saved[f"arr_{i}"]
        assert got.shape == np.shape(want) and got.shape[:1] == (3,)  # no padding copy returned
        np.testing.assert_allclose(got, np.asarray(want), rtol=0, atol=1e-6)
    np.testing.assert_allclose(saved["losses"], one.history[-1]["per_run"]["synth_g"], rtol=0, atol=1e-6)
