"""The Open Inference Protocol (KServe v2) over gRPC, on a second port beside the HTTP server.

The service Triton, KServe and MLServer offer (`inference.GRPCInferenceService`: ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer), so `tritonclient.grpc` and
other v2 clients work unchanged. It runs on the HTTP server's event loop and shares everything
with it: the model and its micro-batcher (gRPC and HTTP requests are batched together), the
bearer token (metadata `authorization: Bearer <token>`; the health RPCs are open, as the HTTP
health routes are) and the validation — a request is turned into the JSON form of a v2 request
and checked by the HTTP route's parser (`schemas.v2_inputs`, or `schemas.v2_images` for an image
model: a UINT8 tensor [N, H, W, C]), so a bad value gets the same words as over HTTP, as
INVALID_ARGUMENT naming the field. Messages over `max_body_bytes` are RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import hmac
import traceback
import uuid

import grpc
import numpy as np

from gan_jax.serve.middleware import log
from gan_jax.serve.model import malignant
from gan_jax.serve.proto import kserve_v2_pb2 as pb
from gan_jax.serve.schemas import ApiError

SERVICE = "inference.GRPCInferenceService"
# Little-endian numpy dtypes of raw tensor contents, and the typed field otherwise. UINT8 is
# what an image model takes; which datatypes a model accepts is `v2_parse`'s business.
_RAW = {
    "UINT8": "<u1",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
}
_TYPED = {
    "UINT8": "uint_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
}
_STATUS = {404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED}


class InferenceService:
    """The six v2 RPCs over one model. `ready` is the HTTP app's readiness flag."""

    def __init__(
        self,
        model,
        v2_parse,
        batcher,
        *,
        threshold: float,
        token: str | None,
        ready: dict,
        metadata: dict,
    ):
        # v2_parse: the JSON form of a v2 request -> the model's batch (the HTTP route's parser).
        self.model, self.v2_parse, self.batcher = model, v2_parse, batcher
        self.threshold, self.ready, self.metadata = threshold, ready, metadata
        self.token = token.encode() if token else None

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.ready["value"])

    async def ModelReady(self, request, context):
        await self._check_name(request.name, context)
        return pb.ModelReadyResponse(ready=self.ready["value"])

    async def ServerMetadata(self, request, context):
        await self._authorize(context)
        return pb.ServerMetadataResponse(name="gan_jax", version=self.model.version, extensions=[])

    async def ModelMetadata(self, request, context):
        await self._authorize(context)
        await self._check_name(request.name, context)
        m = self.metadata
        tensors = lambda ts: [pb.ModelMetadataResponse.TensorMetadata(**t) for t in ts]  # noqa: E731
        return pb.ModelMetadataResponse(
            name=m["name"],
            versions=m["versions"],
            platform=m["platform"],
            inputs=tensors(m["inputs"]),
            outputs=tensors(m["outputs"]),
        )

    async def ModelInfer(self, request, context):
        await self._authorize(context)
        await self._check_name(request.model_name, context)
        try:
            x = self.v2_parse(request_body(request))
        except ApiError as e:
            await context.abort(_STATUS.get(e.status, grpc.StatusCode.INVALID_ARGUMENT), e.body()["error"])
        try:
            proba = await self.batcher.predict(x)
            positive = malignant(proba, self.threshold)  # a NaN is never a label
        except Exception as e:  # noqa: BLE001 - INTERNAL with a request id, never the values
            await self._internal_error(e, context)
        return infer_response(self.model, request.id, proba, positive)

    async def _authorize(self, context) -> None:
        if self.token is None:
            return
        auth = dict(context.invocation_metadata()).get("authorization", "")
        if not (auth[:7].lower() == "bearer " and hmac.compare_digest(auth[7:].strip().encode(), self.token)):
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or wrong bearer token (send metadata 'authorization: Bearer <token>')",
            )

    async def _check_name(self, name: str, context) -> None:
        if name != self.model.name:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"name: model {name!r} not found; this server serves {self.model.name!r}",
            )

    async def _internal_error(self, e: Exception, context) -> None:
        request_id = dict(context.invocation_metadata()).get("x-request-id", "")[:128] or uuid.uuid4().hex
        frames = "".join(traceback.format_tb(e.__traceback__))  # the type and stack only: no values
        log.error("gRPC request %s ModelInfer failed: %s\n%s", request_id, type(e).__name__, frames)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal server error (request_id {request_id})")


def request_body(request: pb.ModelInferRequest) -> dict:
    """The JSON form of a v2 request (what the HTTP route parses), from the protobuf message."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise ApiError(
            422, f"holds {len(raw)} entries for {len(request.inputs)} inputs", "raw_input_contents"
        )
    inputs = []
    for i, t in enumerate(request.inputs):
        if t.datatype not in _RAW:
            raise ApiError(
                422,
                f"datatype must be a number type such as FP32 (UINT8 for images), got {t.datatype!r}",
                f"inputs[{i}].datatype",
            )
        if raw and t.HasField("contents"):
            raise ApiError(422, "give raw_input_contents or contents, not both", f"inputs[{i}].contents")
        data = (
            _raw_values(raw[i], t.datatype, i)
            if raw
            else list(getattr(t.contents, _TYPED.get(t.datatype, "")))
        )
        inputs.append({"name": t.name, "shape": list(t.shape), "datatype": t.datatype, "data": data})
    return {"id": request.id, "inputs": inputs}


def _raw_values(raw: bytes, datatype: str, i: int) -> list:
    dtype = np.dtype(_RAW[datatype])
    if len(raw) % dtype.itemsize:
        raise ApiError(
            422, f"{len(raw)} bytes is not a whole number of {datatype} values", f"raw_input_contents[{i}]"
        )
    return np.frombuffer(raw, dtype).tolist()


def infer_response(model, request_id: str, proba: np.ndarray, positive: np.ndarray) -> pb.ModelInferResponse:
    """Outputs as the HTTP route gives them: malignant_probability FP32 [N], label INT32 [N]
    (1 = malignant), in raw little-endian contents as Triton sends them."""
    n = len(proba)
    outputs = [
        pb.ModelInferResponse.InferOutputTensor(name="malignant_probability", datatype="FP32", shape=[n]),
        pb.ModelInferResponse.InferOutputTensor(name="label", datatype="INT32", shape=[n]),
    ]
    raw = [np.asarray(proba, "<f4").tobytes(), np.asarray(positive, "<i4").tobytes()]
    return pb.ModelInferResponse(
        model_name=model.name,
        model_version=model.version,
        id=request_id,
        outputs=outputs,
        raw_output_contents=raw,
    )


_MESSAGES = {
    "ServerLive": (pb.ServerLiveRequest, pb.ServerLiveResponse),
    "ServerReady": (pb.ServerReadyRequest, pb.ServerReadyResponse),
    "ModelReady": (pb.ModelReadyRequest, pb.ModelReadyResponse),
    "ServerMetadata": (pb.ServerMetadataRequest, pb.ServerMetadataResponse),
    "ModelMetadata": (pb.ModelMetadataRequest, pb.ModelMetadataResponse),
    "ModelInfer": (pb.ModelInferRequest, pb.ModelInferResponse),
}


async def start(service: InferenceService, host: str, port: int, max_message_bytes: int) -> grpc.aio.Server:
    """Starts the gRPC server on the running event loop; returns it (await .stop() to end it)."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(service, name),
            request_deserializer=req.FromString,
            response_serializer=resp.SerializeToString,
        )
        for name, (req, resp) in _MESSAGES.items()
    }
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_message_bytes)])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    log.info("gRPC (Open Inference Protocol) listening on %s:%d", host, port)
    return server
