"""The HTTP front end (Starlette): five contracts over one data plane (serve/dataplane.py).

- native:      POST /predict ({"features": case} or {"instances": [case, ...]}), GET /model
- KServe v2 (Open Inference Protocol): GET /v2, /v2/health/live, /v2/health/ready,
               /v2/models/{name}, /v2/models/{name}/ready; POST /v2/models/{name}/infer (JSON, or
               the binary tensor data extension; requested outputs, binary outputs)
- SageMaker:   GET /ping, POST /invocations (application/json or text/csv)
- Vertex AI:   GET $AIP_HEALTH_ROUTE, POST $AIP_PREDICT_ROUTE ({"instances"} -> {"predictions"})
- operations:  GET /metrics (Prometheus), /openapi.json, and /docs and /redoc (served offline)

An image bundle is served through the same routes with image bodies: POST /predict and
/invocations take one PNG or JPEG as the body (Content-Type image/png or image/jpeg), the v2
infer route a UINT8 tensor [N, H, W, C] or a BYTES tensor of PNG/JPEG images, and the Vertex route
{"instances": [{"b64": ...}]}. The predictor decides what a body means; this module only routes.

Handlers are raw ASGI endpoints behind Starlette's router (no Request object per call); concurrent
requests share one jitted model call through the data plane's micro-batcher. The OpenAPI document
(serve/openapi.py) is the single description of these routes.
"""

from __future__ import annotations

import contextlib
import os

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Route

from gan_jax.serve import docs, openapi, v2
from gan_jax.serve.dataplane import DataPlane, ServeSettings
from gan_jax.serve.errors import ApiError
from gan_jax.serve.middleware import AuthLimitsMetrics
from gan_jax.serve.predictor import load as load_predictor

HEALTH_ROUTES = {"/ping", "/v2/health/live", "/v2/health/ready"}
JSON = "application/json"
# status, body, media type, extra headers
Reply = tuple[int, bytes, str, list]


def json_reply(body, status: int = 200) -> Reply:
    return status, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), JSON, []


class Endpoint:
    """A raw ASGI endpoint around `handler(body, headers, path_params) -> Reply`; headers are
    the few this server reads (lower-case names). `template` names the route in the metrics."""

    HEADERS = (b"content-type", b"accept", v2.HEADER_LENGTH.encode())

    def __init__(self, template: str, handler, read_body: bool):
        self.template, self.handler, self.read_body = template, handler, read_body

    async def __call__(self, scope, receive, send):
        headers = {}
        for k, v in scope["headers"]:
            if k in self.HEADERS:
                headers[k.decode()] = v.decode("latin-1")
        try:
            body = await _read_body(receive) if self.read_body else b""
            if body is None:
                return  # the client went away
            status, data, media, extra = await self.handler(body, headers, scope.get("path_params", {}))
        except ApiError as e:
            status, data, media, extra = json_reply(e.body(), e.status)
        head = [(b"content-type", media.encode()), (b"content-length", str(len(data)).encode()), *extra]
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


def _media_type(headers: dict) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def create_app(plane: DataPlane) -> Starlette:
    """The ASGI app serving `plane`; its lifespan warms the model up (once per plane)."""
    settings, predictor = plane.settings, plane.predictor
    routes = [
        *_scoring_routes(plane),
        *_kserve_routes(plane),
        *_sagemaker_routes(plane),
        *_vertex_routes(plane),
        _get("/model", lambda: json_reply(predictor.info())),
        _get("/metrics", lambda: (200, generate_latest(plane.metrics.registry), CONTENT_TYPE_LATEST, [])),
    ]
    spec = openapi.build(
        predictor.document(),
        title="gan_jax prediction server",
        version=predictor.version,
        description=__doc__,
        vertex_health=settings.vertex_health_route,
        vertex_predict=settings.vertex_predict_route,
        auth=settings.token is not None,
    )
    spec_bytes = orjson.dumps(spec)
    routes.append(_get("/openapi.json", lambda: (200, spec_bytes, JSON, [])))
    doc_routes, doc_paths = docs.routes("/openapi.json", spec["info"]["title"])
    open_paths = HEALTH_ROUTES | doc_paths | {"/openapi.json", settings.vertex_health_route or "/ping"}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        plane.start()
        yield

    middleware = [
        Middleware(
            AuthLimitsMetrics,
            auth=plane.auth,
            open_paths=open_paths,
            max_body_bytes=settings.max_body_bytes,
            metrics=plane.metrics,
        )
    ]
    app = Starlette(
        routes=[*routes, *doc_routes],
        middleware=middleware,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.plane, app.state.spec = plane, spec
    return app


async def _http_error(request, e: HTTPException) -> Response:
    """404 (no such route) and 405 (wrong method) in the server's error shape."""
    _, data, media, _ = json_reply({"error": str(e.detail), "field": None})
    return Response(data, e.status_code, headers=e.headers, media_type=media)  # keeps Allow on a 405


def _route(path: str, method: str, handler, read_body: bool = True) -> Route:
    return Route(path, Endpoint(path, handler, read_body), methods=[method])


def _get(path: str, reply) -> Route:
    async def handler(body, headers, params) -> Reply:
        return reply()

    return _route(path, "GET", handler, read_body=False)


def _scoring_routes(plane: DataPlane) -> list[Route]:
    predictor = plane.predictor

    async def predict(body: bytes, headers, params) -> Reply:
        x, single = await predictor.native(body, _media_type(headers))
        predictions = await plane.predictions(x)
        if single:
            return json_reply({**predictions[0], "model_version": predictor.version})
        return json_reply({"predictions": predictions, "model_version": predictor.version})

    async def infer(body: bytes, headers, params) -> Reply:
        plane.check_model(params["name"])
        request = v2.read_http(body, headers.get(v2.HEADER_LENGTH))
        data, header_length = v2.write_http(plane.infer_head(request), await plane.infer(request))
        if header_length is None:
            return 200, data, JSON, []
        return (
            200,
            data,
            "application/octet-stream",
            [(b"inference-header-content-length", b"%d" % header_length)],
        )

    return [_route("/predict", "POST", predict), _route("/v2/models/{name}/infer", "POST", infer)]


def _ready(plane: DataPlane, body: dict) -> Reply:
    return json_reply(body, 200 if plane.ready else 503)


def _kserve_routes(plane: DataPlane) -> list[Route]:
    async def model_metadata(body, headers, params) -> Reply:
        plane.check_model(params["name"])
        return json_reply(plane.predictor.v2_metadata())

    async def model_ready(body, headers, params) -> Reply:
        plane.check_model(params["name"])
        return _ready(plane, {"name": params["name"], "ready": plane.ready})

    return [
        _get("/v2", lambda: json_reply(plane.server_metadata())),
        _get("/v2/health/live", lambda: json_reply({"live": True})),
        _get("/v2/health/ready", lambda: _ready(plane, {"ready": plane.ready})),
        _route("/v2/models/{name}", "GET", model_metadata, read_body=False),
        _route("/v2/models/{name}/ready", "GET", model_ready, read_body=False),
    ]


def _sagemaker_routes(plane: DataPlane) -> list[Route]:
    version = plane.predictor.version

    async def invocations(body: bytes, headers, params) -> Reply:
        predictions = await plane.predictions(await plane.predictor.invocations(body, _media_type(headers)))
        if "text/csv" in headers.get("accept", ""):
            lines = "".join(f"{p['malignant_probability']!r},{p['label']}\n" for p in predictions)
            return 200, lines.encode(), "text/csv", []
        return json_reply({"predictions": predictions, "model_version": version})

    return [
        _get("/ping", lambda: (200 if plane.ready else 503, b"", "text/plain", [])),
        _route("/invocations", "POST", invocations),
    ]


def _vertex_routes(plane: DataPlane) -> list[Route]:
    # A route that already exists (e.g. AIP_HEALTH_ROUTE=/ping, AIP_PREDICT_ROUTE=/predict) already
    # speaks the contract: health is 200 when ready, /predict takes {"instances"} -> {"predictions"}.
    settings, existing = plane.settings, {"/ping", "/predict", "/v2/health/ready", "/v2/health/live"}
    out = []
    if settings.vertex_health_route and settings.vertex_health_route not in existing:
        out.append(_get(settings.vertex_health_route, lambda: _ready(plane, {"ready": plane.ready})))
    route = settings.vertex_predict_route
    if route and route not in existing:

        async def vertex_predict(body: bytes, headers, params) -> Reply:
            predictions = await plane.predictions(await plane.predictor.vertex(body))
            return json_reply({"predictions": predictions, "deployedModelVersion": plane.predictor.version})

        out.append(_route(route, "POST", vertex_predict))
    return out


# -- process entry point for uvicorn workers ---------------------------------------------------

ENV_SPEC = "GAN_JAX_SERVE_SPEC"  # JSON handed from `gan-jax serve` to each uvicorn worker


def app_from_env() -> Starlette:
    """uvicorn factory (`gan-jax serve --workers N`): builds the app from $GAN_JAX_SERVE_SPEC, so
    every worker process loads the bundle itself."""
    spec = orjson.loads(os.environ[ENV_SPEC])
    settings = ServeSettings.from_env(**spec["settings"])
    served = load_predictor(
        spec["bundle"],
        max_batch=settings.max_batch,
        name=spec["model_name"],
        echo=spec["echo"],
        image_limits=settings.image_limits,
    )
    return create_app(DataPlane(served, settings))
