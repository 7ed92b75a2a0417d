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
