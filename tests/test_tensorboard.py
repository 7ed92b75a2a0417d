"""TensorBoard event files (gan_jax/training/tensorboard.py): every tag at every logged step, per run and
mean, evaluation metrics at the end, on a local path and on gs:// (GCS emulator), read back
from the files; a real quick training; bad input."""

import os

import numpy as np
import pytest

from gan_jax.artifacts import storage
from gan_jax.training import tensorboard

# Two AE chunks, then three GAN chunks: "ae" is logged at steps 10, 20; "d" and "g" at 30-50.
HISTORY = [
    {"step": 10, "phase": "ae", "ae": 0.5},
    {"step": 20, "phase": "ae", "ae": 0.25},
    {"step": 30, "phase": "gan", "d": 1.5, "g": 0.75},
    {"step": 40, "phase": "gan", "d": 1.25, "g": 0.875},
    {"step": 50, "phase": "gan", "d": 1.125, "g": 1.0},
]
PER_RUN = {
    "ae": np.array([[0.4, 0.2], [0.5, 0.25], [0.6, 0.3]]),
    "d": np.array([[1.0, 1.1, 1.2], [1.5, 1.25, 1.125], [2.0, 1.4, 1.05]]),
    "g": np.array([[0.5, 0.6, 0.7], [0.75, 0.875, 1.0], [1.0, 1.15, 1.3]]),
}
FINAL = {"accuracy": 0.9375, "roc_auc": 0.96875}
PER_RUN_METRICS = {"accuracy": [0.875, 0.9375, 1.0], "roc_auc": [0.9, 0.95, 1.0]}


def _values(points):
    return [v for _, v in points]


def _steps(points):
    return [s for s, _ in points]


def check_logs(scalars):
    assert sorted(scalars) == ["mean", "run_000", "run_001", "run_002"]
    mean = scalars["mean"]
    assert sorted(mean) == ["eval/accuracy", "eval/roc_auc", "loss/ae", "loss/d", "loss/g"]
    assert mean["loss/ae"] == [(10, 0.5), (20, 0.25)]  # exact in float32
    assert _steps(mean["loss/d"]) == _steps(mean["loss/g"]) == [30, 40, 50]
    assert _values(mean["loss/g"]) == [0.75, 0.875, 1.0]
    assert mean["eval/accuracy"] == [(50, 0.9375)]  # at the last step, once
    for r in range(3):
        run = scalars[tensorboard.run_name(r)]
        assert sorted(run) == ["eval/accuracy", "eval/roc_auc", "loss/ae", "loss/d", "loss/g"]
        for name, values in PER_RUN.items():
            assert _steps(run[f"loss/{name}"]) == _steps(mean[f"loss/{name}"])
            np.testing.assert_allclose(_values(run[f"loss/{name}"]), values[r], rtol=1e-6)
        assert run["eval/roc_auc"] == [(50, pytest.approx(PER_RUN_METRICS["roc_auc"][r], rel=1e-6))]


def test_local_logs_hold_every_tag_at_every_step(tmp_path):
    """Catches a loss written at the wrong step, a run's curve under another run, the mean
    mixed with a run, and metrics missing or logged more than once."""
    uri = tensorboard.write_training_logs(tmp_path / "out", HISTORY, FINAL, PER_RUN, PER_RUN_METRICS)
    assert uri == f"{tmp_path}/out/tensorboard"
    assert len(list((tmp_path / "out" / "tensorboard" / "mean").glob("events.out.tfevents.*"))) == 1
    check_logs(tensorboard.read_scalars(uri))


def test_tensorboard_itself_reads_the_files(tmp_path):
    """TensorBoard's own reader (not ours) sees one run per folder with the same scalars:
    catches files our reader accepts but TensorBoard would not show."""
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    logdir = tensorboard.write_training_logs(tmp_path, HISTORY, FINAL, PER_RUN, PER_RUN_METRICS)
    mux = EventMultiplexer().AddRunsFromDirectory(logdir)
    mux.Reload()
    assert sorted(mux.Runs()) == ["mean", "run_000", "run_001", "run_002"]
    seen = {
        run: {tag: [(e.step, e.value) for e in mux.Scalars(run, tag)] for tag in tags["scalars"]}
        for run, tags in mux.Runs().items()
    }
    check_logs(seen)


def test_logs_on_gcs(gcs):
    """The same files in a gs:// output folder (the writer writes local files only; they must
    be uploaded, under the same layout)."""
    uri = tensorboard.write_training_logs(f"{gcs}/tb/out", HISTORY, FINAL, PER_RUN, PER_RUN_METRICS)
    assert uri == f"{gcs}/tb/out/tensorboard"
    assert storage.listdir(uri) == ["mean", "run_000", "run_001", "run_002"]
    check_logs(tensorboard.read_scalars(uri))


def test_a_second_write_replaces_the_first(tmp_path):
    """A resumed training rewrites its logs: the curves of the first attempt must not remain
    beside the new ones (TensorBoard would draw both)."""
    tensorboard.write_training_logs(tmp_path, HISTORY, FINAL, PER_RUN, PER_RUN_METRICS)
    tensorboard.write_training_logs(tmp_path, HISTORY[:2])
    scalars = tensorboard.read_scalars(tmp_path / "tensorboard")
    assert scalars == {"mean": {"loss/ae": [(10, 0.5), (20, 0.25)]}}


def test_means_only_without_per_run_values(tmp_path):
    scalars = tensorboard.read_scalars(tensorboard.write_training_logs(tmp_path, HISTORY, FINAL))
    assert sorted(scalars) == ["mean"] and len(scalars["mean"]["loss/d"]) == 3


@pytest.mark.parametrize(
    "history, per_run, message",
    [
        ([{"phase": "ae", "ae": 1.0}], None, r"history\[0\]: 'step' must be an integer"),
        ([{"step": 10, "ae": 1.0}, {"step": 10, "ae": 1.0}], None, "step 10 does not follow step 10"),
        ([{"step": 10, "ae": "low"}], None, r"history\[0\]\['ae'\]: a loss must be a number"),
        (HISTORY, {"d": np.zeros((3, 2))}, r"per_run_losses\['d'\]: expected shape \[R, 3\].*got \[3, 2\]"),
        (HISTORY, {"e": np.zeros((3, 3))}, r"per_run_losses\['e'\]: no history entry logs 'e'"),
        (HISTORY, {"d": np.zeros((3, 3)), "g": np.zeros((2, 3))}, "same number of runs"),
    ],
)
def test_bad_input_is_refused_with_its_place(tmp_path, history, per_run, message):
    with pytest.raises(ValueError, match=message):
        tensorboard.write_training_logs(tmp_path, history, None, per_run)
    assert not os.path.exists(tmp_path / "tensorboard")  # nothing half-written


def test_a_damaged_event_file_is_reported(tmp_path):
    tensorboard.write_training_logs(tmp_path, HISTORY)
    (path,) = (tmp_path / "tensorboard" / "mean").glob("events.out.tfevents.*")
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated or corrupt record"):
        tensorboard.read_scalars(tmp_path / "tensorboard")


def test_logs_of_a_real_quick_training(tmp_path):
    """From the results of `train_and_evaluate` (a tiny config, 2 runs): one point per history
    entry, and every summarised metric per run and as the mean."""
    from gan_jax.config import Config, CVConfig, ScheduleConfig
    from gan_jax.evaluation.cross_validation import train_and_evaluate

    results = train_and_evaluate(
        Config(
            schedule=ScheduleConfig(ae_steps=10, gan_steps=20, log_every=10),
            cv=CVConfig(n_folds=2, n_repeats=1),
        )
    )
    scalars = tensorboard.read_scalars(tensorboard.write_results_logs(tmp_path, results))
    history = results["history"]
    n_runs = len(results["runs"])
    assert sorted(scalars) == ["mean", *(tensorboard.run_name(r) for r in range(n_runs))]
    for name in ("ae", "d", "g"):
        logged = [e["step"] for e in history if name in e]
        assert logged and _steps(scalars["mean"][f"loss/{name}"]) == logged
    accuracy = results["summary"]["accuracy"]["mean"]
    assert scalars["mean"]["eval/accuracy"] == [(history[-1]["step"], pytest.approx(accuracy, rel=1e-6))]
    assert scalars["run_001"]["eval/f1"][0][1] == pytest.approx(results["runs"][1]["f1"], rel=1e-6)
