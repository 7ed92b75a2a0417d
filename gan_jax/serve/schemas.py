"""Request parsing and validation for every protocol, and the OpenAPI descriptions of the bodies.

Bodies are parsed with orjson and checked by hand (a pydantic model per case costs more than
the model itself). Every error is an `ApiError` whose message names the field at fault, e.g.
`instances[2].radius_mean: must be a number, got a string`. Values are never echoed back in
messages or logs (they are patient data).
"""

from __future__ import annotations

import base64
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
        raise ApiError(
            400, f"the body is not valid JSON ({str(e).split(':')[0]}); note NaN and Infinity are not allowed"
        ) from None


class CaseParser(CaseSchema):
    """The case validator (`gan_jax.data.cases`) plus this server's batch limits."""

    def __init__(self, feature_names: tuple[str, ...], max_rows: int, bounds=None):
        super().__init__(feature_names, bounds)
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
        if n > self.max_rows:  # 422, not 413: the body may be small, it is the count that is refused
            raise ApiError(
                422,
                f"{n} cases is more than this server's limit of {self.max_rows} per "
                "request; split the batch or use gan-jax predict",
                field,
            )


@_unprocessable
def native_cases(parser: CaseParser, body) -> tuple[np.ndarray, bool]:
    """x [N, F] and whether the body was a single case: {"features": case} or {"instances": [...]}
    (also the Vertex AI and SageMaker JSON form, which may add a "parameters" object); a bare
    list of cases is accepted too. Nothing else is: the OpenAPI document says exactly this."""
    if isinstance(body, list):
        return parser.cases(body, "body"), False
    key = _only_key(body, ("features", "instances"))
    if key == "features":
        return np.asarray([parser.from_json(body["features"], "features")], np.float32), True
    return parser.cases(body["instances"], "instances"), False


def _only_key(body, keys: tuple[str, ...]) -> str:
    """The one key of `keys` that the JSON object `body` holds, besides an optional
    "parameters" object (which this model ignores); ApiError otherwise."""
    if not isinstance(body, dict):
        raise ApiError(422, f"expected a JSON object, got {type_name(body)}", "body")
    expected = " or ".join(f'{{"{k}": ...}}' for k in keys) + ', optionally with "parameters": {...}'
    given = [k for k in body if k != "parameters"]
    if len(given) != 1 or given[0] not in keys:
        raise ApiError(422, f"expected {expected}; got the key(s) {given}", "body")
    if not isinstance(body.get("parameters", {}), dict):
        raise ApiError(422, f"must be an object, got {type_name(body['parameters'])}", "parameters")
    return given[0]


def vertex_cases(parser: CaseParser, body) -> np.ndarray:
    """x [N, F] from a Vertex AI request: {"instances": [case, ...], "parameters": {...}}."""
    _only_key(body, ("instances",))
    return parser.cases(body["instances"], "instances")


V2_REQUEST_KEYS = ("id", "inputs", "parameters")
V2_TENSOR_KEYS = ("name", "shape", "datatype", "data", "parameters")


def _known_keys(obj: dict, known: tuple[str, ...], field: str) -> None:
    unknown = [k for k in obj if k not in known]
    if unknown:
        raise ApiError(422, f"unknown key(s) {unknown}; expected only {list(known)}", field)
    if not isinstance(obj.get("parameters", {}), dict):
        raise ApiError(422, f"must be an object, got {type_name(obj['parameters'])}", f"{field}.parameters")


@_unprocessable
def v2_inputs(parser: CaseParser, body) -> np.ndarray:
    """x [N, F] from an Open Inference Protocol (KServe v2) request: one tensor [N, F] in
    feature order, or one tensor [N] (or [N, 1]) per feature, named by the feature."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise ApiError(422, "expected an object with a non-empty 'inputs' list of tensors", "inputs")
    _known_keys(body, V2_REQUEST_KEYS, "body")
    if not isinstance(body.get("id", ""), str):
        raise ApiError(422, f"must be a string, got {type_name(body['id'])}", "id")
    tensors = body["inputs"]
    for i, t in enumerate(tensors):
        if not isinstance(t, dict) or not {"name", "shape", "datatype", "data"} <= set(t):
            raise ApiError(422, "each input needs name, shape, datatype and data", f"inputs[{i}]")
        _known_keys(t, V2_TENSOR_KEYS, f"inputs[{i}]")
        if not isinstance(t["name"], str):
            raise ApiError(422, f"must be a string, got {type_name(t['name'])}", f"inputs[{i}].name")
    if len(tensors) == 1:
        x = _tensor(parser, tensors[0], "inputs[0]")
        if x.ndim != 2 or x.shape[1] != len(parser.names):
            raise ApiError(
                422,
                f"shape must be [N, {len(parser.names)}] (features in order), got {list(x.shape)}",
                "inputs[0].shape",
            )
        return parser.array(x, lambda i: f"inputs[0].data[{i}]")
    by_name, tensor_of = {}, {}
    for i, t in enumerate(tensors):
        j = parser.feature_index(t["name"])
        if j is None:
            raise ApiError(422, f"unknown feature {t['name']!r}", f"inputs[{i}].name")
        by_name[parser.names[j]], tensor_of[j] = _tensor(parser, t, f"inputs[{i}]").reshape(-1), i
    missing = [n for n in parser.names if n not in by_name]
    if missing:
        raise ApiError(422, f"missing feature tensors: {', '.join(missing[:5])}", "inputs")
    if len({len(v) for v in by_name.values()}) != 1:
        raise ApiError(422, "every feature tensor must have the same length", "inputs")
    x = np.stack([by_name[n] for n in parser.names], axis=1)
    n = len(parser.names)
    return parser.array(x, lambda i: f"inputs[{tensor_of[i % n]}].data[{i // n}]")


def _tensor(parser: CaseParser, t: dict, field: str) -> np.ndarray:
    if t["datatype"] not in ("FP32", "FP64", "FP16", "INT8", "INT16", "INT32", "INT64"):
        raise ApiError(
            422, f"datatype must be a number type such as FP32, got {t['datatype']!r}", f"{field}.datatype"
        )
    shape = t["shape"]
    # JSON Schema counts 7.0 as an integer, and so does this check.
    if not (isinstance(shape, list) and shape and all(_is_count(s) for s in shape)):
        raise ApiError(422, "must be a list of non-negative integers", f"{field}.shape")
    shape = [int(s) for s in shape]
    flat = _flatten(t["data"], f"{field}.data")
    if len(flat) != math.prod(shape):
        raise ApiError(
            422, f"holds {len(flat)} values but shape {shape} needs {math.prod(shape)}", f"{field}.data"
        )
    parser.check_rows(shape[0], f"{field}.shape")
    values = [number(v, f"{field}.data[{i}]") for i, v in enumerate(flat)]
    return np.asarray(values, np.float64).reshape(shape)  # float32 after the bounds check


def _is_count(s) -> bool:
    return type(s) in (int, float) and math.isfinite(s) and s >= 0 and s == int(s)


def _flatten(data, field: str) -> list:
    if not isinstance(data, list):
        raise ApiError(422, f"must be a list, got {type_name(data)}", field)
    if data and isinstance(data[0], list):
        return [v for row in data for v in _flatten(row, field)]
    return data


def v2_images(body, shape: tuple[int, int, int], max_rows: int) -> np.ndarray:
    """uint8 images [N, H, W, C] from an Open Inference Protocol request for an image model: one
    UINT8 tensor of shape [N, H, W, C] (the model's H, W, C), `data` flat or nested, values
    integers 0..255."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise ApiError(422, "expected an object with a non-empty 'inputs' list of tensors", "inputs")
    _known_keys(body, V2_REQUEST_KEYS, "body")
    if not isinstance(body.get("id", ""), str):
        raise ApiError(422, f"must be a string, got {type_name(body['id'])}", "id")
    if len(body["inputs"]) != 1:
        raise ApiError(422, f"expected one image tensor, got {len(body['inputs'])}", "inputs")
    t, field = body["inputs"][0], "inputs[0]"
    if not isinstance(t, dict) or not {"name", "shape", "datatype", "data"} <= set(t):
        raise ApiError(422, "each input needs name, shape, datatype and data", field)
    _known_keys(t, V2_TENSOR_KEYS, field)
    if not isinstance(t["name"], str):
        raise ApiError(422, f"must be a string, got {type_name(t['name'])}", f"{field}.name")
    if t["datatype"] != "UINT8":
        raise ApiError(
            422, f"datatype must be UINT8 (pixel values 0..255), got {t['datatype']!r}", f"{field}.datatype"
        )
    want = f"[N, {', '.join(map(str, shape))}]"
    got = t["shape"]
    if not (isinstance(got, list) and len(got) == 4 and all(_is_count(s) for s in got)):
        raise ApiError(422, f"shape must be {want} (images, height, width, channels)", f"{field}.shape")
    got = [int(s) for s in got]
    if got[1:] != list(shape):
        raise ApiError(422, f"shape must be {want} (this model's image size), got {got}", f"{field}.shape")
    if not 1 <= got[0] <= max_rows:
        raise ApiError(422, f"{got[0]} images: send between 1 and {max_rows} per request", f"{field}.shape")
    flat = _flatten(t["data"], f"{field}.data")
    if len(flat) != math.prod(got):
        raise ApiError(
            422, f"holds {len(flat)} values but shape {got} needs {math.prod(got)}", f"{field}.data"
        )
    return _pixels(flat, f"{field}.data").reshape(got)


def _pixels(flat: list, field: str) -> np.ndarray:
    """uint8 values of a flat list of JSON numbers; integral floats such as 7.0 count as
    integers (as in JSON Schema), anything else outside 0..255 is refused by index."""
    for i, v in enumerate(flat):
        if type(v) not in (int, float):
            raise ApiError(422, f"must be an integer 0..255, got {type_name(v)}", f"{field}[{i}]")
    values = np.asarray(flat, np.float64)
    bad = np.flatnonzero(~((values >= 0) & (values <= 255) & (values == np.round(values))))
    if bad.size:
        raise ApiError(422, "must be an integer 0..255", f"{field}[{int(bad[0])}]")
    return values.astype(np.uint8)


def vertex_images(body, decode, max_rows: int) -> np.ndarray:
    """uint8 images [N, H, W, C] from a Vertex AI request for an image model:
    {"instances": [{"b64": "<base64 PNG or JPEG>"}, ...]}, each decoded by `decode(bytes, field)`."""
    _only_key(body, ("instances",))
    instances = body["instances"]
    if not isinstance(instances, list) or not 1 <= len(instances) <= max_rows:
        raise ApiError(422, f"must be a list of 1 to {max_rows} images", "instances")
    out = []
    for i, instance in enumerate(instances):
        field = f"instances[{i}]"
        if not (
            isinstance(instance, dict) and list(instance) == ["b64"] and isinstance(instance["b64"], str)
        ):
            raise ApiError(422, 'expected {"b64": "<base64-encoded PNG or JPEG>"}', field)
        try:
            data = base64.b64decode(instance["b64"], validate=True)
        except ValueError:  # binascii.Error, or a non-ASCII string
            raise ApiError(422, "is not valid base64", f"{field}.b64") from None
        if not data:
            raise ApiError(422, "is empty; expected a base64-encoded PNG or JPEG", f"{field}.b64")
        out.append(decode(data, f"{field}.b64"))
    return np.stack(out)


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
            raise ApiError(
                422, f"expected {len(parser.names)} comma-separated values, got {len(cells)}", f"line {line}"
            )
        out[r] = parser.from_cells(cells, columns, "", line, header)
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
