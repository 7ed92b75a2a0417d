"""The OpenAPI document, written to say exactly what the server accepts and answers.

Request bodies are parsed by hand (serve/schemas.py), so FastAPI cannot derive their schemas;
they are written here instead, as strict as the validation: the same counts, the float32 range,
no extra keys. Every status a route can answer is listed with its body and headers. The whole
document is checked against the running server by schemathesis (tests/test_openapi_conformance.py).

One rule cannot be written in JSON Schema: in a KServe v2 request, `data` holds N x F values for
`shape` [N, F]. The description says so. For an image model (`ImageDocument`) the scoring routes
take image bodies instead; that a binary body or a base64 string is a decodable PNG or JPEG within
the size limits is likewise said in words, not in the schema.
"""

from __future__ import annotations

import math

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from gan_jax.data.cases import F32_MAX
from gan_jax.serve.uploads import IMAGE_TYPES

JSON = "application/json"
_ERROR = {
    "type": "object",
    "required": ["error", "field"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, after the field at fault"},
        "field": {"type": ["string", "null"], "description": "the field, line or column at fault"},
    },
}
_INTERNAL = {
    "type": "object",
    "required": ["error", "request_id"],
    "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}},
}
_ERROR_TEXT = {
    400: "The body is empty or not valid JSON (NaN and Infinity are not JSON).",
    401: "Missing or wrong bearer token.",
    404: "No model of that name is served here.",
    405: "Method not allowed; the Allow header lists the methods that are.",
    413: "The body is larger than the server's limit (--max-body-bytes).",
    415: "The content type is neither application/json nor text/csv.",
    422: "A case or tensor failed validation; `error` names the field, line or column.",
}
# The same statuses where an image is uploaded.
_IMAGE_ERROR_TEXT = {
    **_ERROR_TEXT,
    400: "The body is empty.",
    413: "The body is larger than --max-body-bytes, or the image declares more pixels than "
    "--max-image-side / --max-image-pixels allow (checked before decoding: decompression bombs land here).",
    415: "The content type is not image/png or image/jpeg, or the body is not a PNG or JPEG image.",
    422: "The image is corrupt or truncated.",
}
_BINARY = {"type": "string", "format": "binary"}


def _json(schema: dict) -> dict:
    return {JSON: {"schema": schema}}


def _error(status: int, texts: dict = _ERROR_TEXT) -> dict:
    response = {"description": texts[status], "content": _json(_ERROR)}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}
    if status == 405:
        response["headers"] = {"Allow": {"schema": {"type": "string"}, "required": True}}
    return response


def _responses(
    ok: dict, *errors: int, protected: bool = True, ready: dict | None = None, texts: dict = _ERROR_TEXT
) -> dict:
    out = {"200": ok}
    for status in sorted({*errors, *([401] if protected else [])}):
        out[str(status)] = _error(status, texts)
    if ready is not None:
        out["503"] = ready
    out["500"] = {
        "description": "Unexpected failure (also: the model's probability is not finite); "
        "quote request_id when reporting it.",
        "content": _json(_INTERNAL),
    }
    return out


def _object(properties: dict, required: list[str] | None = None, extra: bool = False) -> dict:
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }
    if not extra:
        schema["additionalProperties"] = False
    return schema


class _ModelDocument:
    """What both kinds of model share: names, limits and the response schemas."""

    def __init__(self, model, max_batch: int):
        self.labels = list(model.label_names)
        self.model_name = model.name
        self.max_batch = max_batch

    def prediction(self) -> dict:
        return _object(
            {
                "label": {"type": "string", "enum": self.labels},
                "malignant_probability": {"type": "number", "minimum": 0, "maximum": 1},
            }
        )

    def predictions(self, version_key: str = "model_version") -> dict:
        items = {"type": "array", "items": self.prediction()}
        return _object({"predictions": items, version_key: {"type": "string"}})

    def native_response(self) -> dict:
        single = _object({**self.prediction()["properties"], "model_version": {"type": "string"}})
        return {"oneOf": [single, self.predictions()]}

    def v2_response(self) -> dict:
        output = _object(
            {
                "name": {"type": "string"},
                "datatype": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "data": {"type": "array", "items": {"type": "number"}},
            }
        )
        return _object(
            {
                "id": {"type": "string"},
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "outputs": {"type": "array", "items": output},
            },
            ["model_name", "model_version", "outputs"],
        )


def document(model, max_batch: int):
    """The document's model-dependent pieces: an `ImageDocument` for an image model, else a `Document`."""
    if getattr(model, "kind", "table") == "image":
        return ImageDocument(model, max_batch)
    return Document(model, max_batch)


class Document(_ModelDocument):
    """The pieces of the document that depend on the served model (a table model)."""

    def __init__(self, model, max_batch: int):
        super().__init__(model, max_batch)
        self.names = tuple(model.feature_names)
        bounds = getattr(model, "bounds", None)
        n = len(self.names)
        low, high = (
            ([-F32_MAX] * n, [F32_MAX] * n) if bounds is None else (list(map(float, b)) for b in bounds)
        )
        # Integer digits a CSV value may have and stay inside every feature's range.
        self.csv_digits = max(1, int(math.floor(math.log10(min(min(high), -max(low))))))
        self.numbers = [{"type": "number", "minimum": lo, "maximum": hi} for lo, hi in zip(low, high)]

    # -- requests --------------------------------------------------------------------------------

    def case(self) -> dict:
        n = len(self.names)
        by_name = _object(dict(zip(self.names, self.numbers)))
        by_name["description"] = "keyed by feature name (scikit-learn and Kaggle spellings are accepted too)"
        ordered = {
            "type": "array",
            "prefixItems": self.numbers,
            "items": False,
            "minItems": n,
            "maxItems": n,
            "description": f"the {n} features in the order {', '.join(self.names)}",
        }
        return {"oneOf": [by_name, ordered]}

    def instances(self) -> dict:
        return {"type": "array", "items": self.case(), "minItems": 1, "maxItems": self.max_batch}

    def native_request(self) -> dict:
        parameters = {"type": "object", "description": "accepted and ignored (Vertex AI / SageMaker clients)"}
        one = _object({"features": self.case(), "parameters": parameters}, ["features"])
        many = _object({"instances": self.instances(), "parameters": parameters}, ["instances"])
        return {"oneOf": [one, many, self.instances()]}

    def vertex_request(self) -> dict:
        parameters = {"type": "object", "description": "accepted and ignored"}
        return _object({"instances": self.instances(), "parameters": parameters}, ["instances"])

    def csv_request(self) -> dict:
        # 30 plain decimals per line, one case per line: what the parser takes, as a pattern. A
        # header row naming the features is also accepted (see the operation's description).
        value = rf"-?[0-9]{{1,{self.csv_digits}}}(\.[0-9]{{1,10}})?"
        row = rf"{value}(,{value}){{{len(self.names) - 1}}}"
        return {"type": "string", "pattern": rf"^({row}\n){{1,{self.max_batch}}}$"}

    def v2_request(self) -> dict:
        n = len(self.names)
        datatypes = ["FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64"]
        rows = {
            "type": "array",
            "minItems": 1,
            "maxItems": self.max_batch,
            "items": {
                "type": "array",
                "prefixItems": self.numbers,
                "items": False,
                "minItems": n,
                "maxItems": n,
            },
        }
        tensor = _object(
            {
                "name": {"type": "string"},
                "shape": {
                    "type": "array",
                    "prefixItems": [
                        {"type": "integer", "minimum": 1, "maximum": self.max_batch},
                        {"type": "integer", "const": n},
                    ],
                    "minItems": 2,
                    "maxItems": 2,
                    "items": False,
                },
                "datatype": {"type": "string", "enum": datatypes},
                "data": rows,
                "parameters": {"type": "object"},
            },
            ["name", "shape", "datatype", "data"],
        )
        return _v2_request(tensor)


class ImageDocument(_ModelDocument):
    """The pieces of the document that depend on the served image model."""

    def __init__(self, model, max_batch: int):
        super().__init__(model, max_batch)
        self.shape = tuple(model.input_shape)

    def upload(self) -> dict:
        return {t: {"schema": _BINARY} for t in IMAGE_TYPES}

    def v2_request(self) -> dict:
        h, w, c = self.shape
        pixel = {"type": "integer", "minimum": 0, "maximum": 255}
        nested = pixel
        for size in (c, w, h):
            nested = {"type": "array", "items": nested, "minItems": size, "maxItems": size}
        images = {"type": "array", "items": nested, "minItems": 1, "maxItems": self.max_batch}
        dims = [{"type": "integer", "const": d} for d in self.shape]
        shape = {
            "type": "array",
            "prefixItems": [{"type": "integer", "minimum": 1, "maximum": self.max_batch}, *dims],
            "minItems": 4,
            "maxItems": 4,
            "items": False,
        }
        tensor = _object(
            {
                "name": {"type": "string"},
                "shape": shape,
                "datatype": {"type": "string", "const": "UINT8"},
                "data": images,
                "parameters": {"type": "object"},
            },
            ["name", "shape", "datatype", "data"],
        )
        return _v2_request(tensor)

    def vertex_request(self) -> dict:
        b64 = {"type": "string", "contentEncoding": "base64", "description": "a PNG or JPEG, base64-encoded"}
        instances = {
            "type": "array",
            "items": _object({"b64": b64}),
            "minItems": 1,
            "maxItems": self.max_batch,
        }
        parameters = {"type": "object", "description": "accepted and ignored"}
        return _object({"instances": instances, "parameters": parameters}, ["instances"])


def _v2_request(tensor: dict) -> dict:
    """A KServe v2 request of one input tensor."""
    inputs = {"type": "array", "items": tensor, "minItems": 1, "maxItems": 1}
    return _object({"id": {"type": "string"}, "inputs": inputs, "parameters": {"type": "object"}}, ["inputs"])


def _flag(name: str) -> dict:
    return _object({name: {"type": "boolean"}})


def _ok(schema: dict, text: str = "OK") -> dict:
    return {"description": text, "content": _json(schema)}


def _not_ready(schema: dict) -> dict:
    return {"description": "The model is still loading.", "content": _json(schema)}


def _body(content: dict) -> dict:
    return {"requestBody": {"required": True, "content": content}}


def operations(doc, vertex_health: str | None, vertex_predict: str | None) -> dict:
    """(METHOD, path) -> the OpenAPI fields of that operation that this module owns."""
    name = [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": [doc.model_name]},
        }
    ]
    scoring = _image_scoring if isinstance(doc, ImageDocument) else _table_scoring
    ops = {**_common(doc, name), **scoring(doc, name)}
    if vertex_health and ("get", vertex_health) not in ops:
        ops["get", vertex_health] = {
            "responses": _responses(_ok(_flag("ready")), protected=False, ready=_not_ready(_flag("ready")))
        }
    if vertex_predict and ("post", vertex_predict) not in ops:
        texts = _IMAGE_ERROR_TEXT if isinstance(doc, ImageDocument) else _ERROR_TEXT
        errors = (400, 413, 415, 422) if isinstance(doc, ImageDocument) else (400, 413, 422)
        ops["post", vertex_predict] = {
            **_body(_json(doc.vertex_request())),
            "responses": _responses(_ok(doc.predictions("deployedModelVersion")), *errors, texts=texts),
        }
    return ops


def _common(doc, name: list) -> dict:
    """The operations that read no body: the same for every kind of model."""
    ready_flag = _object({"name": {"type": "string"}, "ready": {"type": "boolean"}})
    server = _object(
        {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        }
    )
    metadata = {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"]}
    return {
        ("get", "/model"): {"responses": _responses(_ok({"type": "object"}, "The served bundle"))},
        ("get", "/v2"): {"responses": _responses(_ok(server))},
        ("get", "/v2/health/live"): {"responses": _responses(_ok(_flag("live")), protected=False)},
        ("get", "/v2/health/ready"): {
            "responses": _responses(_ok(_flag("ready")), protected=False, ready=_not_ready(_flag("ready")))
        },
        ("get", "/v2/models/{name}"): {"parameters": name, "responses": _responses(_ok(metadata), 404)},
        ("get", "/v2/models/{name}/ready"): {
            "parameters": name,
            "responses": _responses(_ok(ready_flag), 404, ready=_not_ready(ready_flag)),
        },
        ("get", "/ping"): {
            "responses": _responses(
                {"description": "Ready (empty body)."},
                protected=False,
                ready={"description": "Still loading (empty body)."},
            )
        },
        ("get", "/metrics"): {
            "responses": _responses(
                {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            )
        },
    }


def _table_scoring(doc: Document, name: list) -> dict:
    csv = {"text/csv": {"schema": {"type": "string"}}}
    infer_text = (
        "One FP tensor `input-0` of shape [N, 30] whose `data` holds N rows of 30 values in feature "
        "order (N must equal the number of rows). One tensor per feature, named by the feature, "
        "shape [N], is also accepted."
    )
    return {
        ("post", "/predict"): {
            **_body(_json(doc.native_request())),
            "responses": _responses(_ok(doc.native_response()), 400, 413, 422),
        },
        ("post", "/v2/models/{name}/infer"): {
            "parameters": name,
            "description": infer_text,
            **_body(_json(doc.v2_request())),
            "responses": _responses(_ok(doc.v2_response()), 400, 404, 413, 422),
        },
        ("post", "/invocations"): {
            **_body({**_json(doc.native_request()), "text/csv": {"schema": doc.csv_request()}}),
            "responses": _responses(
                {"description": "OK", "content": {**_json(doc.predictions()), **csv}}, 400, 413, 415, 422
            ),
        },
    }


def _image_scoring(doc: ImageDocument, name: list) -> dict:
    csv = {"text/csv": {"schema": {"type": "string"}}}
    h, w, c = doc.shape
    upload_text = (
        f"The body is one PNG or JPEG image, resized to the model's {h} x {w} x {c} as in training. "
        "Its width and height are checked from the header before it is decoded."
    )
    infer_text = (
        f"One UINT8 tensor `input-0` of shape [N, {h}, {w}, {c}] (images, height, width, channels) "
        "whose `data` holds the pixel values 0..255, nested as the shape or flat in row-major order."
    )
    single = _object({**doc.prediction()["properties"], "model_version": {"type": "string"}})
    errors = (400, 413, 415, 422)
    return {
        ("post", "/predict"): {
            "description": upload_text,
            **_body(doc.upload()),
            "responses": _responses(_ok(single), *errors, texts=_IMAGE_ERROR_TEXT),
        },
        ("post", "/v2/models/{name}/infer"): {
            "parameters": name,
            "description": infer_text,
            **_body(_json(doc.v2_request())),
            "responses": _responses(_ok(doc.v2_response()), 400, 404, 413, 422),
        },
        ("post", "/invocations"): {
            "description": upload_text,
            **_body(doc.upload()),
            "responses": _responses(
                {"description": "OK", "content": {**_json(doc.predictions()), **csv}},
                *errors,
                texts=_IMAGE_ERROR_TEXT,
            ),
        },
    }


def _set_auth(spec: dict, auth: bool) -> None:
    """With a token, operations that answer 401 require the bearer scheme; without one, no
    operation answers 401."""
    if auth:
        spec["components"] = {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}
    for item in spec["paths"].values():
        for operation in item.values():
            if not auth:
                operation["responses"].pop("401", None)
            elif "401" in operation["responses"]:
                operation["security"] = [{"bearer": []}]


def install(
    app: FastAPI, doc: Document, vertex_health: str | None, vertex_predict: str | None, auth: bool
) -> None:
    """Replaces FastAPI's generated document with one whose operations say exactly what the
    server does (the generated parts — paths, tags, summaries — stay)."""
    ops = operations(doc, vertex_health, vertex_predict)

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            for (method, path), fields in ops.items():
                operation = spec["paths"][path][method]
                operation.pop("requestBody", None)
                operation.update(fields)
            spec.pop("components", None)  # FastAPI's validation-error models: this server never sends them
            _set_auth(spec, auth)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi
