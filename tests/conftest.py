"""Test-session set-up: 8 simulated CPU devices (to test sharding) and the persistent
compilation cache (to keep the suite fast). Both must happen before JAX starts. Expensive
results several test files read (a trained bundle, the accelerator script's dry run) are
session fixtures, made once; the dry run, a subprocess, starts when collection ends."""

import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("GAN_JAX_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".jax_cache"))

from gan_jax import runtime  # noqa: E402

runtime.enable_compilation_cache()


@pytest.fixture(scope="session")
def tiny_bundle_export(tmp_path_factory):
    """(path, bundle): a tiny paper-pipeline model trained once per session and exported; read only."""
    import jax

    from gan_jax.artifacts import bundle, make_bundle
    from gan_jax.config import Config, ScheduleConfig
    from gan_jax.training import engine

    b = make_bundle.train_bundle(
        Config(schedule=ScheduleConfig(ae_steps=5, gan_steps=5, log_every=5)),
        mesh=engine.runs_mesh(jax.devices()[:1]),
    )
    path = tmp_path_factory.mktemp("tiny") / "bundle"
    bundle.export(b, path)
    return path, b


@pytest.fixture(scope="session")
def tiny_image_bundle_export(tmp_path_factory):
    """(path, bundle, state, config): an `image.TINY` model (8x8x3, no augmentation) trained
    for a few steps on 48 synthetic nuclei images, bundled and exported once per session; read only."""
    import jax

    from gan_jax.artifacts import bundle, make_bundle
    from gan_jax.data import nuclei
    from gan_jax.data.images import ArraySource
    from gan_jax.training import augment, image, image_fit

    config = image.TINY.replace(**{"model.augment": augment.NO_AUGMENT})
    images, labels = nuclei.generate(48, seed=0, size=config.size)
    state, _ = image_fit.fit(
        config,
        ArraySource(images, labels),
        ae_steps=2,
        gan_steps=3,
        mesh=image_fit.data_mesh(jax.devices()[:1]),
    )
    b = make_bundle.image_bundle(
        config,
        state,
        label_names=("benign", "malignant"),
        metrics={"steps": 5},
        training={"data": "nuclei (48 generated, seed 0)", "ae_steps": 2, "gan_steps": 3},
    )
    path = tmp_path_factory.mktemp("tiny_images") / "bundle"
    bundle.export(b, path)
    return path, b, jax.device_get(state), config


DRY_RUN_TIMEOUT_S = 900
_dry_run: dict = {}  # the accelerator script's dry run, once started: out, proc, log, deadline


def _reads_dry_run(item) -> bool:
    return "accelerator_dry_run" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session, config, items):
    """The tests that read the accelerator script's dry run go last (in their order), so the
    dry run, started when collection ends, runs beside the rest of the suite."""
    items[:] = [i for i in items if not _reads_dry_run(i)] + [i for i in items if _reads_dry_run(i)]


def pytest_collection_finish(session):
    """Starts the accelerator script's dry run as soon as the collected tests are known to need
    it, so it runs beside the tests before them (the test process mostly keeps one of 2 cores
    busy) instead of stalling the first test that reads it."""
    if session.config.option.collectonly:
        return
    if any(_reads_dry_run(item) for item in session.items):
        _start_dry_run()


def _start_dry_run() -> None:
    out = pathlib.Path(tempfile.mkdtemp(prefix="gan_jax_accelerator_"))
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": ROOT}
    log = open(out / "dry_run.log", "w")  # noqa: SIM115 - closed at the session's end
    proc = subprocess.Popen(
        ["bash", os.path.join(ROOT, "scripts", "accelerator_check.sh"), "--dry-run", "--out", str(out)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a kill reaches the step it is running
    )
    _dry_run.update(out=out, proc=proc, log=log, deadline=time.monotonic() + DRY_RUN_TIMEOUT_S)


def _stop_dry_run() -> None:
    """Kills the dry run's process group (the script and its current step), if still running."""
    proc = _dry_run["proc"]
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this session started, nothing else
        proc.wait()


def pytest_sessionfinish(session, exitstatus):
    if _dry_run:
        _stop_dry_run()
        _dry_run["log"].close()
        shutil.rmtree(_dry_run["out"], ignore_errors=True)


@pytest.fixture(scope="session")
def accelerator_dry_run():
    """(results folder, finished process with its output as stdout) of
    `scripts/accelerator_check.sh --dry-run`, run once per session from the end of collection
    (`pytest_collection_finish`): every step of the GPU script, tiny, on CPU. Its bench_images
    step is also the quick run tests/test_bench_images.py reads (same arguments), so that
    benchmark runs once."""
    if not _dry_run:
        _start_dry_run()
    proc = _dry_run["proc"]
    try:
        proc.wait(timeout=max(_dry_run["deadline"] - time.monotonic(), 1))
    finally:
        _stop_dry_run()
    out = _dry_run["out"]
    stdout = (out / "dry_run.log").read_text()
    return out / "dry-run-cpu", subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "")


# gcsfs >= 2026 probes each bucket's type over gRPC when GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT is on
# (its default); against an emulator the probe stalls on 60 s time-outs. gcsfs reads the variable
# when it is imported, so it is set here, before any test touches gs://; `gan-jax` subprocesses
# inherit it.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"


@pytest.fixture(scope="session")
def gcs():
    """A bucket on a real GCS protocol server (gcp-storage-emulator, in memory) on a free loopback
    port, reached by gcsfs through $STORAGE_EMULATOR_HOST (which subprocesses inherit); yields the
    bucket URI. Tests use their own prefixes inside it."""
    import socket

    import gcsfs
    from gcp_storage_emulator.server import create_server

    from gan_jax.artifacts import storage

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _exact_multipart_uploads()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="gan-jax-test")
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        gcsfs.GCSFileSystem.clear_instance_cache()  # an instance made earlier holds another endpoint
        fs, _ = storage.filesystem("gs://gan-jax-test")
        assert type(fs) is gcsfs.core.GCSFileSystem, (
            f"{type(fs)}: gcsfs was imported before GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false was set"
        )
        yield "gs://gan-jax-test"
        gcsfs.GCSFileSystem.clear_instance_cache()
    server.stop()


def _exact_multipart_uploads() -> None:
    """gcp-storage-emulator parses gcsfs's multipart uploads with the email package, which drops
    a trailing b"\\r" from the file (a bundle file ending in 0x0D came back a byte short, about
    1 run in 256 per file). Split the body at the boundary ourselves, byte for byte."""
    import json as _json

    from gcp_storage_emulator import server as emulator

    original = emulator._read_data
    if getattr(original, "exact", False):
        return

    def read_data(request_handler, query):
        content_type = request_handler.headers.get("Content-Type") or ""
        if not content_type.startswith("multipart/related"):
            return original(request_handler, query)
        raw = emulator._decode_raw_data(emulator._read_raw_data(request_handler), request_handler)
        boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
        meta_part, file_part = (_split_part(p) for p in raw.split(b"--" + boundary)[1:3])
        file_type = next(
            (
                line.split(":", 1)[1].strip()
                for line in file_part[0].splitlines()
                if line.lower().startswith("content-type:")
            ),
            "application/octet-stream",
        )
        return {"meta": _json.loads(meta_part[1]), "content": file_part[1], "content-type": file_type}

    read_data.exact = True
    emulator._read_data = read_data


def _split_part(part: bytes) -> tuple[str, bytes]:
    """(headers, body) of one multipart part; gcsfs ends lines with LF, others with CRLF, and the
    line end before the next boundary belongs to the boundary (RFC 2046), nothing more."""
    eol = b"\r\n" if part.startswith(b"\r\n") else b"\n"
    head, body = part[len(eol) :].split(eol + eol, 1)
    return head.decode(), body[: -len(eol)] if body.endswith(eol) else body
