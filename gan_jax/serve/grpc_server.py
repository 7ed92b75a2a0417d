"""The gRPC front end: the Open Inference Protocol (KServe v2) over gRPC, on the data plane that
the HTTP front end serves too (serve/dataplane.py).

The service Triton, KServe and MLServer offer (`inference.GRPCInferenceService`: ServerLive,
ServerReady, ModelReady, ServerMetadata, ModelMetadata, ModelInfer), so `tritonclient.grpc` and
other v2 clients work unchanged. A request's tensors are read straight into numpy
(`raw_input_contents` with `np.frombuffer`, or the typed `contents`) and handed to the predictor
as HTTP's are; outputs go back as `raw_output_contents`. No JSON in between. The data plane's
auth (metadata `authorization: Bearer <token>`; the health RPCs are open, as the HTTP health
routes are), limits (messages over `max_body_bytes` are RESOURCE_EXHAUSTED) and metrics are the
HTTP server's. A bad request is INVALID_ARGUMENT with the words HTTP would send, naming the field.

It is started beside the HTTP server on the same event loop by serve/server.py, not inside the
HTTP app.
"""

from __future__ import annotations

import time
import traceback
import uuid

import grpc
import numpy as np

from gan_jax.serve import v2
from gan_jax.serve.dataplane import DataPlane
from gan_jax.serve.errors import ApiError
from gan_jax.serve.middleware import log
from gan_jax.serve.proto import kserve_v2_pb2 as pb

SERVICE = "inference.GRPCInferenceService"
_STATUS = {
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class InferenceService:
    """The six v2 RPCs over one data plane."""

    def __init__(self, plane: DataPlane):
        self.plane = plane

    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.plane.ready)

    async def ModelReady(self, request, context):
        self.plane.check_model(request.name)
        return pb.ModelReadyResponse(ready=self.plane.ready)

    async def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(**self.plane.server_metadata())

    async def ModelMetadata(self, request, context):
        self.plane.check_model(request.name)
        m = self.plane.predictor.v2_metadata()
        tensors = lambda ts: [pb.ModelMetadataResponse.TensorMetadata(**t) for t in ts]  # noqa: E731
        return pb.ModelMetadataResponse(
            name=m["name"],
            versions=m["versions"],
            platform=m["platform"],
            inputs=tensors(m["inputs"]),
            outputs=tensors(m["outputs"]),
        )

    async def ModelInfer(self, request, context):
        self.plane.check_model(request.model_name)
        v2_request = read_request(request)
        outputs = await self.plane.infer(v2_request)
        return write_response(self.plane.infer_head(v2_request), outputs)


def read_request(request: pb.ModelInferRequest) -> v2.Request:
    """The v2 request of a protobuf message: each tensor as numpy, straight from its bytes."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise ApiError(
            422, f"holds {len(raw)} entries for {len(request.inputs)} inputs", "raw_input_contents"
        )
    inputs = []
    for i, t in enumerate(request.inputs):
        field = f"inputs[{i}]"
        name, datatype, shape = _head(t, field)
        if raw:
            if t.HasField("contents"):
                raise ApiError(422, "give raw_input_contents or contents, not both", f"{field}.contents")
            data = v2.from_raw(raw[i], datatype, shape, f"raw_input_contents[{i}]")
        else:
            data = _typed(t.contents, datatype, shape, field)
        inputs.append(v2.Tensor(name, datatype, shape, data, field))
    outputs = [v2.Output(o.name) for o in request.outputs] or None
    return v2.Request(request.id, inputs, outputs, {})


def _head(t, field: str) -> tuple[str, str, tuple[int, ...]]:
    if t.datatype not in v2.DATATYPES:
        raise ApiError(
            422, f"must be one of {', '.join(v2.DATATYPES)}, got {t.datatype[:40]!r}", f"{field}.datatype"
        )
    if any(s < 0 for s in t.shape):
        raise ApiError(422, "must be a list of non-negative integers", f"{field}.shape")
    return t.name, t.datatype, tuple(t.shape)


def _typed(contents, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
    if datatype not in v2.TYPED:
        raise ApiError(
            422, f"{datatype} has no typed contents field; send raw_input_contents", f"{field}.contents"
        )
    values = getattr(contents, v2.TYPED[datatype])
    if len(values) != int(np.prod(shape)):
        raise ApiError(
            422,
            f"holds {len(values)} values but shape {list(shape)} needs {int(np.prod(shape))}",
            f"{field}.contents.{v2.TYPED[datatype]}",
        )
    if datatype == "BYTES":
        array = np.empty(len(values), object)
        array[:] = list(values)
        return array.reshape(shape)
    dtype = v2.DTYPES[datatype]
    if dtype.kind == "f":
        return np.asarray(values, np.float64).reshape(shape)
    if dtype.kind == "b":
        return np.asarray(values, bool).reshape(shape)
    wide, info = np.asarray(values, np.int64 if dtype.kind == "i" else np.uint64), np.iinfo(dtype)
    bad = np.flatnonzero((wide < info.min) | (wide > info.max))
    if bad.size:
        problem = f"must be an integer in [{info.min}, {info.max}] ({datatype})"
        raise ApiError(422, problem, f"{field}.contents.{v2.TYPED[datatype]}[{int(bad[0])}]")
    return wide.astype(dtype).reshape(shape)


def write_response(head: dict, outputs: list[tuple[str, str, np.ndarray, bool]]) -> pb.ModelInferResponse:
    """The outputs as raw little-endian contents, as Triton sends them."""
    tensors = [
        pb.ModelInferResponse.InferOutputTensor(name=name, datatype=datatype, shape=list(values.shape))
        for name, datatype, values, _ in outputs
    ]
    raw = [np.ascontiguousarray(values, v2.DTYPES[datatype]).tobytes() for _, datatype, values, _ in outputs]
    return pb.ModelInferResponse(
        model_name=head["model_name"],
        model_version=head["model_version"],
        id=head.get("id", ""),
        outputs=tensors,
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
UNAUTHENTICATED = "missing or wrong bearer token (send metadata 'authorization: Bearer <token>')"
OPEN_RPCS = {"ServerLive", "ServerReady", "ModelReady"}  # as the HTTP health routes are open


def _guarded(plane: DataPlane, name: str, rpc):
    """`rpc` behind the data plane's auth and metrics; an ApiError becomes its gRPC status with the
    same words, anything else INTERNAL with a request id (and no values in the log)."""
    template = f"/{SERVICE}/{name}"

    async def handler(request, context):
        t0, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            if name not in OPEN_RPCS and not plane.auth.allows(_metadata(context, "authorization")):
                raise ApiError(401, UNAUTHENTICATED)
            return await rpc(request, context)
        except ApiError as e:
            code = _STATUS.get(e.status, grpc.StatusCode.INVALID_ARGUMENT)
            await context.abort(code, e.body()["error"])
        except Exception as e:  # noqa: BLE001 - INTERNAL with a request id, never the values
            code = grpc.StatusCode.INTERNAL
            request_id = (_metadata(context, "x-request-id") or "")[:128] or uuid.uuid4().hex
            frames = "".join(traceback.format_tb(e.__traceback__))  # the type and stack only
            log.error("gRPC request %s %s failed: %s\n%s", request_id, name, type(e).__name__, frames)
            await context.abort(code, f"internal server error (request_id {request_id})")
        finally:
            plane.metrics.observe(template, "gRPC", code.name, time.perf_counter() - t0)

    return handler


def _metadata(context, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return v
    return None


async def start(plane: DataPlane, host: str, port: int) -> grpc.aio.Server:
    """Starts the gRPC server on the running event loop; returns it (await .stop() to end it)."""
    service = InferenceService(plane)
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            _guarded(plane, name, getattr(service, name)),
            request_deserializer=req.FromString,
            response_serializer=resp.SerializeToString,
        )
        for name, (req, resp) in _MESSAGES.items()
    }
    options = [("grpc.max_receive_message_length", plane.settings.max_body_bytes)]
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SERVICE, handlers)])
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen for gRPC on {host}:{port}")
    await server.start()
    log.info("gRPC (Open Inference Protocol) listening on %s:%d", host, port)
    return server
