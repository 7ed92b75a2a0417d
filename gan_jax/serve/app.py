"""The prediction server: one FastAPI app, four contracts.

- native:      POST /predict ({"features": case} or {"instances": [case, ...]}), GET /model
- KServe v2 (Open Inference Protocol): GET /v2, /v2/health/live, /v2/health/ready,
               /v2/models/{name}, /v2/models/{name}/ready; POST /v2/models/{name}/infer
- SageMaker:   GET /ping, POST /invocations (application/json or text/csv)
- Vertex AI:   GET $AIP_HEALTH_ROUTE, POST $AIP_PREDICT_ROUTE ({"instances"} -> {"predictions"})
- operations:  GET /metrics (Prometheus), /openapi.json, and /docs and /redoc (served offline)

An image bundle (`Bundle.kind == "image"`) is served through the same routes with image bodies:
POST /predict and /invocations take one PNG or JPEG as the body (Content-Type image/png or
image/jpeg; checked and decoded safely by serve/uploads.py, resized as in training), the KServe v2
infer route a UINT8 tensor [N, H, W, C] of the model's image size, and the Vertex route
{"instances": [{"b64": ...}]}. Answers are those of the table model: probability and label.

Handlers are async and parse bodies with orjson; concurrent requests share one jitted model
call through the micro-batcher. The model is compiled and warmed up for every batch size in the
lifespan start-up, before uvicorn opens the port, so the first request is as fast as the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import os
import time

import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from gan_jax.serve import docs, openapi, schemas, uploads
from gan_jax.serve.middleware import AuthLimitsMetrics, Metrics, log
from gan_jax.serve.model import MicroBatcher, malignant
from gan_jax.serve.schemas import ApiError
from gan_jax.serve.uploads import ImageLimits

HEALTH_ROUTES = {"/ping", "/v2/health/live", "/v2/health/ready"}


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    token: str | None = None  # bearer token; None: no auth (a warning is logged)
    max_batch: int = 1024  # cases per request (and per model call)
    max_body_bytes: int = 4 * 1024 * 1024
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


Reply = tuple[int, bytes, str]  # status, body, media type
JSON = "application/json"


def json_reply(body, status: int = 200) -> Reply:
    return status, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), JSON


def json_response(body, status: int = 200) -> Response:
    _, data, media = json_reply(body, status)
    return Response(data, status, media_type=media)


def create_app(model, settings: ServeSettings = ServeSettings()) -> FastAPI:
    """The ASGI app serving `model` (a serve.model.BundleModel or EchoModel)."""
    parser = schemas.CaseParser(model.feature_names, settings.max_batch, getattr(model, "bounds", None))
    v2_parse = _v2_parser(model, parser, settings.max_batch)
    metrics = Metrics()
    batcher = MicroBatcher(model, settings.max_batch, on_call=metrics.batch_rows.observe)
    ready = {"value": False}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        seconds = model.warmup()
        # Start-up objects (JAX, FastAPI, the bundle) never die: freezing them keeps the
        # garbage collector's full passes, and the latency spikes they cause, short.
        gc.collect()
        gc.freeze()
        ready["value"] = True
        log.info(
            "model %s (%s) ready: compiled batch sizes %s in %.1f s; auth %s",
            model.name,
            model.version,
            list(model.buckets),
            seconds,
            "on" if settings.token else "off",
        )
        if not settings.token:
            log.warning(
                "no API token set: every route is open (fine only behind a platform that "
                "authenticates, such as SageMaker or Vertex AI)"
            )
        grpc_server = await _start_grpc(model, v2_parse, batcher, settings, ready)
        yield
        if grpc_server is not None:
            await grpc_server.stop(grace=2)

    app = FastAPI(
        title="gan_jax prediction server",
        version=model.version,
        lifespan=lifespan,
        description=__doc__,
        docs_url=None,
        redoc_url=None,
    )
    doc_paths = docs.install(app)  # offline: assets from the installed package, no CDN
    app.state.batcher, app.state.metrics = batcher, metrics
    _add_error_handlers(app)
    score = _scorer(model, batcher, settings.threshold)
    scoring_routes = {}  # (method, path) -> (core handler, route template); see ScoringFastPath
    if getattr(model, "kind", "table") == "image":
        decode, vertex_cases = _image_readers(model, settings)
        scoring_routes.update(_add_image_native(app, model, decode, score))
        read_cases = _image_invocation(decode)
    else:
        scoring_routes.update(_add_native(app, model, parser, score))
        read_cases = _table_invocation(parser)

        async def vertex_cases(body):
            return schemas.vertex_cases(parser, body)

    scoring_routes.update(_add_kserve(app, model, v2_parse, score, ready))
    scoring_routes.update(_add_sagemaker(app, read_cases, score, ready, model.version))
    if settings.vertex_predict_route:
        scoring_routes.update(_add_vertex(app, model, vertex_cases, score, ready, settings))

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    document = openapi.document(model, settings.max_batch)
    openapi.install(
        app,
        document,
        settings.vertex_health_route,
        settings.vertex_predict_route,
        auth=settings.token is not None,
    )
    routes = {(m, r.path): r for r in app.routes for m in getattr(r, "methods", ())}
    fast = {(m, path): (core, routes[m, template]) for (m, path), (core, template) in scoring_routes.items()}
    app.add_middleware(ScoringFastPath, routes=fast)
    open_paths = HEALTH_ROUTES | doc_paths | {settings.vertex_health_route or "/ping"}
    app.add_middleware(
        AuthLimitsMetrics,
        token=settings.token,
        open_paths=open_paths,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
    )
    return app


class ScoringFastPath:
    """Serves the scoring routes straight from ASGI, before FastAPI's router, dependency
    machinery and Request objects (together ~40 % of a request's CPU time here). The same core
    handlers back the FastAPI routes, which document them and serve them when called another
    way, so both paths answer identically; auth, limits and metrics (AuthLimitsMetrics) wrap both."""

    def __init__(self, app, routes: dict):
        self.app, self.routes = app, routes

    async def __call__(self, scope, receive, send):
        entry = self.routes.get((scope.get("method"), scope.get("path"))) if scope["type"] == "http" else None
        if entry is None:
            return await self.app(scope, receive, send)
        core, scope["route"] = entry  # the route tells AuthLimitsMetrics's metrics which template this was
        try:
            body = await _read_body(receive)
            if body is None:
                return  # the client went away
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            status, data, media = await core(body, headers)
        except ApiError as e:
            status, data, media = json_reply(e.body(), e.status)
        head = [(b"content-type", media.encode()), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": data})


async def _read_body(receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _endpoint(core):
    """A FastAPI endpoint around a core handler `(body, headers) -> Reply`."""

    async def endpoint(request: Request):
        status, data, media = await core(await request.body(), request.headers)
        return Response(data, status, media_type=media)

    return endpoint


def _scorer(model, batcher: MicroBatcher, threshold: float):
    labels = model.label_names

    async def score(x: np.ndarray) -> list[dict]:
        proba = await batcher.predict(x)
        positive = malignant(proba, threshold)  # a NaN raises: a 500 with a request id, never a label
        return [
            {"label": labels[m], "malignant_probability": p}
            for p, m in zip(proba.tolist(), positive.tolist())
        ]

    return score


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return json_response(e.body(), e.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        response = json_response({"error": str(e.detail), "field": None}, e.status_code)
        response.headers.update(e.headers or {})  # e.g. Allow on a 405 (RFC 9110)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()))
        return json_response({"error": f"{field}: {first.get('msg', 'invalid')}", "field": field}, 422)


async def _start_grpc(model, v2_parse, batcher, settings: ServeSettings, ready: dict):
    if settings.grpc_port is None:
        return None
    from gan_jax.serve import grpc_server  # grpcio is an optional extra

    service = grpc_server.InferenceService(
        model,
        v2_parse,
        batcher,
        threshold=settings.threshold,
        token=settings.token,
        ready=ready,
        metadata=kserve_metadata(model),
    )
    return await grpc_server.start(service, settings.grpc_host, settings.grpc_port, settings.max_body_bytes)


def kserve_metadata(model) -> dict:
    """The v2 model metadata, the same over HTTP and gRPC."""
    if getattr(model, "kind", "table") == "image":
        inputs = [{"name": "input-0", "datatype": "UINT8", "shape": [-1, *model.input_shape]}]
        parameters = {"image_shape": list(model.input_shape), "label_names": list(model.label_names)}
    else:
        inputs = [{"name": "input-0", "datatype": "FP32", "shape": [-1, len(model.feature_names)]}]
        parameters = {"feature_names": list(model.feature_names), "label_names": list(model.label_names)}
    return {
        "name": model.name,
        "versions": [model.version],
        "platform": "jax",
        "inputs": inputs,
        "outputs": [
            {"name": "malignant_probability", "datatype": "FP32", "shape": [-1]},
            {"name": "label", "datatype": "INT32", "shape": [-1]},
        ],
        "parameters": parameters,
    }


def _v2_parser(model, parser, max_batch: int):
    """body (parsed JSON) -> the model's input batch, for the KServe v2 routes (HTTP and gRPC)."""
    if getattr(model, "kind", "table") == "image":
        return lambda body: schemas.v2_images(body, model.input_shape, max_batch)
    return lambda body: schemas.v2_inputs(parser, body)


def _media_type(headers) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _image_readers(model, settings: ServeSettings):
    """Async (bytes -> uint8 [H, W, C]) for uploads and (Vertex body -> [N, H, W, C]); both
    decode off the event loop's thread (Pillow releases the GIL while it decodes)."""

    def decode_sync(data: bytes, field: str = "body"):
        return uploads.decode_image(data, model.input_shape, settings.image_limits, field)

    async def decode(data: bytes):
        return await asyncio.to_thread(decode_sync, data)

    async def vertex_cases(body):
        return await asyncio.to_thread(schemas.vertex_images, body, decode_sync, settings.max_batch)

    return decode, vertex_cases


def _add_image_native(app: FastAPI, model, decode, score) -> dict:
    async def predict_image(body: bytes, headers) -> Reply:
        uploads.check_content_type(_media_type(headers))
        x = (await decode(body))[None]
        return json_reply({**(await score(x))[0], "model_version": model.version})

    summary = "Score one uploaded image (the body: PNG or JPEG bytes)"
    app.post("/predict", tags=["native"], summary=summary)(_endpoint(predict_image))
    _add_model_info(app, model, "The served bundle: version, image shape, metrics, config")
    return {("POST", "/predict"): (predict_image, "/predict")}


def _add_model_info(app: FastAPI, model, summary: str) -> None:
    @app.get("/model", tags=["native"], summary=summary)
    async def model_info():
        return json_response(model.info())


def _add_native(app: FastAPI, model, parser, score) -> dict:
    async def predict(body: bytes, headers) -> Reply:
        x, single = schemas.native_cases(parser, schemas.loads(body))
        predictions = await score(x)
        if single:
            return json_reply({**predictions[0], "model_version": model.version})
        return json_reply({"predictions": predictions, "model_version": model.version})

    summary = "Score one case ({'features': ...}) or many ({'instances': [...]})"
    app.post("/predict", tags=["native"], summary=summary)(_endpoint(predict))
    _add_model_info(app, model, "The served bundle: version, features, metrics, config")
    return {("POST", "/predict"): (predict, "/predict")}


def _add_kserve(app: FastAPI, model, v2_parse, score, ready) -> dict:
    metadata = kserve_metadata(model)

    def check_name(name: str) -> None:
        if name != model.name:
            raise ApiError(404, f"model {name!r} not found; this server serves {model.name!r}", "name")

    @app.get("/v2", tags=["kserve-v2"], summary="Server metadata")
    async def server_metadata():
        return json_response({"name": "gan_jax", "version": model.version, "extensions": []})

    @app.get("/v2/health/live", tags=["kserve-v2"])
    async def live():
        return json_response({"live": True})

    @app.get("/v2/health/ready", tags=["kserve-v2"])
    async def server_ready():
        return json_response({"ready": ready["value"]}, 200 if ready["value"] else 503)

    @app.get("/v2/models/{name}", tags=["kserve-v2"], summary="Model metadata")
    async def model_metadata(name: str):
        check_name(name)
        return json_response(metadata)

    @app.get("/v2/models/{name}/ready", tags=["kserve-v2"])
    async def model_ready(name: str):
        check_name(name)
        return json_response({"name": name, "ready": ready["value"]}, 200 if ready["value"] else 503)

    async def infer_core(body: bytes, headers) -> Reply:
        body = schemas.loads(body)
        predictions = await score(v2_parse(body))
        proba = [p["malignant_probability"] for p in predictions]
        labels = [int(p["label"] == model.label_names[1]) for p in predictions]
        outputs = [
            {"name": "malignant_probability", "datatype": "FP32", "shape": [len(proba)], "data": proba},
            {"name": "label", "datatype": "INT32", "shape": [len(labels)], "data": labels},
        ]
        reply = {"model_name": model.name, "model_version": model.version, "outputs": outputs}
        if isinstance(body.get("id"), str):
            reply["id"] = body["id"]
        return json_reply(reply)

    @app.post(
        "/v2/models/{name}/infer", tags=["kserve-v2"], summary="Score a tensor (Open Inference Protocol)"
    )
    async def infer(name: str, request: Request):
        check_name(name)
        status, data, media = await infer_core(await request.body(), request.headers)
        return Response(data, status, media_type=media)

    return {("POST", f"/v2/models/{model.name}/infer"): (infer_core, "/v2/models/{name}/infer")}


def _table_invocation(parser):
    async def read_cases(body: bytes, content_type: str):
        if content_type == "text/csv":
            return schemas.csv_cases(parser, body)
        if content_type in (JSON, ""):
            return schemas.native_cases(parser, schemas.loads(body))[0]
        raise ApiError(415, f"content type {content_type!r} is not supported; use {JSON} or text/csv")

    return read_cases


def _image_invocation(decode):
    async def read_cases(body: bytes, content_type: str):
        uploads.check_content_type(content_type)
        return (await decode(body))[None]

    return read_cases


def _add_sagemaker(app: FastAPI, read_cases, score, ready, version: str) -> dict:
    @app.get("/ping", tags=["sagemaker"], summary="SageMaker health check")
    async def ping():
        return Response(status_code=200 if ready["value"] else 503)

    async def invocations(body: bytes, headers) -> Reply:
        predictions = await score(await read_cases(body, _media_type(headers)))
        if "text/csv" in headers.get("accept", ""):
            lines = "".join(f"{p['malignant_probability']!r},{p['label']}\n" for p in predictions)
            return 200, lines.encode(), "text/csv"
        return json_reply({"predictions": predictions, "model_version": version})

    summary = "SageMaker inference: JSON or CSV, one case per line (an image bundle: one PNG or JPEG)"
    app.post("/invocations", tags=["sagemaker"], summary=summary)(_endpoint(invocations))
    return {("POST", "/invocations"): (invocations, "/invocations")}


def _add_vertex(app: FastAPI, model, vertex_cases, score, ready, settings: ServeSettings) -> dict:
    # A route that already exists (e.g. AIP_HEALTH_ROUTE=/ping, AIP_PREDICT_ROUTE=/predict) already
    # speaks the contract: health is 200 when ready, /predict takes {"instances"} -> {"predictions"}.
    existing = {getattr(r, "path", None) for r in app.routes}
    if settings.vertex_health_route and settings.vertex_health_route not in existing:

        @app.get(settings.vertex_health_route, tags=["vertex-ai"], summary="Vertex AI health check")
        async def vertex_health():
            return json_response({"ready": ready["value"]}, 200 if ready["value"] else 503)

    route = settings.vertex_predict_route
    if route in existing:
        return {}

    async def vertex_predict(body: bytes, headers) -> Reply:
        predictions = await score(await vertex_cases(schemas.loads(body)))
        return json_reply({"predictions": predictions, "deployedModelVersion": model.version})

    summary = "Vertex AI prediction: {'instances': [...]} -> {'predictions': [...]}"
    app.post(route, tags=["vertex-ai"], summary=summary)(_endpoint(vertex_predict))
    return {("POST", route): (vertex_predict, route)}


# -- process entry points -----------------------------------------------------------------------

ENV_SPEC = "GAN_JAX_SERVE_SPEC"  # JSON handed from `gan-jax serve` to each uvicorn worker


def app_from_env() -> FastAPI:
    """uvicorn factory: builds the app from $GAN_JAX_SERVE_SPEC (what `gan-jax serve` set), so
    every worker process loads the bundle itself."""
    spec = orjson.loads(os.environ[ENV_SPEC])
    t0 = time.perf_counter()
    model = load_model(spec["bundle"], spec["max_batch"], spec["model_name"], echo=spec["echo"])
    log.info(
        "loaded %s in %.1f s", "the echo model" if spec["echo"] else "the bundle", time.perf_counter() - t0
    )
    settings = ServeSettings.from_env(**spec["settings"])
    return create_app(model, settings)


def load_model(bundle_uri: str | None, max_batch: int, name: str, echo: bool = False):
    from gan_jax.serve.model import BundleModel, EchoModel

    if echo:
        return EchoModel(max_batch, name="echo")
    from gan_jax.artifacts import bundle

    return BundleModel(bundle.load(bundle_uri), max_batch, name)
