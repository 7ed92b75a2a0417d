"""One predictor per bundle kind: the model, what it is called, and its input codec (every
contract's body -> the model's numpy batch). The data plane (serve/dataplane.py) and both front
ends (serve/app.py for HTTP, serve/grpc_server.py for gRPC) hand bodies and tensors to it and
never ask which kind it is; the kind is decided once, in `from_bundle`.

- `TablePredictor`: float32 feature rows [N, F]. JSON cases by name or in order, CSV, and v2
  tensors: one number tensor [N, F], or one tensor [N] per feature named by the feature.
- `ImagePredictor`: uint8 images [N, H, W, C]. PNG/JPEG uploads, Vertex base64, and v2 tensors:
  one UINT8 tensor [N, H, W, C], or one BYTES tensor [N] of PNG/JPEG images.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from gan_jax.artifacts import bundle
from gan_jax.data.wdbc import FEATURE_NAMES, LABEL_NAMES
from gan_jax.serve import openapi_parts, schemas, uploads
from gan_jax.serve.errors import ApiError, loads
from gan_jax.serve.middleware import log
from gan_jax.serve.model import BundleModel, EchoModel
from gan_jax.serve.uploads import ImageLimits

JSON = "application/json"


class Predictor:
    """What both kinds share: the model, its name and version, its two outputs."""

    # v2 outputs: name -> datatype, in the order they are sent when none are requested.
    OUTPUTS = {"malignant_probability": "FP32", "label": "INT32"}

    def __init__(self, model, *, name: str, label_names, max_batch: int, bundle=None):
        self.model, self.name, self.version = model, name, model.version
        self.label_names = tuple(label_names)
        self.max_batch = max_batch
        self.bundle = bundle  # None for the echo model

    def info(self) -> dict:
        """GET /model: the served bundle."""
        b = self.bundle
        return {
            "name": self.name,
            "kind": b.kind,
            "model_version": self.version,
            "checksum": b.checksum,
            "format_version": b.format_version,
            **self.input_info(),
            "label_names": list(self.label_names),
            "metrics": b.meta.get("metrics"),
            "training": b.meta.get("training"),
            "versions": b.meta.get("versions"),
            "config": b.config.to_dict(),
        }

    def v2_metadata(self) -> dict:
        """The v2 model metadata, the same over HTTP and gRPC."""
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "jax",
            "inputs": self.v2_inputs(),
            "outputs": [{"name": n, "datatype": d, "shape": [-1]} for n, d in self.OUTPUTS.items()],
            "parameters": {**self.input_info(), "label_names": list(self.label_names)},
        }


class TablePredictor(Predictor):
    """Feature rows; every value checked against the model's range (`CaseParser`)."""

    def __init__(self, model, *, feature_names, **kwargs):
        super().__init__(model, **kwargs)
        self.feature_names = tuple(feature_names)
        self.parser = schemas.CaseParser(self.feature_names, self.max_batch, model.bounds)

    def input_info(self) -> dict:
        return {"feature_names": list(self.feature_names)}

    def v2_inputs(self) -> list[dict]:
        return [{"name": "input-0", "datatype": "FP32", "shape": [-1, len(self.feature_names)]}]

    def document(self):
        return openapi_parts.TableDocument(self)

    async def native(self, body: bytes, content_type: str) -> tuple[np.ndarray, bool]:
        return schemas.native_cases(self.parser, loads(body))

    async def invocations(self, body: bytes, content_type: str) -> np.ndarray:
        if content_type == "text/csv":
            return schemas.csv_cases(self.parser, body)
        if content_type in (JSON, ""):
            return schemas.native_cases(self.parser, loads(body))[0]
        raise ApiError(415, f"content type {content_type!r} is not supported; use {JSON} or text/csv")

    async def vertex(self, body: bytes) -> np.ndarray:
        return schemas.vertex_cases(self.parser, loads(body))

    async def from_tensors(self, tensors: list) -> np.ndarray:
        return schemas.table_tensors(self.parser, tensors)


class ImagePredictor(Predictor):
    """uint8 images of the model's size; uploads decoded off the event loop's thread (Pillow
    releases the GIL while it decodes)."""

    def __init__(self, model, *, limits: ImageLimits, **kwargs):
        super().__init__(model, **kwargs)
        self.shape = tuple(model.input_shape)
        self.limits = limits

    def input_info(self) -> dict:
        return {"image_shape": list(self.shape)}

    def v2_inputs(self) -> list[dict]:
        return [{"name": "input-0", "datatype": "UINT8", "shape": [-1, *self.shape]}]

    def document(self):
        return openapi_parts.ImageDocument(self)

    def decode(self, data: bytes, field: str = "body") -> np.ndarray:
        return uploads.decode_image(data, self.shape, self.limits, field)

    async def native(self, body: bytes, content_type: str) -> tuple[np.ndarray, bool]:
        return await self.invocations(body, content_type), True

    async def invocations(self, body: bytes, content_type: str) -> np.ndarray:
        uploads.check_content_type(content_type)
        return (await asyncio.to_thread(self.decode, body))[None]

    async def vertex(self, body: bytes) -> np.ndarray:
        return await asyncio.to_thread(schemas.vertex_images, loads(body), self.decode, self.max_batch)

    async def from_tensors(self, tensors: list) -> np.ndarray:
        t = self._one_tensor(tensors)
        want = f"[N, {', '.join(map(str, self.shape))}]"
        if t.datatype == "UINT8":
            if len(t.shape) != 4 or t.shape[1:] != self.shape:
                raise ApiError(
                    422,
                    f"shape must be {want} (this model's image size), got {list(t.shape)}",
                    f"{t.field}.shape",
                )
            self._check_rows(t.shape[0], f"{t.field}.shape")
            return np.ascontiguousarray(t.data, np.uint8)
        if t.datatype == "BYTES":
            if len(t.shape) != 1:
                raise ApiError(
                    422,
                    f"shape must be [N] (one PNG or JPEG per image), got {list(t.shape)}",
                    f"{t.field}.shape",
                )
            self._check_rows(t.shape[0], f"{t.field}.shape")
            return await asyncio.to_thread(self._decode_all, t)
        raise ApiError(
            422,
            f"datatype must be UINT8 (pixels {want}) or BYTES (PNG or JPEG images), got {t.datatype!r}",
            f"{t.field}.datatype",
        )

    def _one_tensor(self, tensors: list) -> object:
        if len(tensors) != 1:
            raise ApiError(422, f"expected one image tensor, got {len(tensors)}", "inputs")
        return tensors[0]

    def _check_rows(self, n: int, field: str) -> None:
        if not 1 <= n <= self.max_batch:
            raise ApiError(422, f"{n} images: send between 1 and {self.max_batch} per request", field)

    def _decode_all(self, t) -> np.ndarray:
        return np.stack([self.decode(bytes(v), f"{t.field}.data[{i}]") for i, v in enumerate(t.data)])


# -- the factory: the one place that looks at a bundle's kind -----------------------------------

PREDICTORS = {"table": TablePredictor, "image": ImagePredictor}


def from_bundle(
    bundle, *, max_batch: int = 1024, name: str = "gan_jax", image_limits: ImageLimits | None = None
) -> Predictor:
    """The predictor of `bundle`'s kind, its model compiled for batches up to `max_batch`."""
    kind_args = {
        "table": {"feature_names": bundle.feature_names},
        "image": {"limits": image_limits or ImageLimits()},
    }
    return PREDICTORS[bundle.kind](
        BundleModel(bundle, max_batch),
        name=name,
        label_names=bundle.label_names,
        max_batch=max_batch,
        bundle=bundle,
        **kind_args[bundle.kind],
    )


class EchoPredictor(TablePredictor):
    """WDBC feature rows scored by a do-nothing model: the server measured without the model."""

    def __init__(self, max_batch: int = 1024, name: str = "echo"):
        super().__init__(
            EchoModel(max_batch),
            feature_names=FEATURE_NAMES,
            name=name,
            label_names=LABEL_NAMES,
            max_batch=max_batch,
        )

    def info(self) -> dict:
        return {"name": self.name, "model_version": self.version, **self.input_info()}


def load(uri: str | None, *, max_batch: int, name: str, echo: bool = False, image_limits=None) -> Predictor:
    """The predictor of the bundle at `uri` (or the echo model)."""
    if echo:
        log.info("loaded the echo model")
        return EchoPredictor(max_batch, name="echo")
    t0 = time.perf_counter()
    b = bundle.load(uri)
    log.info("loaded the bundle in %.1f s", time.perf_counter() - t0)
    return from_bundle(b, max_batch=max_batch, name=name, image_limits=image_limits)
