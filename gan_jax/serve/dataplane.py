"""The data plane: everything the HTTP and gRPC front ends share (MLServer's `DataPlane` is the
model). One predictor (serve/predictor.py), one micro-batcher (HTTP and gRPC requests are batched
together), one readiness flag, one auth check, one set of limits and one metrics registry.
The front ends only turn their wire format into numpy (serve/v2.py, the predictor's codec) and
back; scoring, the threshold and the outputs are decided here, once.
"""

from __future__ import annotations

import dataclasses
import gc
import os

import numpy as np

from gan_jax.serve import v2
from gan_jax.serve.errors import ApiError
from gan_jax.serve.middleware import Auth, Metrics, log
from gan_jax.serve.model import MicroBatcher, malignant
from gan_jax.serve.uploads import ImageLimits


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    token: str | None = None  # bearer token; None: no auth (a warning is logged)
    max_batch: int = 1024  # cases per request (and per model call)
    max_body_bytes: int = 4 * 1024 * 1024  # HTTP bodies and gRPC messages
    threshold: float = 0.5  # malignant if probability >= threshold (as in evaluate.py)
    vertex_health_route: str | None = None  # from AIP_HEALTH_ROUTE
    vertex_predict_route: str | None = None  # from AIP_PREDICT_ROUTE
    grpc_port: int | None = None  # the Open Inference Protocol over gRPC on this port too (None: off)
    grpc_host: str = "0.0.0.0"
    image_limits: ImageLimits = ImageLimits()  # image bundles: largest side and pixel count accepted

    @classmethod
    def from_env(cls, **overrides) -> ServeSettings:
        env = {
            "vertex_health_route": os.environ.get("AIP_HEALTH_ROUTE"),
            "vertex_predict_route": os.environ.get("AIP_PREDICT_ROUTE"),
        }
        if isinstance(overrides.get("image_limits"), dict):  # as `gan-jax serve` hands it over (JSON)
            overrides["image_limits"] = ImageLimits(**overrides["image_limits"])
        return cls(**{**env, **overrides})


class DataPlane:
    """One predictor served over any number of front ends."""

    def __init__(self, predictor, settings: ServeSettings = ServeSettings()):
        self.predictor, self.settings = predictor, settings
        self.metrics = Metrics()
        self.batcher = MicroBatcher(
            predictor.model, settings.max_batch, on_call=self.metrics.batch_rows.observe
        )
        self.auth = Auth(settings.token)
        self.ready = False

    def start(self) -> None:
        """Compiles and warms up every batch size (once), so the first request is as fast as the
        rest; then the plane is ready."""
        if self.ready:
            return
        p = self.predictor
        seconds = p.model.warmup()
        # Start-up objects (JAX, the bundle) never die: freezing them keeps the garbage
        # collector's full passes, and the latency spikes they cause, short.
        gc.collect()
        gc.freeze()
        self.ready = True
        log.info(
            "model %s (%s) ready: compiled batch sizes %s in %.1f s; auth %s",
            p.name,
            p.version,
            list(p.model.buckets),
            seconds,
            "on" if self.settings.token else "off",
        )
        if not self.settings.token:
            log.warning(
                "no API token set: every route is open (fine only behind a platform that "
                "authenticates, such as SageMaker or Vertex AI)"
            )

    def check_model(self, name: str) -> None:
        if name != self.predictor.name:
            raise ApiError(
                404, f"model {name!r} not found; this server serves {self.predictor.name!r}", "name"
            )

    def server_metadata(self) -> dict:
        return {"name": "gan_jax", "version": self.predictor.version, "extensions": ["binary_tensor_data"]}

    async def score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(malignant probability [N], malignant [N] bool) for the batch x."""
        proba = await self.batcher.predict(x)
        return proba, malignant(proba, self.settings.threshold)  # a NaN raises: never a label

    async def predictions(self, x: np.ndarray) -> list[dict]:
        """The native / SageMaker / Vertex answer for each case: label and probability."""
        proba, positive = await self.score(x)
        labels = self.predictor.label_names
        return [
            {"label": labels[m], "malignant_probability": p}
            for p, m in zip(proba.tolist(), positive.tolist())
        ]

    async def infer(self, request: v2.Request) -> list[tuple[str, str, np.ndarray, bool]]:
        """The Open Inference Protocol: (name, datatype, values, binary) of each output to send."""
        outputs = self.predictor.OUTPUTS
        chosen = v2.select(request, tuple(outputs))  # an unknown name is refused before scoring
        x = await self.predictor.from_tensors(request.inputs)
        proba, positive = await self.score(x)
        values = {"malignant_probability": proba.astype(np.float32), "label": positive.astype(np.int32)}
        return [(name, outputs[name], values[name], binary) for name, binary in chosen]

    def infer_head(self, request: v2.Request) -> dict:
        head = {"model_name": self.predictor.name, "model_version": self.predictor.version}
        if request.id:
            head["id"] = request.id
        return head
