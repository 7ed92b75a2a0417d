import json

import pytest

from gan_jax import cli
from gan_jax.commands import apply_overrides
from gan_jax.config import IMAGES, Config, legacy, load_experiment, quick_variant
from gan_jax.evaluation.evaluate import METRICS


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--quick", "--out", str(out), "--no-progress"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_train_writes_every_run_config_seed_and_versions(quick_run):
    _, results = quick_run
    config = quick_variant(load_experiment("paper"))
    assert results["config"] == json.loads(json.dumps(config.to_dict()))
    assert results["seed"] == 0 and results["data"] == "bundled:sklearn-wdbc"
    assert {"jax", "flax", "optax", "scikit-learn"} <= set(results["versions"])
    assert len(results["runs"]) == config.n_runs == 4
    assert sum(r["n_test"] for r in results["runs"]) == 2 * 569  # every row tested once per repeat
    for k in METRICS:
        s = results["summary"][k]
        assert 0.0 <= s["mean"] <= 1.0 and s["ci95_low"] <= s["mean"] <= s["ci95_high"]
        assert s["mean"] == pytest.approx(sum(r[k] for r in results["runs"]) / 4)


def test_same_config_and_seed_give_identical_numbers(quick_run, tmp_path):
    _, first = quick_run
    assert cli.main(["train", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    second = json.loads((tmp_path / "results.json").read_text())
    assert second["runs"] == first["runs"] and second["summary"] == first["summary"]


def test_evaluate_prints_the_table(quick_run, capsys):
    out, results = quick_run
    assert cli.main(["evaluate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert all(k in printed for k in METRICS)
    assert f"{100 * results['summary']['accuracy']['mean']:.2f}" in printed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--set", "model.latent_dim=big"], "'big' is not a valid int"),
        (["train", "--set", "latent_dim=big"], "'big' is not a valid int"),  # a name from before sections
        (["train", "--set", "nonsense=1"], "FIELD a config field"),
        (["train", "--set", "schedule.nonsense=1"], "FIELD a config field"),
        (["train", "--set", "data.scaler=robust"], "scaler must be one of"),
        (["train", "-e", "images"], "is an image experiment"),
        (["train", "--experiment", "nope"], "unknown experiment 'nope'"),
        (["train", "--experiment", "ablations:nope"], "ablations has no variant 'nope'"),
        (["train", "--set", "cv.labeled_fraction=0"], "labeled_fraction must be in (0, 1]"),
        (["train", "--quick", "--data", "/no/such/file.csv"], "file not found"),
        (["evaluate", "/no/such/results.json"], "No such file"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_set_parses_types():
    c = apply_overrides(
        Config(),
        ["model.ae_hidden=[32,16]", "schedule.ae_lr=1", "model.use_gan=False", "data.uri=s3://b/k.csv"],
    )
    assert c.model.ae_hidden == (32, 16) and c.model.use_gan is False and c.data.uri == "s3://b/k.csv"
    assert c.schedule.ae_lr == 1.0 and isinstance(c.schedule.ae_lr, float)


@pytest.mark.parametrize("old, path", sorted(legacy.OLD_PATHS.items()))
def test_set_takes_every_name_from_before_sections(old, path):
    """Bug caught: an old --set name (scripts and docs written before sections) refused, or sent to
    another field than the one it named."""
    config = (
        IMAGES if old.startswith("model.") or old in ("n_images", "pool", "labeled_fractions") else Config()
    )
    section, _, field = path.rpartition(".")
    current = getattr(getattr(config, section), field) if section else getattr(config, field)
    value = {bool: "False", int: "4", float: "0.5", tuple: "(4,)"}.get(type(current), "zscore")
    special = {"synth_model": "cgan", "synth_scaler": "minmax", "data": "x.csv", "name": "other"}
    special |= {"gen_loss": "eq7", "model.gen_loss": "eq7", "labeled_fractions": "(0.5,)"}
    value = special.get(old, value)
    assert apply_overrides(config, [f"{old}={value}"]) == apply_overrides(config, [f"{path}={value}"])
    assert apply_overrides(config, [f"{old}={value}"]) != config


def test_an_experiment_takes_an_argument():
    assert load_experiment("ablations:no_gan").model.use_gan is False
    assert load_experiment("ablations") == load_experiment("paper")


def test_the_library_never_imports_experiment_files():
    """Configs depend on the library, never the reverse."""
    import pathlib

    root = pathlib.Path(__file__).parent.parent / "gan_jax"
    offenders = [
        str(p)
        for p in root.rglob("*.py")
        if "from experiments" in p.read_text() or "import experiments" in p.read_text()
    ]
    assert offenders == []


def test_train_writes_tensorboard_curves_by_default(quick_run):
    """Every training writes event files: the mean and every run, one point per logged chunk."""
    from gan_jax.training import tensorboard

    out, results = quick_run
    scalars = tensorboard.read_scalars(out / "tensorboard")
    assert sorted(scalars) == ["mean", *(tensorboard.run_name(r) for r in range(len(results["runs"])))]
    for loss in ("ae", "d", "g"):
        steps = [e["step"] for e in results["history"] if loss in e]
        assert [s for s, _ in scalars["mean"][f"loss/{loss}"]] == steps
        assert [s for s, _ in scalars[tensorboard.run_name(3)][f"loss/{loss}"]] == steps
    run3_d = [v for _, v in scalars[tensorboard.run_name(3)]["loss/d"]]
    assert run3_d == pytest.approx([e["per_run"]["d"][3] for e in results["history"] if "d" in e])


def test_remote_checkpoints_across_several_processes_are_refused(monkeypatch):
    """Each process stages s3/gs checkpoints in its own folder, so a multi-process job must
    stop with a clear message before it trains, not write a checkpoint no process can read."""
    import jax

    from gan_jax.training import checkpoint

    monkeypatch.setattr(jax, "process_count", lambda: 2)
    with pytest.raises(checkpoint.CheckpointError, match="every process sees"):
        checkpoint.TrainCheckpoints("s3://bucket/ckpt")


def test_help_says_whole_sentences(capsys):
    """Bug caught: `gan-jax --help` printed the docstring's first line, cut mid-sentence ("Each
    subcommand lives beside the code it drives and")."""
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert " ".join(cli.DESCRIPTION.split()) in out and cli.DESCRIPTION.endswith(".")
    assert all(name in out for name in cli.COMMANDS)


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_argument_a_command_reads_is_declared(name):
    """`run(args)` reads only what `add_arguments` declared: `gan-jax reproduce` once read
    args.skip_augmentation_study, never declared, and crashed after 14 minutes of training."""
    import argparse
    import ast
    import importlib

    module = importlib.import_module(cli.COMMANDS[name][0])
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    declared = {action.dest for action in parser._actions} | {"command", "_module"}
    with open(module.__file__) as f:
        tree = ast.parse(f.read())
    read = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "args"
    }
    assert read, f"{name}: no args.<name> read found; the check would pass vacuously"
    assert read <= declared, f"gan-jax {name} reads undeclared arguments: {sorted(read - declared)}"
