"""Test-session set-up: 8 simulated CPU devices (to test sharding) and the persistent
compilation cache (to keep the suite fast). Both must happen before JAX starts."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("GAN_JAX_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".jax_cache"))

from gan_jax import runtime  # noqa: E402

runtime.enable_compilation_cache()
