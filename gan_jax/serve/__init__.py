"""The prediction server: one data plane (serve/dataplane.py) with a predictor per bundle kind
(serve/predictor.py), served over HTTP (serve/app.py: native JSON, KServe v2, SageMaker, Vertex AI)
and gRPC (serve/grpc_server.py), together by serve/server.py."""

from gan_jax.serve.app import create_app
from gan_jax.serve.dataplane import DataPlane, ServeSettings
from gan_jax.serve.model import BundleModel, EchoModel, MicroBatcher
from gan_jax.serve.predictor import EchoPredictor, from_bundle

__all__ = [
    "BundleModel",
    "DataPlane",
    "EchoModel",
    "EchoPredictor",
    "MicroBatcher",
    "ServeSettings",
    "create_app",
    "from_bundle",
]
