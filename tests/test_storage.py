"""Storage URIs against real protocol servers on loopback, started by the tests: moto's S3
server for s3:// and gcp-storage-emulator (the `gcs` fixture in conftest.py) for gs://. Each
scheme carries data, results, checkpoints with resume, and a bundle that is then served."""

import contextlib
import json
import socket
import subprocess
import sys
import time

import httpx
import jax
import numpy as np
import pytest
from fsspec.registry import _registry as fsspec_registry  # the writable registry

from gan_jax import cli
from gan_jax.artifacts import storage
from gan_jax.config import Config, CVConfig, ScheduleConfig
from gan_jax.data import FEATURE_NAMES, load_bundled
from gan_jax.training import checkpoint
from gan_jax.training.checkpoint import CheckpointWarning, TrainCheckpoints

SECRET = "gan-jax-test-secret-7f3c9a"  # must never appear in any output or artifact
TINY = Config(
    schedule=ScheduleConfig(ae_steps=10, gan_steps=20, log_every=10), cv=CVConfig(n_folds=2, n_repeats=1)
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A bucket on a moto S3 server on a free loopback port; yields (bucket URI, endpoint)."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "gan-jax-test-key")
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        _clear_s3_cache()
        fs, _ = storage.filesystem("s3://gan-jax-test")
        fs.mkdir("gan-jax-test")
        yield "s3://gan-jax-test", endpoint
        _clear_s3_cache()
    server.stop()


def _clear_s3_cache():
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


def _wdbc_csv() -> str:
    ds = load_bundled()
    lines = [",".join(["diagnosis", *FEATURE_NAMES])]
    lines += [",".join(["M" if y else "B", *map(repr, map(float, x))]) for x, y in zip(ds.x, ds.y)]
    return "\n".join(lines) + "\n"


def _all_bytes(fs, root) -> bytes:
    return b"".join(fs.cat_file(p) for p in fs.find(root))


def test_uri_handling():
    assert storage.is_remote("s3://b/k") and storage.is_remote("gs://b/k")
    assert not storage.is_remote("/tmp/x") and not storage.is_remote("file:///tmp/x")
    assert storage.join("gs://b/runs/", "/ckpt", "30/") == "gs://b/runs/ckpt/30"
    assert storage.redact("s3://AKIA:hunter2@bucket/k") == "s3://***@bucket/k"
    with pytest.raises(ValueError, match=r"s3://\*\*\*@bucket/k: credentials inside a URI") as e:
        storage.read_text("s3://AKIA:hunter2@bucket/k")
    assert "hunter2" not in str(e.value)


def test_missing_cloud_package_says_what_to_install(monkeypatch):
    """A gs:// URI without gcsfs must name the package and the extra, not end in fsspec's
    generic error. gcsfs is a dev dependency, so its absence is simulated: a None entry in
    sys.modules makes `import gcsfs` fail as if it were not installed."""
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    monkeypatch.delitem(fsspec_registry, "gs", raising=False)  # gcsfs registers itself when imported
    with pytest.raises(ImportError, match=r"gs://b/x: gs:// needs gcsfs.*gan_jax\[cloud\]"):
        storage.read_text("gs://b/x")


def test_s3_files_and_folders(s3, tmp_path):
    bucket, _ = s3
    storage.write_text(f"{bucket}/a/b.txt", "héllo")
    assert storage.read_text(f"{bucket}/a/b.txt") == "héllo" and storage.exists(f"{bucket}/a/b.txt")
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "x.bin").write_bytes(b"\0\1")
    (tmp_path / "src" / "sub" / "y.txt").write_text("y")
    assert storage.upload_dir(tmp_path / "src", f"{bucket}/dir") == ["sub/y.txt", "x.bin"]
    assert storage.listdir(f"{bucket}/dir") == ["sub", "x.bin"]
    storage.download_dir(f"{bucket}/dir", tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "y.txt").read_text() == "y"
    storage.remove(f"{bucket}/dir")
    assert storage.listdir(f"{bucket}/dir") == []
    with pytest.raises(FileNotFoundError):
        storage.read_text(f"{bucket}/no/such.txt")


def test_train_on_s3_data_results_checkpoints_and_resume(s3, monkeypatch, capsys):
    bucket, endpoint = s3
    storage.write_text(f"{bucket}/data/wdbc.csv", _wdbc_csv())
    # The --s3-endpoint flag alone must reach the server.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    _clear_s3_cache()
    argv = [
        "train",
        "--quick",
        "--no-progress",
        "--data",
        f"{bucket}/data/wdbc.csv",
        "--out",
        f"{bucket}/runs/quick",
        "--checkpoint-dir",
        f"{bucket}/ckpt",
        "--s3-endpoint",
        endpoint,
    ]
    assert cli.main(argv) == 0
    results = json.loads(storage.read_text(f"{bucket}/runs/quick/results.json"))
    assert results["data"].endswith("s3://gan-jax-test/data/wdbc.csv")
    assert results["resumed_from_step"] == 0 and len(results["history"]) == 5
    ckpts = TrainCheckpoints(f"{bucket}/ckpt")
    assert ckpts.steps() == [50, 40, 30]  # keep=3
    assert storage.exists(f"{bucket}/ckpt/50/{checkpoint.MANIFEST}")
    # Resuming reads the newest checkpoint back from S3; nothing is left to train.
    assert cli.main([*argv, "--resume"]) == 0
    again = json.loads(storage.read_text(f"{bucket}/runs/quick/results.json"))
    assert again["resumed_from_step"] == 50
    assert again["runs"] == results["runs"] and again["history"] == results["history"]
    printed = capsys.readouterr()
    fs, root = storage.filesystem(bucket)
    assert SECRET not in printed.out + printed.err
    assert SECRET.encode() not in _all_bytes(fs, root)


def _state(seed):
    ds = load_bundled()
    template = checkpoint.state_template(TINY, ds.x.shape[1], 2)
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(a.dtype), template), template


def test_remote_partial_upload_and_corrupt_step_are_skipped(s3):
    bucket, _ = s3
    uri = f"{bucket}/ckpt-damaged"
    meta = {"config": TINY.to_dict(), "data_fingerprint": "x", "history": []}
    states = {step: _state(step)[0] for step in (10, 20, 30)}
    with TrainCheckpoints(uri) as ckpts:
        for step, s in states.items():
            ckpts.save(step, s, meta)
    storage.remove(f"{uri}/30/{checkpoint.MANIFEST}")  # as if the upload of 30 was cut short
    fs, root = storage.filesystem(f"{uri}/20/state")
    victim = max(fs.find(root), key=lambda p: fs.size(p))
    fs.pipe_file(victim, b"garbage")  # a damaged object in step 20
    with TrainCheckpoints(uri) as ckpts:
        assert ckpts.steps() == [20, 10]
        with pytest.warns(CheckpointWarning, match="step 20 .*truncated or altered"):
            state, restored = ckpts.restore_latest(_state(0)[1])
    assert restored["step"] == 10 and not storage.exists(f"{uri}/20")
    for u, v in zip(jax.tree.leaves(state), jax.tree.leaves(states[10])):
        assert np.array_equal(u, v)


def test_bundle_exported_to_s3_is_loaded_and_served_from_s3(s3):
    from fastapi.testclient import TestClient

    from gan_jax.artifacts import bundle, make_bundle
    from gan_jax.serve import app as serve_app
    from gan_jax.serve import predictor
    from gan_jax.serve.dataplane import DataPlane

    bucket, _ = s3
    trained = make_bundle.train_bundle(TINY)
    uri = bundle.export(trained, f"{bucket}/models/tiny")
    assert storage.exists(f"{uri}/{bundle.MANIFEST}")
    loaded = bundle.load(uri)
    x = load_bundled().x[:5]
    assert loaded.checksum == trained.checksum and loaded.model_version == trained.model_version
    np.testing.assert_array_equal(loaded.predict_proba(x), trained.predict_proba(x))
    served = predictor.load(uri, max_batch=8, name="gan-jax")  # what the server does at start-up
    with TestClient(serve_app.create_app(DataPlane(served))) as client:
        case = dict(zip(loaded.feature_names, map(float, x[0])))
        reply = client.post("/predict", json={"features": case})
    assert reply.status_code == 200, reply.text
    assert reply.json()["model_version"] == trained.model_version
    assert reply.json()["malignant_probability"] == pytest.approx(
        float(trained.predict_proba(x[:1])[0]), abs=1e-6
    )


# -- gs:// on a GCS emulator --------------------------------------------------------------------


@pytest.mark.parametrize("tail", [b"\r", b"\r\n", b"\n", b"\0"])
def test_gcs_binary_files_round_trip_byte_for_byte(gcs, tail):
    """A file ending in b"\\r" came back a byte short through the emulator's multipart parsing
    (a bundle then failed its checksum); the tests' emulator must store every byte."""
    data = bytes(range(256)) + tail
    storage.write_bytes(f"{gcs}/bytes/{tail.hex()}", data)
    fs, root = storage.filesystem(f"{gcs}/bytes/{tail.hex()}")
    assert fs.cat_file(root) == data


def test_gcs_files_and_folders(gcs, tmp_path):
    """Every storage function on gs://: catches a gcsfs path convention (bucket-relative names,
    folder markers) that storage.py handles for s3fs only."""
    storage.write_text(f"{gcs}/files/a/b.txt", "héllo")
    assert storage.read_text(f"{gcs}/files/a/b.txt") == "héllo" and storage.exists(f"{gcs}/files/a/b.txt")
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "x.bin").write_bytes(b"\0\1")
    (tmp_path / "src" / "sub" / "y.txt").write_text("y")
    assert storage.upload_dir(tmp_path / "src", f"{gcs}/files/dir") == ["sub/y.txt", "x.bin"]
    assert storage.listdir(f"{gcs}/files/dir") == ["sub", "x.bin"]
    assert storage.download_dir(f"{gcs}/files/dir", tmp_path / "back") == ["sub/y.txt", "x.bin"]
    assert (tmp_path / "back" / "sub" / "y.txt").read_text() == "y"
    assert (tmp_path / "back" / "x.bin").read_bytes() == b"\0\1"
    storage.remove(f"{gcs}/files/dir")
    assert storage.listdir(f"{gcs}/files/dir") == [] and not storage.exists(f"{gcs}/files/dir/x.bin")
    with pytest.raises(FileNotFoundError):
        storage.read_text(f"{gcs}/files/no/such.txt")
    with pytest.raises(FileNotFoundError):
        storage.download_dir(f"{gcs}/files/none", tmp_path / "none")


def test_train_on_gcs_data_results_checkpoints_and_resume(gcs):
    """`gan-jax train` reading gs:// data, writing gs:// results and checkpoints, then resuming
    from them: catches checkpoints that never reach the bucket, or a resume that retrains."""
    storage.write_text(f"{gcs}/data/wdbc.csv", _wdbc_csv())
    argv = [
        "train",
        "--quick",
        "--no-progress",
        "--data",
        f"{gcs}/data/wdbc.csv",
        "--out",
        f"{gcs}/runs/quick",
        "--checkpoint-dir",
        f"{gcs}/ckpt",
    ]
    assert cli.main(argv) == 0
    results = json.loads(storage.read_text(f"{gcs}/runs/quick/results.json"))
    assert results["data"].endswith("gs://gan-jax-test/data/wdbc.csv")
    assert results["resumed_from_step"] == 0 and len(results["history"]) == 5
    assert TrainCheckpoints(f"{gcs}/ckpt").steps() == [50, 40, 30]  # keep=3
    assert storage.exists(f"{gcs}/ckpt/50/{checkpoint.MANIFEST}")
    storage.remove(f"{gcs}/runs/quick/results.json")
    assert cli.main([*argv, "--resume"]) == 0
    again = json.loads(storage.read_text(f"{gcs}/runs/quick/results.json"))
    assert again["resumed_from_step"] == 50
    assert again["runs"] == results["runs"] and again["history"] == results["history"]


def test_bundle_exported_to_gcs_is_served_from_gcs(gcs, tiny_bundle_export):
    """A bundle exported to gs:// and served by `gan-jax serve gs://...` in its own process (as
    a Vertex AI container gets $AIP_STORAGE_URI): catches a bundle that does not survive the
    object store, or a server that cannot read one from it."""
    from gan_jax.artifacts import bundle

    _, trained = tiny_bundle_export
    uri = bundle.export(trained, f"{gcs}/models/tiny")
    assert storage.exists(f"{uri}/{bundle.MANIFEST}")
    loaded = bundle.load(uri)
    assert loaded.checksum == trained.checksum
    x = load_bundled().x[:3]
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gan_jax.cli", "serve", uri, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_ready(proc, f"{url}/v2/health/ready")
        reply = httpx.post(f"{url}/predict", json={"instances": x.tolist()})
    finally:
        proc.terminate()
        proc.wait(20)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model_version"] == trained.model_version
    got = [p["malignant_probability"] for p in body["predictions"]]
    np.testing.assert_allclose(got, trained.predict_proba(x), rtol=0, atol=1e-6)


def _wait_until_ready(proc: subprocess.Popen, url: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited:\n{proc.stdout.read().decode()}")
        assert time.time() < deadline, f"{url} not ready after {timeout} s"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url).status_code == 200:
                return
        time.sleep(0.2)
