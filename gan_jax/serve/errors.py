"""What every front end answers a bad request with: an `ApiError` (status, message, the field at
fault), and the one JSON reader that turns a body that is not JSON into a 400."""

from __future__ import annotations

import orjson


class ApiError(Exception):
    """A client error: HTTP `status`, a message, and the field at fault (if any). The gRPC front
    end maps the status to a gRPC code (404 NOT_FOUND, 413 RESOURCE_EXHAUSTED, other 4xx
    INVALID_ARGUMENT) and keeps the words."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict:
        return {"error": f"{self.field}: {self.message}" if self.field else self.message, "field": self.field}


def loads(body: bytes):
    """Parsed JSON, or a 400 saying why not."""
    if not body:
        raise ApiError(400, "the request body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        # NaN and Infinity are not JSON, so they end up here too.
        raise ApiError(
            400, f"the body is not valid JSON ({str(e).split(':')[0]}); note NaN and Infinity are not allowed"
        ) from None
