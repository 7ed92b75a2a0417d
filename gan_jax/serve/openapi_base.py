"""The small pieces every part of the OpenAPI document uses: content types, error responses
with what each status means, and schema helpers (objects without extra keys, flags, bodies)."""

from __future__ import annotations

import numpy as np

from gan_jax.serve.schemas import TABLE_DATATYPES
from gan_jax.serve.v2 import DTYPES

JSON = "application/json"
ERROR = {
    "type": "object",
    "required": ["error", "field"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, after the field at fault"},
        "field": {"type": ["string", "null"], "description": "the field, line or column at fault"},
    },
}
INTERNAL = {
    "type": "object",
    "required": ["error", "request_id"],
    "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}},
}
ERROR_TEXT = {
    400: "The body is empty or not valid JSON (NaN and Infinity are not JSON).",
    401: "Missing or wrong bearer token.",
    404: "No model of that name is served here.",
    405: "Method not allowed; the Allow header lists the methods that are.",
    413: "The body is larger than the server's limit (--max-body-bytes).",
    415: "The content type is neither application/json nor text/csv.",
    422: "A case or tensor failed validation; `error` names the field, line or column.",
}
# The same statuses where an image is uploaded.
IMAGE_ERROR_TEXT = {
    **ERROR_TEXT,
    400: "The body is empty.",
    413: "The body is larger than --max-body-bytes, or the image declares more pixels than "
    "--max-image-side / --max-image-pixels allow (checked before decoding: decompression bombs land here).",
    415: "The content type is not image/png or image/jpeg, or the body is not a PNG or JPEG image.",
    422: "The image is corrupt or truncated.",
}
BINARY = {"type": "string", "format": "binary"}
# The datatypes a table model takes in a v2 tensor (integer ones with their ranges).
FLOAT_TYPES = [t for t in TABLE_DATATYPES if DTYPES[t].kind == "f"]
INT_TYPES = {
    t: (int(np.iinfo(DTYPES[t]).min), int(np.iinfo(DTYPES[t]).max))
    for t in TABLE_DATATYPES
    if DTYPES[t].kind == "i"
}


def json_content(schema: dict) -> dict:
    return {JSON: {"schema": schema}}


def error_response(status: int, texts: dict = ERROR_TEXT) -> dict:
    response = {"description": texts[status], "content": json_content(ERROR)}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}
    if status == 405:
        response["headers"] = {"Allow": {"schema": {"type": "string"}, "required": True}}
    return response


def responses(
    ok: dict, *errors: int, protected: bool = True, ready: dict | None = None, texts: dict = ERROR_TEXT
) -> dict:
    out = {"200": ok}
    for status in sorted({*errors, *([401] if protected else [])}):
        out[str(status)] = error_response(status, texts)
    if ready is not None:
        out["503"] = ready
    out["500"] = {
        "description": "Unexpected failure (also: the model's probability is not finite); "
        "quote request_id when reporting it.",
        "content": json_content(INTERNAL),
    }
    return out


def obj(properties: dict, required: list[str] | None = None, extra: bool = False) -> dict:
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }
    if not extra:
        schema["additionalProperties"] = False
    return schema


def flag(name: str) -> dict:
    return obj({name: {"type": "boolean"}})


def ok(schema: dict, text: str = "OK") -> dict:
    return {"description": text, "content": json_content(schema)}


def not_ready(schema: dict) -> dict:
    return {"description": "The model is still loading.", "content": json_content(schema)}


def body(content: dict) -> dict:
    return {"requestBody": {"required": True, "content": content}}
