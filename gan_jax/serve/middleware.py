"""Auth, metrics and limits, written once for both protocols: the bearer-token check (`Auth`)
and the metrics registry (`Metrics`) that the data plane holds and both front ends use, and
the HTTP front end's one pure-ASGI middleware that applies them (plus the body-size limit and a
last-resort 500 with a request id). Pure ASGI because Starlette's BaseHTTPMiddleware costs more
per request than the model does.

Nothing here logs a body, a query string or a header value: requests carry patient data.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
import traceback
import uuid

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from gan_jax.serve.errors import ApiError

log = logging.getLogger("gan_jax.serve")
TOKEN_ENV, TOKEN_FILE_ENV = "GAN_JAX_API_TOKEN", "GAN_JAX_API_TOKEN_FILE"
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


def load_token(token_file: str | None = None) -> str | None:
    """The API token from `token_file`, $GAN_JAX_API_TOKEN_FILE or $GAN_JAX_API_TOKEN (first
    found); None when none is set (auth off)."""
    path = token_file or os.environ.get(TOKEN_FILE_ENV)
    if path:
        try:
            with open(path) as f:
                token = f.read().strip()
        except OSError as e:
            raise ValueError(f"cannot read the API token file {path}: {e.strerror}") from None
        if not token:
            raise ValueError(f"the API token file {path} is empty")
        return token
    return os.environ.get(TOKEN_ENV) or None


class Metrics:
    """Request counts and latency per route template, in a registry of this app only."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gan_jax_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "gan_jax_request_seconds",
            "request latency (s), server side",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        rows_buckets = (1, 2, 4, 8, 16, 64, 256, 1024, 4096)
        self.batch_rows = Histogram(
            "gan_jax_model_call_rows",
            "cases per model call (after micro-batching)",
            buckets=rows_buckets,
            registry=self.registry,
        )
        self._children: dict = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:  # labels() takes a lock; cache the children
            child = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route),
            )
        child[0].inc()
        child[1].observe(seconds)


class Auth:
    """The bearer-token check of both protocols (HTTP `Authorization` header, gRPC
    `authorization` metadata): constant-time, and open when no token is set."""

    MESSAGE = "missing or wrong bearer token (send 'Authorization: Bearer <token>')"

    def __init__(self, token: str | None):
        self.token = token.encode() if token else None

    def allows(self, value: bytes | str | None) -> bool:
        if self.token is None:
            return True
        if isinstance(value, str):
            value = value.encode("latin-1", "replace")
        if value is None or value[:7].lower() != b"bearer ":
            return False
        return hmac.compare_digest(value[7:].strip(), self.token)


class AuthLimitsMetrics:
    """ASGI middleware: auth, size limit, metrics, and a JSON 500 for anything unexpected."""

    def __init__(self, app, *, auth: Auth, open_paths: set[str], max_body_bytes: int, metrics: Metrics):
        self.app = app
        self.auth = auth
        self.open_paths = open_paths
        self.max_body = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        state = {"status": 500, "started": False}

        async def send_tracked(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        try:
            await self._guarded(scope, receive, send_tracked)
        except Exception as e:  # noqa: BLE001 - the last line of defence: never crash, never leak
            await self._internal_error(scope, e, send_tracked, state["started"])
        finally:
            # The route template (set by serve/app.py's endpoints), so /v2/models/x/infer and
            # /v2/models/y/infer count as one route.
            label = getattr(scope.get("endpoint"), "template", None) or (
                "denied" if state["status"] in (401, 413) else "other"
            )
            self.metrics.observe(label, scope["method"], state["status"], time.perf_counter() - t0)

    async def _guarded(self, scope, receive, send):
        auth, length = None, None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"content-length":
                length = value
        if scope["path"] not in self.open_paths and not self.auth.allows(auth):
            error = ApiError(401, Auth.MESSAGE)
            return await _send_error(send, error, extra=[(b"www-authenticate", b"Bearer")])
        if length is not None:
            if not length.isdigit() or int(length) > self.max_body:
                return await _send_error(send, self._too_large())
        elif scope["method"] in ("POST", "PUT"):
            receive = self._counting(receive)  # chunked upload: count while reading
        await self.app(scope, receive, send)

    def _too_large(self) -> ApiError:
        return ApiError(
            413,
            f"the body is larger than this server's limit of {self.max_body} bytes; "
            "send fewer cases per request or use gan-jax predict",
        )

    def _counting(self, receive):
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise self._too_large()  # turned into a 413 by the app's ApiError handler
            return message

        return counted

    async def _internal_error(self, scope, e: Exception, send, started: bool) -> None:
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        # The type and the stack only: an exception's message may quote the input.
        frames = "".join(traceback.format_tb(e.__traceback__))
        log.error("request %s %s failed: %s\n%s", request_id, scope["path"], type(e).__name__, frames)
        if not started:
            body = {"error": "internal server error", "request_id": request_id}
            await _send_json(send, 500, body, [(b"x-request-id", request_id.encode())])


def _header(scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")[:128]
    return None


async def _send_error(send, error: ApiError, extra: list | None = None) -> None:
    await _send_json(send, error.status, error.body(), extra or [])


async def _send_json(send, status: int, body: dict, extra: list) -> None:
    data = orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
