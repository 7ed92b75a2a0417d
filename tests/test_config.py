"""The one config type: its sections, its compile key, its stored layouts (2, and the three
forms of layout 1 that results, checkpoints and bundles hold) and its quick variant."""

import json
import os

import pytest

from gan_jax.config import (
    CONFIG_VERSION,
    IMAGES,
    Config,
    ConvConfig,
    MLPConfig,
    differences,
    load_experiment,
    load_module,
    quick_variant,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = ["paper", "ablations:no_gan", "synth", "images", "breastmnist:cpu", "pcam", "image_folder:cpu"]


def stored(name: str) -> dict:
    """The layout-1 configs that results/<name> held before it was remade (tests/fixtures/config_v1)."""
    with open(os.path.join(ROOT, "tests", "fixtures", "config_v1", name)) as f:
        return json.load(f)


@pytest.mark.parametrize("spec", EXPERIMENTS)
@pytest.mark.parametrize("quick", [False, True])
def test_every_experiment_round_trips_through_json_as_layout_2(spec, quick):
    """Bug caught: a setting lost or changed by to_dict/from_dict (a tuple left a list, the
    model kind forgotten: a conv experiment read back as a table one)."""
    config = load_experiment(spec, quick=quick)
    d = json.loads(json.dumps(config.to_dict()))
    assert d["config_version"] == CONFIG_VERSION == 2 and d["model"]["kind"] == config.model.KIND
    assert Config.from_dict(d) == config


def test_layout_1_table_configs_of_results_study_json_load_to_the_same_settings():
    """Bug caught: an old flat name mapped to the wrong section (e.g. scaler, seed, data), so a
    stored v1 result would be read as another experiment than the one that made it."""
    models = stored("study.json")["models"]
    variants = load_module("ablations").get_variants()
    assert variants  # the paper pipeline and its ablations, as the study ran them
    for name, config in variants.items():
        assert Config.from_dict(models[name]["config"]) == config, name


def test_layout_1_image_study_and_image_model_dicts_load():
    """Bug caught: the image study's v1 fields (n_images, pool, scaler, the model's schedule
    settings) or an image bundle's v1 model dict (`ImageConfig`) read into the wrong sections."""
    record = stored("image_study.json")["config"]
    study = Config.from_dict(record)
    assert study == load_experiment("images")
    model = Config.from_dict(record["model"])  # as an image bundle stored its config
    assert isinstance(model.model, ConvConfig) and model.model == study.model
    assert model.schedule.batch_size == study.schedule.batch_size == 32 and model.schedule.d_lr == 2e-3


@pytest.mark.parametrize(
    "d, message",
    [
        ({"config_version": 3}, "config layout version 3 is not readable"),
        ({"laten_dim": 4}, r"unknown config fields \['laten_dim'\] \(config layout 1\)"),
        ({"config_version": 2, "schedule": {"gan_step": 4}}, "unknown config field 'schedule.gan_step'"),
        ({"config_version": 2, "model": {"kind": "rnn"}}, "config model kind 'rnn'"),
        ({"config_version": 2, "optimizer": {}}, "unknown config field 'optimizer"),
    ],
)
def test_unreadable_layouts_are_refused_with_what_was_expected(d, message):
    with pytest.raises(ValueError, match=message):
        Config.from_dict(d)


def test_structure_resets_per_run_and_bookkeeping_settings_in_every_section():
    """Bug caught: a per-run setting (learning rate, seed, labelled fraction) or a bookkeeping
    one (name, data URI, folds, steps) in the compile key — a new compile per run — or a
    program-shaping one (widths, batch size, scaler) left out of it — a wrong program reused."""
    base = Config()
    same = {
        "name": "x",
        "data.uri": "s3://b/k.csv",
        "schedule.d_lr": 5e-4,
        "schedule.gan_steps": 7,
        "cv.seed": 3,
        "cv.labeled_fraction": 0.1,
        "cv.n_folds": 5,
        "synth.g_lr": 1e-3,
    }
    for path, value in same.items():
        assert base.replace(**{path: value}).structure() == base.structure(), path
    other = {"model.latent_dim": 4, "schedule.batch_size": 32, "data.scaler": "zscore", "synth.noise_dim": 8}
    for path, value in other.items():
        assert base.replace(**{path: value}).structure() != base.structure(), path
    assert IMAGES.replace(**{"schedule.ae_lr": 0.1}).structure() == IMAGES.structure()


def test_replace_by_dotted_path_checks_the_whole_change_at_once():
    """Bug caught: replace applying a dotted path to the wrong section, or checking a half-made
    config (a pool that only fits the new image size refused)."""
    c = IMAGES.replace(**{"model.image_shape": (27, 27, 3), "data.pool": 3})
    assert c.model.image_shape == (27, 27, 3) and c.data.pool == 3
    with pytest.raises(ValueError, match="side divisible by data.pool=3"):
        IMAGES.replace(**{"data.pool": 3})
    with pytest.raises(ValueError, match="unknown config field 'schedule.nope'"):
        Config().replace(**{"schedule.nope": 1})


def test_one_quick_variant_shrinks_table_and_image_configs():
    table, images = quick_variant(Config()), quick_variant(load_experiment("images"))
    assert (table.cv.n_folds, table.cv.n_repeats, table.schedule.gan_steps) == (2, 2, 30)
    assert (images.cv.n_folds, images.cv.n_repeats, images.schedule.gan_steps) == (2, 1, 10)
    assert images.data.n_images == 256 and isinstance(images.model, ConvConfig)
    assert load_experiment("images", quick=True) == images
    assert isinstance(table.model, MLPConfig)


def test_differences_name_dotted_paths_across_layouts():
    """Bug caught: a checkpoint's stored v1 config reported as different from the same config
    now (layout, not settings), so an old training could never be resumed."""
    paper = load_experiment("paper")
    v1 = stored("study.json")["models"]["paper (AE → SGAN)"]["config"]
    assert differences(v1, paper.to_dict()) == []
    changed = paper.replace(**{"schedule.d_lr": 5e-4}).to_dict()
    assert differences(paper.to_dict(), changed) == ["schedule.d_lr: 0.001 -> 0.0005"]


def test_an_experiment_of_another_config_type_is_refused_by_name():
    from gan_jax.studies import tuned_study

    with pytest.raises(ValueError, match="returned Config, not a TunedStudyConfig"):
        tuned_study.load_study("paper")
    with pytest.raises(ValueError, match="returned TunedStudyConfig, not a Config"):
        load_experiment("tuned")
