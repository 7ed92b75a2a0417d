"""Image bundles: the table bundle's format and checks for a `gan_jax.training.image` model — round trip,
tamper detection, shape-checked restore — plus `gan-jax sample`, and old table bundles (no
`kind` in their metadata) still loading as tables."""

import json
import shutil

import jax
import numpy as np
import pytest
from PIL import Image
from test_bundle import (
    _edit_meta,
    _flip_byte,
    _largest_file,
    _rewrite_manifest,
    check_every_altered_byte_is_named,
    forge_params,
)

from gan_jax import cli
from gan_jax.artifacts import bundle, make_bundle
from gan_jax.config import Config, ConvConfig, legacy
from gan_jax.data import nuclei
from gan_jax.studies import figures
from gan_jax.training import image


@pytest.fixture
def copy(tiny_image_bundle_export, tmp_path):
    dst = tmp_path / "b"
    shutil.copytree(tiny_image_bundle_export[0], dst)
    return dst


def test_round_trip_gives_the_trainers_predictions(tiny_image_bundle_export):
    # Catches params stored or restored under the wrong network, or a serving path that
    # differs from image.predict_proba (e.g. the benign column served as malignant).
    path, trained, state, config = tiny_image_bundle_export
    loaded = bundle.load(path)
    assert loaded.kind == "image" and loaded.config == config and loaded.image_shape == (8, 8, 3)
    assert loaded.checksum == trained.checksum and loaded.model_version == trained.model_version
    assert loaded.label_names == ("benign", "malignant") and loaded.feature_names == ()
    images, _ = nuclei.generate(12, seed=5, size=8)
    want = np.asarray(image.predict_proba(config, state, images))
    np.testing.assert_allclose(loaded.predict_proba(images), want, rtol=0, atol=1e-6)
    assert np.ptp(want) > 0  # the model tells images apart, so a constant answer would fail
    for a, b in zip(jax.tree.leaves(loaded.params["gen"]), jax.tree.leaves(state.gen.params)):
        np.testing.assert_array_equal(a, b)
    assert loaded.meta["training"]["gan_steps"] == 3 and "git_commit" in loaded.meta["training"]


def test_image_predict_refuses_other_inputs(tiny_image_bundle_export):
    b = tiny_image_bundle_export[1]
    with pytest.raises(ValueError, match=r"expected uint8 images \[N, 8, 8, 3\], got float32"):
        b.predict_proba(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(bundle.BundleError, match="is an image bundle; Bundle.model needs a table bundle"):
        b.model()


def test_predict_with_an_image_bundle_needs_pictures(tiny_image_bundle_export, tmp_path, capsys):
    # An image bundle scores a folder of pictures (tests/test_image_study_data.py); a CSV of
    # cases holds none, and the message says what was expected.
    (tmp_path / "cases.csv").write_text("radius_mean\n1\n")
    args = [
        "predict",
        str(tiny_image_bundle_export[0]),
        str(tmp_path / "cases.csv"),
        "-o",
        str(tmp_path / "o.csv"),
    ]
    assert cli.main(args) == 2
    assert "cases.csv: no .png/.jpg/.jpeg files; expected pictures to score" in capsys.readouterr().err


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: _flip_byte(_largest_file(p)), "is corrupt"),
        (
            lambda p: (_edit_meta(p, lambda m: m.update(model_version="forged")), _rewrite_manifest(p)),
            "checksum mismatch",
        ),
        (
            lambda p: (
                _edit_meta(p, lambda m: m["config"]["model"].update(image_shape=[16, 16, 3])),
                _rewrite_manifest(p),
            ),
            "do not match|has shape",
        ),
        (
            lambda p: (
                _edit_meta(p, lambda m: m["config"]["model"].update(features=[4, 9])),
                _rewrite_manifest(p),
            ),
            "do not match|has shape",
        ),
        (
            lambda p: (
                _edit_meta(p, lambda m: m["config"]["model"]["augment"].update(bogus=1)),
                _rewrite_manifest(p),
            ),
            r"config is not valid here \(unknown AugmentConfig fields \['bogus'\]",
        ),
        (
            lambda p: (_edit_meta(p, lambda m: m.update(kind="video")), _rewrite_manifest(p)),
            "bundle kind 'video' is not supported",
        ),
        (
            lambda p: (_edit_meta(p, lambda m: m.update(kind="table")), _rewrite_manifest(p)),
            r"lacks the fields \['feature_names'\]",
        ),
    ],
    ids=[
        "flipped-byte",
        "meta-altered",
        "image-shape",
        "widths",
        "augment-field",
        "unknown-kind",
        "kind-swapped",
    ],
)
def test_damaged_image_bundles_are_refused_with_a_clear_error(copy, damage, message):
    damage(copy)
    with pytest.raises(bundle.BundleError, match=message) as info:
        bundle.load(copy)
    assert str(copy) in str(info.value)


def test_every_altered_byte_of_an_image_bundle_is_named(tiny_image_bundle_export, tmp_path):
    """Replaces the flaky `params-altered` case (a byte flipped in the largest data file, the
    manifest rewritten: caught only when the byte changed a value the checksum reads)."""
    check_every_altered_byte_is_named(tiny_image_bundle_export[0], tmp_path)


def test_an_altered_image_parameter_fails_the_checksum(tiny_image_bundle_export, copy, tmp_path):
    forge_params(copy, tiny_image_bundle_export[1], tmp_path)
    with pytest.raises(
        bundle.BundleError, match="checksum mismatch: the parameters or metadata were altered"
    ):
        bundle.load(copy)


def test_image_bundle_refuses_params_that_do_not_fit_the_config(tiny_image_bundle_export):
    # A fused trainer's state still carrying its runs axis must be sliced before bundling.
    _, _, state, config = tiny_image_bundle_export
    with_runs = jax.tree.map(lambda a: np.stack([a, a]), state)
    with pytest.raises(bundle.BundleError, match=r"parameter .* has shape \(2, .*expected"):
        make_bundle.image_bundle(config, with_runs, label_names=("b", "m"), metrics={}, training={})
    with pytest.raises(bundle.BundleError, match="label_names must name the two classes"):
        make_bundle.image_bundle(config, state, label_names=("only",), metrics={}, training={})


def test_a_table_bundle_written_before_kinds_still_loads(tiny_bundle_export, tmp_path):
    """format/2 table bundles have no `kind` in their metadata; they must load as tables."""
    path, b = tiny_bundle_export
    old = tmp_path / "old"
    shutil.copytree(path, old)

    def drop_kind(meta):
        meta.pop("kind")
        meta["checksum"] = bundle.checksum(b.params, meta)

    _edit_meta(old, drop_kind)
    manifest = json.loads((old / bundle.MANIFEST).read_text())
    manifest["checksum"] = json.loads((old / "model" / "meta" / "metadata").read_text())["checksum"]
    (old / bundle.MANIFEST).write_text(json.dumps(manifest))
    _rewrite_manifest(old)
    loaded = bundle.load(old)
    assert loaded.kind == "table" and "kind" not in loaded.meta
    x = np.zeros((2, 30), np.float32) + b.params["scaler"]["shift"]
    np.testing.assert_array_equal(loaded.predict_proba(x), b.predict_proba(x))


def layout_1(config: Config) -> dict:
    """`config` as bundles stored it before sections: the table's flat dict, or the conv model's
    own (`ImageConfig`: model settings, the schedule's learning rates and batch size, seed)."""
    d = config.to_dict()
    if isinstance(config.model, ConvConfig):
        model = {k: v for k, v in d["model"].items() if k != "kind"}
        return model | {k: d["schedule"][k] for k in legacy.IMAGE_SCHEDULE_FIELDS} | {"seed": config.cv.seed}
    flat = {
        f"{s}.{k}": v for s, section in d.items() if isinstance(section, dict) for k, v in section.items()
    }
    return {old: flat.get(path, d.get(path)) for old, path in legacy.FLAT_PATHS.items()}


@pytest.mark.parametrize("kind", ["table", "image"])
def test_a_bundle_with_a_config_from_before_sections_still_loads(
    kind, tiny_bundle_export, tiny_image_bundle_export, tmp_path
):
    """Bug caught: bundles written before sections (a layout-1 config in their metadata, still
    format gan_jax.bundle/2) refused, or read as another config than the one that trained them."""
    path, b = tiny_bundle_export if kind == "table" else tiny_image_bundle_export[:2]
    old = tmp_path / "old"
    shutil.copytree(path, old)

    def to_layout_1(meta):
        meta["config"] = layout_1(b.config)
        meta["checksum"] = bundle.checksum(b.params, meta)

    _edit_meta(old, to_layout_1)
    manifest = json.loads((old / bundle.MANIFEST).read_text())
    manifest["checksum"] = json.loads((old / "model" / "meta" / "metadata").read_text())["checksum"]
    (old / bundle.MANIFEST).write_text(json.dumps(manifest))
    _rewrite_manifest(old)
    stored = json.loads((old / "model" / "meta" / "metadata").read_text())["config"]
    assert "config_version" not in stored and "batch_size" in stored  # layout 1, flat
    loaded = bundle.load(old)
    assert loaded.kind == kind and loaded.config.model == b.config.model
    assert loaded.config.schedule.batch_size == b.config.schedule.batch_size
    assert loaded.config.cv.seed == b.config.cv.seed


def test_sample_writes_a_grid_of_generator_samples(tiny_image_bundle_export, tmp_path, capsys):
    path, b, state, config = tiny_image_bundle_export
    out = tmp_path / "grid.png"
    assert cli.main(["sample", str(path), "-o", str(out), "--n", "10", "--seed", "3"]) == 0
    assert "10 SYNTHETIC samples" in capsys.readouterr().out
    grid = np.asarray(Image.open(out))
    # 10 samples, ceil(sqrt(10)) = 4 columns -> 3 rows of 8x8 images with 2 px padding.
    assert grid.shape == (3 * 10 + 2, 4 * 10 + 2, 3)
    samples = b.sample_images(10, seed=3)
    np.testing.assert_array_equal(grid, figures.image_grid(samples, 4))
    # The generator's own output, mapped from [-1, 1] to 0..255 (catches an unmapped or
    # wrongly scaled sample, or the noise ignored).
    z = jax.random.normal(jax.random.key(3), (10, config.model.noise_dim))
    fake = np.asarray(image.build_models(config).gen.apply({"params": state.gen.params}, z))
    np.testing.assert_allclose(samples.astype(float), np.clip(np.round((fake + 1) * 127.5), 0, 255), atol=1)
    assert not np.array_equal(samples, b.sample_images(10, seed=4))


def test_sample_refuses_a_table_bundle(tiny_bundle_export, tmp_path, capsys):
    assert cli.main(["sample", str(tiny_bundle_export[0]), "-o", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert "is a table bundle; gan-jax sample draws images" in err and "gan-jax synth" in err
    assert not (tmp_path / "g.png").exists()
