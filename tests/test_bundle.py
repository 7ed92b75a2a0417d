"""Model bundles: export -> load round trip, metadata, remote staging, and refusal of corrupt,
truncated and mismatched bundles with a BundleError (never a raw Orbax error)."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from gan_jax.artifacts import bundle, make_bundle
from gan_jax.artifacts.manifest import file_digest
from gan_jax.config import Config, ScheduleConfig
from gan_jax.data import load_dataset
from gan_jax.data.wdbc import FEATURE_NAMES, LABEL_NAMES
from gan_jax.training import engine, table

TINY = Config(schedule=ScheduleConfig(ae_steps=5, gan_steps=5, log_every=5))


@pytest.fixture(scope="module")
def trained():
    return make_bundle.train_bundle(TINY, mesh=engine.runs_mesh(jax.devices()[:1]))


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "b"
    bundle.export(trained, path)
    return path


@pytest.fixture
def copy(exported, tmp_path):
    """A fresh copy of the exported bundle to damage."""
    dst = tmp_path / "b"
    shutil.copytree(exported, dst)
    return dst


def test_round_trip_gives_identical_predictions(trained, exported):
    loaded = bundle.load(exported)
    x = load_dataset().x
    np.testing.assert_array_equal(loaded.predict_proba(x), trained.predict_proba(x))
    # ... and the same as the trainer's own prediction path for that run's state.
    model = jax.tree.map(lambda a: np.asarray(a)[None], trained.model())
    np.testing.assert_allclose(
        loaded.predict_proba(x), table.predict_runs(TINY, model, x)[0], rtol=1e-6, atol=1e-7
    )
    assert loaded.checksum == trained.checksum and loaded.model_version == trained.model_version


def test_bundle_holds_everything_needed_to_serve(exported):
    b = bundle.load(exported)
    assert b.config == TINY
    assert b.feature_names == FEATURE_NAMES and b.label_names == LABEL_NAMES
    assert {"jax", "flax", "orbax-checkpoint"} <= set(b.meta["versions"])
    assert b.meta["training"]["n_train_rows"] == 569 and b.meta["training"]["fold"] is None
    assert 0.0 <= b.meta["metrics"]["train"]["accuracy"] <= 1.0
    assert b.model_version.startswith("paper-") and len(b.model_version) == len("paper-") + 12
    scaler = b.params["scaler"]
    x = load_dataset().x
    np.testing.assert_allclose(scaler["shift"], x.min(0))  # min-max fitted on every row
    manifest = json.loads((exported / bundle.MANIFEST).read_text())
    assert manifest["checksum"] == b.checksum and manifest["format"] == bundle.FORMAT


def test_a_fold_bundle_reports_held_out_metrics(tmp_path):
    b = make_bundle.train_bundle(
        TINY, fold=3, model_version="v-test", mesh=engine.runs_mesh(jax.devices()[:1])
    )
    assert b.model_version == "v-test"
    assert b.meta["training"]["n_train_rows"] < 569
    assert b.meta["metrics"]["held_out"]["n_rows"] == 569 - b.meta["training"]["n_train_rows"]
    with pytest.raises(ValueError, match="fold must be in"):
        make_bundle.train_bundle(TINY, fold=TINY.n_runs)


def test_remote_uri_is_staged_and_copied(trained):
    uri = "memory://bundles/tiny"
    bundle.export(trained, uri)
    loaded = bundle.load(uri)
    assert loaded.checksum == trained.checksum
    with pytest.raises(bundle.BundleError, match="already holds a bundle"):
        bundle.export(trained, uri)
    bundle.export(trained, uri, overwrite=True)


def _largest_file(path):
    files = [os.path.join(d, f) for d, _, names in os.walk(path) for f in names]
    return max(files, key=os.path.getsize)


def _rewrite_manifest(path):
    """Re-hash the files, as an attacker or a careless edit would, so only deeper checks remain."""
    manifest = json.loads((path / bundle.MANIFEST).read_text())
    manifest["files"] = {rel: file_digest(path / rel) for rel in manifest["files"]}
    (path / bundle.MANIFEST).write_text(json.dumps(manifest))


def _flip_byte(f):
    with open(f, "r+b") as fh:
        fh.seek(os.path.getsize(f) // 2)
        byte = fh.read(1)[0]
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte ^ 0xFF]))


def _truncate(f):
    with open(f, "r+b") as fh:
        fh.truncate(100)


def _edit_meta(path, change):
    meta_file = path / "model" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    change(meta)
    meta_file.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: _flip_byte(_largest_file(p)), "is corrupt"),
        (lambda p: _truncate(_largest_file(p)), "truncated"),
        (lambda p: os.remove(_largest_file(p)), "is missing"),
        (lambda p: os.remove(p / bundle.MANIFEST), "not a gan_jax bundle"),
        (lambda p: (p / bundle.MANIFEST).write_text("{not json"), "not valid JSON"),
        (
            lambda p: (p / bundle.MANIFEST).write_text('{"format": "other/9"}'),
            "format 'other/9' is not supported",
        ),
        (
            lambda p: (_edit_meta(p, lambda m: m.update(model_version="forged")), _rewrite_manifest(p)),
            "checksum mismatch",
        ),
        (
            lambda p: (
                _edit_meta(p, lambda m: m["config"]["model"].update(latent_dim=8)),
                _rewrite_manifest(p),
            ),
            "do not match the bundle's config|has shape",
        ),
        (
            lambda p: (_edit_meta(p, lambda m: m.pop("feature_names")), _rewrite_manifest(p)),
            r"lacks the fields \['feature_names'\]",
        ),
        (
            lambda p: (_edit_meta(p, lambda m: m["config"].update(bogus=1)), _rewrite_manifest(p)),
            "config is not valid",
        ),
    ],
    ids=[
        "flipped-byte",
        "truncated",
        "missing-file",
        "no-manifest",
        "bad-manifest",
        "other-format",
        "meta-altered",
        "config-mismatch",
        "schema",
        "unknown-config-field",
    ],
)
def test_damaged_bundles_are_refused_with_a_clear_error(copy, damage, message):
    damage(copy)
    with pytest.raises(bundle.BundleError, match=message) as info:
        bundle.load(copy)
    assert str(copy) in str(info.value)
    e = info.value  # no Orbax traceback chained to it
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__)


def _every_file(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, names in os.walk(path) for f in names)


def check_every_altered_byte_is_named(exported, tmp_path):
    """Whatever file a byte is flipped in (params, metadata, Orbax's own), the manifest's SHA-256
    names it: one copy per file, so nothing depends on which file is largest or where a byte
    lands. (A flipped byte of a float is usually another valid float, so a check that waited
    for Orbax or the values to fail would pass or not by chance.)"""
    files = [f for f in _every_file(exported) if f != bundle.MANIFEST]
    assert len(files) > 3
    for i, rel in enumerate(files):
        copy = tmp_path / f"c{i}"
        shutil.copytree(exported, copy)
        _flip_byte(copy / rel)
        with pytest.raises(bundle.BundleError, match=rf"file {rel} is corrupt \(its SHA-256"):
            bundle.load(copy)


def forge_params(path, b, tmp_path):
    """Re-saves the bundle with one parameter value changed, its metadata kept and its manifest
    rewritten to match, as a deliberate forgery would: only the checksum over the arrays is left."""
    import orbax.checkpoint as ocp

    from gan_jax.artifacts import manifest

    meta = json.loads((path / "model" / "meta" / "metadata").read_text())
    leaves, tree = jax.tree.flatten(jax.tree.map(np.array, b.params))
    leaves[0].reshape(-1)[0] += 1.0  # one value, as any single changed weight
    shutil.rmtree(path / "model")
    args = ocp.args.Composite(
        params=ocp.args.StandardSave(jax.tree.unflatten(tree, leaves)), meta=ocp.args.JsonSave(meta)
    )
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as ckptr:
        ckptr.save(os.path.abspath(path / "model"), args=args)
    listing = json.loads((path / bundle.MANIFEST).read_text())
    listing["files"] = manifest.digests(path, exclude=(bundle.MANIFEST,))
    (path / bundle.MANIFEST).write_text(json.dumps(listing))


def test_every_altered_byte_is_named_by_the_manifest(exported, tmp_path):
    check_every_altered_byte_is_named(exported, tmp_path)


def test_an_altered_parameter_with_a_rewritten_manifest_fails_the_checksum(trained, copy, tmp_path):
    forge_params(copy, trained, tmp_path)
    with pytest.raises(
        bundle.BundleError, match="checksum mismatch: the parameters or metadata were altered"
    ):
        bundle.load(copy)


@pytest.mark.parametrize(
    "version, message",
    [
        (1, "was written by an older gan_jax and is no longer read .* export the model again"),
        (3, "is newer than this gan_jax reads .* upgrade gan_jax"),
    ],
)
def test_other_format_versions_are_refused_with_what_to_do(copy, version, message):
    assert bundle.load(copy).format_version == bundle.FORMAT_VERSION == 2
    listing = json.loads((copy / bundle.MANIFEST).read_text())
    listing["format"] = f"gan_jax.bundle/{version}"
    (copy / bundle.MANIFEST).write_text(json.dumps(listing))
    with pytest.raises(bundle.BundleError, match=f"bundle format 'gan_jax.bundle/{version}' {message}"):
        bundle.load(copy)


def test_missing_bundle(tmp_path):
    with pytest.raises(bundle.BundleError, match="not a gan_jax bundle"):
        bundle.load(tmp_path / "nothing")
    with pytest.raises(bundle.BundleError, match="no bundle there"):
        bundle.load("memory://no/such/bundle")


def test_the_format_name_is_the_one_bundles_have_always_carried():
    """Bug caught: moving bundle.py into gan_jax/artifacts/ renamed the format string to the new
    module path, so every bundle exported before the move ("gan_jax.bundle/2") was refused."""
    assert bundle.FORMAT == "gan_jax.bundle/2"
    assert bundle.format_version("gan_jax.bundle/2") == 2
