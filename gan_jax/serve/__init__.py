"""The HTTP prediction server (FastAPI + uvicorn): native JSON, KServe v2, SageMaker and Vertex AI."""

from gan_jax.serve.app import ServeSettings, create_app
from gan_jax.serve.model import BundleModel, EchoModel, MicroBatcher

__all__ = ["BundleModel", "EchoModel", "MicroBatcher", "ServeSettings", "create_app"]
