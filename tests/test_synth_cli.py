"""`gan-jax synth`: the CSV, its sidecar, and the loaders' refusal to take it for patient data."""

import json

import numpy as np
import pytest

from gan_jax import cli
from gan_jax.artifacts import records, storage
from gan_jax.data import FEATURE_NAMES, DataError, load_csv, load_dataset, load_uci
from gan_jax.data.wdbc import SIDECAR_SUFFIX
from gan_jax.studies import synth

QUICK = [
    "--quick",
    "--set",
    "synth.steps=4",
    "--set",
    "synth.gen_hidden=(8,)",
    "--set",
    "synth.disc_hidden=(8,)",
]


@pytest.fixture(scope="module")
def s3_bucket():
    """A fresh bucket on a moto S3 server (own name: moto's backend is shared per process)."""
    from moto.server import ThreadedMotoServer
    from test_storage import _free_port

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {
            "AWS_ACCESS_KEY_ID": "k",
            "AWS_SECRET_ACCESS_KEY": "s",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }.items():
            mp.setenv(k, v)
        mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        fs, _ = storage.filesystem("s3://gan-jax-synth-test")
        fs.mkdir("gan-jax-synth-test", exist_ok=True)
        yield "s3://gan-jax-synth-test"
        s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("synth") / "synthetic.csv")
    assert cli.main(["synth", *QUICK, "--n-per-class", "7", "--out", out]) == 0
    return out


def test_csv_has_the_named_columns_both_classes_and_valid_values(written):
    header, *rows = storage.read_text(written).strip().split("\n")
    assert header.split(",") == [*FEATURE_NAMES, "diagnosis"]
    assert len(rows) == 14
    cells = [r.split(",") for r in rows]
    assert sorted(c[-1] for c in cells) == ["B"] * 7 + ["M"] * 7
    values = np.array([[float(v) for v in c[:-1]] for c in cells])
    assert np.isfinite(values).all() and (values >= 0).all()


def test_sidecar_marks_the_file_synthetic_and_records_what_made_it(written):
    meta = json.loads(storage.read_text(written + SIDECAR_SUFFIX))
    assert meta["synthetic"] is True
    assert "SYNTHETIC — not patient data" in meta["warning"]
    assert meta["generator"] == "acgan" and meta["config"]["synth"]["model"] == "acgan"
    assert meta["seed"] == 0 and meta["gan_jax_version"]
    train, holdout = set(meta["train_rows"]), set(meta["holdout_rows"])
    assert not train & holdout and len(train | holdout) == 569


@pytest.mark.parametrize("loader", [load_dataset, load_csv, load_uci])
def test_loaders_refuse_a_synthetic_file_as_training_data(written, loader):
    """Catches a synthetic file loaded as if it were patients (no opt-in)."""
    with pytest.raises(DataError, match="SYNTHETIC"):
        loader(written)


def test_cli_refuses_to_train_on_a_synthetic_file(written, capsys):
    """Catches `gan-jax train --data synthetic.csv` silently training on synthetic rows."""
    assert cli.main(["train", "--quick", "--data", written, "--no-progress"]) == 2
    assert "SYNTHETIC" in capsys.readouterr().err


def test_synthetic_file_round_trips_through_the_loader_with_opt_in(written):
    ds = load_dataset(written, allow_synthetic=True)
    assert ds.synthetic and ds.x.shape == (14, 30) and ds.y.tolist() == [0] * 7 + [1] * 7


def test_a_file_without_sidecar_is_real_and_an_unreadable_sidecar_is_refused(written, tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(storage.read_text(written))
    assert not load_dataset(str(plain)).synthetic
    (tmp_path / ("plain.csv" + SIDECAR_SUFFIX)).write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        load_dataset(str(plain))


def test_write_refuses_metadata_not_marked_synthetic(tmp_path):
    with pytest.raises(ValueError, match="synthetic: true"):
        synth.write(str(tmp_path / "x.csv"), np.zeros((2, 30)), np.array([0, 1]), {"synthetic": False})


def test_synthetic_csv_round_trips_through_s3(written, s3_bucket):
    """The CSV and its sidecar go to s3:// (a moto server) and the refusal holds there too."""
    uri = f"{s3_bucket}/synthetic/rows.csv"
    meta = synth.read_metadata(written)
    ds = load_dataset(written, allow_synthetic=True)
    synth.write(uri, ds.x, ds.y, meta)
    with pytest.raises(DataError, match="SYNTHETIC"):
        load_dataset(uri)
    back = load_dataset(uri, allow_synthetic=True)
    np.testing.assert_array_equal(back.x, ds.x)
    np.testing.assert_array_equal(back.y, ds.y)
    assert synth.read_metadata(uri)["synthetic"] is True


def test_synth_report_cli_scores_on_the_rows_the_sidecar_held_out(written, tmp_path):
    """Catches a report computed on the generator's own training rows: its hold-out must be
    exactly the sidecar's holdout_rows, disjoint from train_rows."""
    assert cli.main(["synth-report", "--synthetic", written, "--out", str(tmp_path), "--no-ours"]) == 0
    rep = json.loads((tmp_path / "synth_report.json").read_text())
    meta = synth.read_metadata(written)
    assert records.missing_record_keys(rep, allow_dirty=True) == []
    assert records.missing_record_keys(meta, allow_dirty=True) == []
    assert rep["n_holdout"] == len(meta["holdout_rows"]) and rep["n_train"] == len(meta["train_rows"])
    assert rep["n_synthetic"] == 14 and rep["generator"] == "acgan"
    for name in ("synth_report.md", "synth_report_histograms.png", "synth_report_correlations.png"):
        assert (tmp_path / name).stat().st_size > 0
