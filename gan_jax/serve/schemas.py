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

import numpy as np

from gan_jax.data.cases import CaseError, CaseSchema, type_name
from gan_jax.serve.errors import ApiError


def _unprocessable(parse):
    """Turns the case validator's CaseError into a 422 with the same words and field."""

    @functools.wraps(parse)
    def wrapped(*args, **kwargs):
        try:
            return parse(*args, **kwargs)
        except CaseError as e:
            raise ApiError(422, e.problem, e.where) from None

    return wrapped


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


TABLE_DATATYPES = ("FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64")


@_unprocessable
def table_tensors(parser: CaseParser, tensors: list) -> np.ndarray:
    """x [N, F] from Open Inference Protocol tensors (`v2.Tensor`, any number datatype): one
    tensor [N, F] in feature order, or one tensor [N] (or [N, 1]) per feature, named by the
    feature. Values are checked as JSON cases are, by flat index (`inputs[0].data[33]`)."""
    for t in tensors:
        if t.datatype not in TABLE_DATATYPES:
            raise ApiError(
                422,
                f"datatype must be a number type such as FP32 (one of {', '.join(TABLE_DATATYPES)}), "
                f"got {t.datatype!r}",
                f"{t.field}.datatype",
            )
    if len(tensors) == 1:
        t = tensors[0]
        if len(t.shape) != 2 or t.shape[1] != len(parser.names):
            raise ApiError(
                422,
                f"shape must be [N, {len(parser.names)}] (features in order), got {list(t.shape)}",
                f"{t.field}.shape",
            )
        parser.check_rows(t.shape[0], f"{t.field}.shape")
        return parser.array(t.data, lambda i: f"{t.field}.data[{i}]")
    by_name, tensor_of = {}, {}
    for t in tensors:
        j = parser.feature_index(t.name)
        if j is None:
            raise ApiError(422, f"unknown feature {t.name!r}", f"{t.field}.name")
        by_name[parser.names[j]], tensor_of[j] = t.data.reshape(-1), t.field
    missing = [n for n in parser.names if n not in by_name]
    if missing:
        raise ApiError(422, f"missing feature tensors: {', '.join(missing[:5])}", "inputs")
    if len({len(v) for v in by_name.values()}) != 1:
        raise ApiError(422, "every feature tensor must have the same length", "inputs")
    x = np.stack([by_name[n] for n in parser.names], axis=1)
    parser.check_rows(len(x), "inputs")
    n = len(parser.names)
    return parser.array(x, lambda i: f"{tensor_of[i % n]}.data[{i // n}]")


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
