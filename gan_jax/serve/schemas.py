"""Request parsing and validation for every protocol, and the OpenAPI descriptions of the bodies.

Bodies are parsed with orjson and checked by hand (a pydantic model per case costs more than
the model itself). Every error is an `ApiError` whose message names the field at fault, e.g.
`instances[2].radius_mean: must be a number, got a string`. Values are never echoed back in
messages or logs (they are patient data).
"""

from __future__ import annotations

import csv
import functools
import io
import math

import numpy as np
import orjson

from gan_jax.data.cases import CaseError, CaseSchema, number, type_name


class ApiError(Exception):
    """A client error: HTTP `status`, a message, and the field at fault (if any)."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field

    def body(self) -> dict:
        return {"error": f"{self.field}: {self.message}" if self.field else self.message, "field": self.field}


def _unprocessable(parse):
    """Turns the case validator's CaseError into a 422 with the same words and field."""

    @functools.wraps(parse)
    def wrapped(*args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except CaseError as e:
            raise ApiError(422, e.problem, e.where) from None

    return wrapped


def loads(body: bytes):
    if not body:
        raise ApiError(400, "the request body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        # NaN and Infinity are not JSON, so they end up here too.
        raise ApiError(400, f"the body is not valid JSON ({str(e).split(':')[0]}); note NaN and Infinity "
                            "are not allowed") from None  # fmt: skip


class CaseParser(CaseSchema):
    """The case validator (`gan_jax.data.cases`) plus this server's batch limits."""

    def __init__(self, feature_names: tuple[str, ...], max_rows: int):
        super().__init__(feature_names)
        self.max_rows = max_rows

    @_unprocessable
    def cases(self, cases, field: str) -> np.ndarray:
        if not isinstance(cases, list):
            raise ApiError(422, f"must be a list of cases, got {type_name(cases)}", field)
        self.check_rows(len(cases), field)
        return np.asarray([self.from_json(c, f"{field}[{i}]") for i, c in enumerate(cases)], np.float32)

    def check_rows(self, n: int, field: str) -> None:
        if n == 0:
            raise ApiError(422, "the batch is empty; send at least one case", field)
        if n > self.max_rows:
            raise ApiError(413, f"{n} cases is more than this server's limit of {self.max_rows} per "
                                "request; split the batch or use gan-jax predict", field)  # fmt: skip


@_unprocessable
def native_cases(parser: CaseParser, body) -> tuple[np.ndarray, bool]:
    """x [N, F] and whether the body was a single case: {"features": case} or {"instances": [...]}
    (also the Vertex AI and SageMaker JSON form); a bare list of cases is accepted too."""
    if isinstance(body, list):
        return parser.cases(body, "body"), False
    if not isinstance(body, dict):
        raise ApiError(422, f"expected a JSON object, got {type_name(body)}", "body")
    if "features" in body:
        return np.asarray([parser.from_json(body["features"], "features")], np.float32), True
    if "instances" in body:
        return parser.cases(body["instances"], "instances"), False
    raise ApiError(
        422, 'expected {"features": case} for one case or {"instances": [case, ...]} for many', "body"
    )


@_unprocessable
def v2_inputs(parser: CaseParser, body) -> np.ndarray:
    """x [N, F] from an Open Inference Protocol (KServe v2) request: one tensor [N, F] in
    feature order, or one tensor [N] (or [N, 1]) per feature, named by the feature."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise ApiError(422, "expected an object with a non-empty 'inputs' list of tensors", "inputs")
    tensors = body["inputs"]
    for i, t in enumerate(tensors):
        if not isinstance(t, dict) or not {"name", "shape", "datatype", "data"} <= set(t):
            raise ApiError(422, "each input needs name, shape, datatype and data", f"inputs[{i}]")
    if len(tensors) == 1:
        x = _tensor(parser, tensors[0], "inputs[0]")
        if x.ndim != 2 or x.shape[1] != len(parser.names):
            raise ApiError(422, f"shape must be [N, {len(parser.names)}] (features in order), "
                                f"got {list(x.shape)}", "inputs[0].shape")  # fmt: skip
        return x
    by_name = {}
    for i, t in enumerate(tensors):
        j = parser.feature_index(t["name"])
        if j is None:
            raise ApiError(422, f"unknown feature {t['name']!r}", f"inputs[{i}].name")
        by_name[parser.names[j]] = _tensor(parser, t, f"inputs[{i}]").reshape(-1)
    missing = [n for n in parser.names if n not in by_name]
    if missing:
        raise ApiError(422, f"missing feature tensors: {', '.join(missing[:5])}", "inputs")
    if len({len(v) for v in by_name.values()}) != 1:
        raise ApiError(422, "every feature tensor must have the same length", "inputs")
    return np.stack([by_name[n] for n in parser.names], axis=1)


def _tensor(parser: CaseParser, t: dict, field: str) -> np.ndarray:
    if t["datatype"] not in ("FP32", "FP64", "FP16", "INT8", "INT16", "INT32", "INT64"):
        raise ApiError(422, f"datatype must be a number type such as FP32, got {t['datatype']!r}",
                       f"{field}.datatype")  # fmt: skip
    shape = t["shape"]
    if not (isinstance(shape, list) and shape and all(type(s) is int and s >= 0 for s in shape)):
        raise ApiError(422, "must be a list of non-negative integers", f"{field}.shape")
    flat = _flatten(t["data"], f"{field}.data")
    if len(flat) != math.prod(shape):
        raise ApiError(422, f"holds {len(flat)} values but shape {shape} needs {math.prod(shape)}",
                       f"{field}.data")  # fmt: skip
    parser.check_rows(shape[0], f"{field}.shape")
    values = [number(v, f"{field}.data[{i}]") for i, v in enumerate(flat)]
    return np.asarray(values, np.float32).reshape(shape)


def _flatten(data, field: str) -> list:
    if not isinstance(data, list):
        raise ApiError(422, f"must be a list, got {type_name(data)}", field)
    if data and isinstance(data[0], list):
        return [v for row in data for v in _flatten(row, field)]
    return data


@_unprocessable
def csv_cases(parser: CaseParser, body: bytes) -> np.ndarray:
    """x [N, F] from text/csv: one case per line, features in order; an optional header row
    naming the features (any common spelling) sets the column order instead. Errors name the
    line and column as `gan-jax predict` does for a file."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the CSV body is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    rows = [(reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)]
    columns, header = list(range(len(parser.names))), None
    if rows and not _is_number(rows[0][1][0]):
        line, header = rows.pop(0)
        columns = parser.columns(header, f"line {line} (header)", exact=True)
    parser.check_rows(len(rows), "body")
    out = np.empty((len(rows), len(parser.names)), np.float32)
    for r, (line, cells) in enumerate(rows):
        if len(cells) != len(parser.names):
            raise ApiError(422, f"expected {len(parser.names)} comma-separated values, got {len(cells)}",
                           f"line {line}")  # fmt: skip
        out[r] = parser.from_cells(cells, columns, "", line, header)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- OpenAPI descriptions (the bodies are parsed by hand above) -------------------------------


def case_schema(feature_names: tuple[str, ...]) -> dict:
    n = len(feature_names)
    by_name = {"type": "object", "properties": {f: {"type": "number"} for f in feature_names},
               "required": list(feature_names), "additionalProperties": False}  # fmt: skip
    ordered = {"type": "array", "items": {"type": "number"}, "minItems": n, "maxItems": n,
               "description": f"the {n} features in the order {', '.join(feature_names)}"}  # fmt: skip
    return {"oneOf": [by_name, ordered]}


def json_body(schema: dict, example: dict, extra: dict | None = None) -> dict:
    content = {"application/json": {"schema": schema, "example": example}, **(extra or {})}
    return {"requestBody": {"required": True, "content": content}}


def native_body(feature_names: tuple[str, ...]) -> dict:
    case = case_schema(feature_names)
    schema = {"oneOf": [
        {"type": "object", "properties": {"features": case}, "required": ["features"]},
        {"type": "object", "properties": {"instances": {"type": "array", "items": case}},
         "required": ["instances"]},
    ]}  # fmt: skip
    return json_body(schema, {"instances": [[0.0] * len(feature_names)]})


def v2_body(feature_names: tuple[str, ...]) -> dict:
    tensor = {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
        "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "example": "FP32"}, "data": {"type": "array"}}}  # fmt: skip
    properties = {"id": {"type": "string"}, "inputs": {"type": "array", "items": tensor}}
    schema = {"type": "object", "required": ["inputs"], "properties": properties}
    n = len(feature_names)
    example = {"inputs": [{"name": "input-0", "shape": [1, n], "datatype": "FP32", "data": [[0.0] * n]}]}
    return json_body(schema, example)
