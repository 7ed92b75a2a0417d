"""The pieces of the OpenAPI document (serve/openapi.py assembles them): the request and response
schemas of each kind of model (`TableDocument`, `ImageDocument`, made by the predictor), written
as strict as the validation, and the scoring operations that use them.

One rule cannot be written in JSON Schema: in a KServe v2 request, `data` holds N x F values for
`shape` [N, F]. The description says so. For an image model the scoring routes take image bodies
instead; that a binary body or a base64 string is a decodable PNG or JPEG within the size limits
is likewise said in words, not in the schema.
"""

from __future__ import annotations

import math

from gan_jax.data.cases import F32_MAX
from gan_jax.serve.openapi_base import (
    BINARY,
    ERROR_TEXT,
    FLOAT_TYPES,
    IMAGE_ERROR_TEXT,
    INT_TYPES,
    body,
    json_content,
    obj,
    ok,
    responses,
)
from gan_jax.serve.uploads import IMAGE_TYPES


class _ModelDocument:
    """What both kinds of model share: names, limits and the response schemas."""

    texts = ERROR_TEXT  # what each error status means for this kind's bodies
    vertex_errors = (400, 413, 422)

    def __init__(self, predictor):
        self.labels = list(predictor.label_names)
        self.model_name = predictor.name
        self.max_batch = predictor.max_batch

    def prediction(self) -> dict:
        return obj(
            {
                "label": {"type": "string", "enum": self.labels},
                "malignant_probability": {"type": "number", "minimum": 0, "maximum": 1},
            }
        )

    def predictions(self, version_key: str = "model_version") -> dict:
        items = {"type": "array", "items": self.prediction()}
        return obj({"predictions": items, version_key: {"type": "string"}})

    def native_response(self) -> dict:
        single = obj({**self.prediction()["properties"], "model_version": {"type": "string"}})
        return {"oneOf": [single, self.predictions()]}

    def v2_response(self) -> dict:
        output = obj(
            {
                "name": {"type": "string", "enum": ["malignant_probability", "label"]},
                "datatype": {"type": "string", "enum": ["FP32", "INT32"]},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "data": {"type": "array", "items": {"type": "number"}},
            }
        )
        return obj(
            {
                "id": {"type": "string"},
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "outputs": {"type": "array", "items": output},
            },
            ["model_name", "model_version", "outputs"],
        )


class TableDocument(_ModelDocument):
    """The pieces of the document that depend on the served model (a table model)."""

    def __init__(self, predictor):
        super().__init__(predictor)
        self.names = tuple(predictor.feature_names)
        bounds = predictor.model.bounds
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
        by_name = obj(dict(zip(self.names, self.numbers)))
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
        one = obj({"features": self.case(), "parameters": parameters}, ["features"])
        many = obj({"instances": self.instances(), "parameters": parameters}, ["instances"])
        return {"oneOf": [one, many, self.instances()]}

    def vertex_request(self) -> dict:
        parameters = {"type": "object", "description": "accepted and ignored"}
        return obj({"instances": self.instances(), "parameters": parameters}, ["instances"])

    def csv_request(self) -> dict:
        # 30 plain decimals per line, one case per line: what the parser takes, as a pattern. A
        # header row naming the features is also accepted (see the operation's description).
        value = rf"-?[0-9]{{1,{self.csv_digits}}}(\.[0-9]{{1,10}})?"
        row = rf"{value}(,{value}){{{len(self.names) - 1}}}"
        return {"type": "string", "pattern": rf"^({row}\n){{1,{self.max_batch}}}$"}

    def v2_request(self) -> dict:
        """One tensor [N, F]: FP values within each feature's range, or INT values that are
        integers within both the feature's range and the datatype's."""
        tensors = [self._v2_tensor({"type": "string", "enum": FLOAT_TYPES}, self.numbers)]
        for datatype, (low, high) in INT_TYPES.items():
            ints = [
                {
                    "type": "integer",
                    "minimum": max(math.ceil(n["minimum"]), low),
                    "maximum": min(math.floor(n["maximum"]), high),
                }
                for n in self.numbers
            ]
            if all(i["minimum"] <= i["maximum"] for i in ints):
                tensors.append(self._v2_tensor({"type": "string", "const": datatype}, ints))
        return _v2_request(tensors)

    def _v2_tensor(self, datatype: dict, values: list[dict]) -> dict:
        n = len(self.names)
        rows = {
            "type": "array",
            "minItems": 1,
            "maxItems": self.max_batch,
            "items": {"type": "array", "prefixItems": values, "items": False, "minItems": n, "maxItems": n},
        }
        shape = {
            "type": "array",
            "prefixItems": [
                {"type": "integer", "minimum": 1, "maximum": self.max_batch},
                {"type": "integer", "const": n},
            ],
            "minItems": 2,
            "maxItems": 2,
            "items": False,
        }
        return obj(
            {
                "name": {"type": "string"},
                "shape": shape,
                "datatype": datatype,
                "data": rows,
                "parameters": {"type": "object"},
            },
            ["name", "shape", "datatype", "data"],
        )

    def scoring(self, name: list) -> dict:
        return table_scoring(self, name)


class ImageDocument(_ModelDocument):
    """The pieces of the document that depend on the served image model."""

    texts = IMAGE_ERROR_TEXT
    vertex_errors = (400, 413, 415, 422)

    def __init__(self, predictor):
        super().__init__(predictor)
        self.shape = tuple(predictor.shape)

    def scoring(self, name: list) -> dict:
        return image_scoring(self, name)

    def upload(self) -> dict:
        return {t: {"schema": BINARY} for t in IMAGE_TYPES}

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
        tensor = obj(
            {
                "name": {"type": "string"},
                "shape": shape,
                "datatype": {"type": "string", "const": "UINT8"},
                "data": images,
                "parameters": {"type": "object"},
            },
            ["name", "shape", "datatype", "data"],
        )
        b64 = {"type": "string", "contentEncoding": "base64", "description": "a PNG or JPEG, base64-encoded"}
        encoded = obj(
            {
                "name": {"type": "string"},
                "shape": {
                    "type": "array",
                    "prefixItems": [{"type": "integer", "minimum": 1, "maximum": self.max_batch}],
                    "minItems": 1,
                    "maxItems": 1,
                    "items": False,
                },
                "datatype": {"type": "string", "const": "BYTES"},
                "data": {"type": "array", "items": b64, "minItems": 1, "maxItems": self.max_batch},
                "parameters": obj({"content_type": {"type": "string", "const": "base64"}}),
            },
            ["name", "shape", "datatype", "data", "parameters"],
        )
        return _v2_request([tensor, encoded])

    def vertex_request(self) -> dict:
        b64 = {"type": "string", "contentEncoding": "base64", "description": "a PNG or JPEG, base64-encoded"}
        instances = {
            "type": "array",
            "items": obj({"b64": b64}),
            "minItems": 1,
            "maxItems": self.max_batch,
        }
        parameters = {"type": "object", "description": "accepted and ignored"}
        return obj({"instances": instances, "parameters": parameters}, ["instances"])


def _v2_request(tensors: list[dict]) -> dict:
    """A KServe v2 request of one input tensor (any of `tensors`), optionally naming the outputs
    wanted and whether they come back as binary."""
    tensor = tensors[0] if len(tensors) == 1 else {"oneOf": tensors}
    inputs = {"type": "array", "items": tensor, "minItems": 1, "maxItems": 1}
    output = obj(
        {
            "name": {"type": "string", "enum": ["malignant_probability", "label"]},
            "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}},
        },
        ["name"],
    )
    parameters = {"type": "object", "properties": {"binary_data_output": {"type": "boolean"}}}
    return obj(
        {
            "id": {"type": "string"},
            "inputs": inputs,
            "outputs": {"type": "array", "items": output},
            "parameters": parameters,
        },
        ["inputs"],
    )


def table_scoring(doc: TableDocument, name: list) -> dict:
    csv = {"text/csv": {"schema": {"type": "string"}}}
    infer_text = (
        "One FP tensor `input-0` of shape [N, 30] whose `data` holds N rows of 30 values in feature "
        "order (N must equal the number of rows). One tensor per feature, named by the feature, "
        "shape [N], is also accepted."
    )
    return {
        ("post", "/predict"): {
            **body(json_content(doc.native_request())),
            "responses": responses(ok(doc.native_response()), 400, 413, 422),
        },
        ("post", "/v2/models/{name}/infer"): _infer(doc, name, infer_text),
        ("post", "/invocations"): {
            **body({**json_content(doc.native_request()), "text/csv": {"schema": doc.csv_request()}}),
            "responses": responses(
                {"description": "OK", "content": {**json_content(doc.predictions()), **csv}},
                400,
                413,
                415,
                422,
            ),
        },
    }


def image_scoring(doc: ImageDocument, name: list) -> dict:
    csv = {"text/csv": {"schema": {"type": "string"}}}
    h, w, c = doc.shape
    upload_text = (
        f"The body is one PNG or JPEG image, resized to the model's {h} x {w} x {c} as in training. "
        "Its width and height are checked from the header before it is decoded."
    )
    infer_text = (
        f"One UINT8 tensor `input-0` of shape [N, {h}, {w}, {c}] (images, height, width, channels) "
        "whose `data` holds the pixel values 0..255, nested as the shape or flat in row-major order; "
        "or one BYTES tensor of shape [N] whose elements are PNG or JPEG images (in JSON, base64 "
        'strings with the tensor parameter `"content_type": "base64"`).'
    )
    single = obj({**doc.prediction()["properties"], "model_version": {"type": "string"}})
    errors = (400, 413, 415, 422)
    return {
        ("post", "/predict"): {
            "description": upload_text,
            **body(doc.upload()),
            "responses": responses(ok(single), *errors, texts=IMAGE_ERROR_TEXT),
        },
        ("post", "/v2/models/{name}/infer"): _infer(doc, name, infer_text),
        ("post", "/invocations"): {
            "description": upload_text,
            **body(doc.upload()),
            "responses": responses(
                {"description": "OK", "content": {**json_content(doc.predictions()), **csv}},
                *errors,
                texts=IMAGE_ERROR_TEXT,
            ),
        },
    }


_BINARY_TEXT = (
    " The binary tensor data extension is accepted too (what tritonclient sends by default): the "
    "body is the JSON request, then the raw little-endian tensors, with the JSON part's length in "
    "the `Inference-Header-Content-Length` header and each raw input's byte count in its "
    "`parameters.binary_data_size`. Outputs come back in raw form when a requested output says "
    '`"binary_data": true` or the request says `"binary_data_output": true`; the answer is then '
    "application/octet-stream: the JSON response (each raw output's `parameters.binary_data_size` "
    "in place of `data`), then the raw outputs, with the JSON part's length in the same header."
)


def _infer(doc, name: list, text: str) -> dict:
    """POST /v2/models/{name}/infer: JSON, or the binary tensor data extension."""
    length = {"schema": {"type": "integer"}, "description": "the length of the JSON part (binary answers)"}
    ok = {
        "description": "The outputs (all, or the ones requested, in their order).",
        "headers": {"Inference-Header-Content-Length": length},
        "content": {**json_content(doc.v2_response()), "application/octet-stream": {"schema": BINARY}},
    }
    return {
        # The Inference-Header-Content-Length request header is described in words, not as a
        # parameter: whether a value is valid depends on the body (its JSON part's length).
        "parameters": name,
        "description": text + _BINARY_TEXT,
        **body({**json_content(doc.v2_request()), "application/octet-stream": {"schema": BINARY}}),
        "responses": responses(ok, 400, 404, 413, 422),
    }
