"""Test-session set-up: 8 simulated CPU devices (to test sharding) and the persistent
compilation cache (to keep the suite fast). Both must happen before JAX starts."""

import os

import pytest

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

    from gan_jax import bundle, train
    from gan_jax.config import Config

    b = bundle.train_bundle(
        Config(ae_steps=5, gan_steps=5, log_every=5), mesh=train.runs_mesh(jax.devices()[:1])
    )
    path = tmp_path_factory.mktemp("tiny") / "bundle"
    bundle.export(b, path)
    return path, b


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

    from gan_jax import storage

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
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
