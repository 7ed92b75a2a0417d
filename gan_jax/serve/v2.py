"""The Open Inference Protocol (KServe v2) on the wire, as clients such as `tritonclient` send it:
HTTP JSON, the HTTP binary tensor data extension, and gRPC protobuf, each decoded into one
`Request` of numpy tensors and encoded back from the same outputs. It knows nothing of the model:
which tensors a model takes is its predictor's business (serve/predictor.py).

- HTTP JSON: `data` nested or flat, row-major. BYTES elements are strings (UTF-8), or base64
  when the tensor's parameters say `"content_type": "base64"` (MLServer's convention).
- HTTP binary extension (Triton's): the body is the JSON header then the raw tensors; the
  header's length is the `Inference-Header-Content-Length` HTTP header, and an input whose
  parameters give `binary_data_size` takes its bytes, in order, from after the header. Outputs are
  sent the same way when a requested output says `"binary_data": true` or the request's
  parameters say `"binary_data_output": true`.
- gRPC: `raw_input_contents` (little-endian, row-major) or the typed `contents`, read with
  `np.frombuffer`; outputs always go out as `raw_output_contents`, as Triton sends them.

BYTES in raw form is, per element, a 4-byte little-endian length then the bytes. Every problem
is an `ApiError` naming the field (4xx); nothing here answers 5xx.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import struct

import numpy as np
import orjson

from gan_jax.data.cases import type_name
from gan_jax.serve.errors import ApiError, loads

HEADER_LENGTH = "inference-header-content-length"
# The numeric datatypes and their little-endian numpy dtypes; BYTES is handled apart.
DTYPES = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
DATATYPES = (*DTYPES, "BYTES")
# gRPC's typed contents field of each datatype.
TYPED = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
REQUEST_KEYS = ("id", "inputs", "outputs", "parameters")
TENSOR_KEYS = ("name", "shape", "datatype", "data", "parameters")
OUTPUT_KEYS = ("name", "parameters")


@dataclasses.dataclass
class Tensor:
    """One input tensor. `data` is shaped `shape`: float64 for FP JSON values (range checks are
    the model's), the datatype's dtype otherwise, an object array of bytes for BYTES."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    field: str  # where it came from, for messages: "inputs[0]"


@dataclasses.dataclass
class Output:
    """A requested output: its name, and (HTTP) whether to send it as binary (None: the
    request's default)."""

    name: str
    binary: bool | None = None


@dataclasses.dataclass
class Request:
    id: str
    inputs: list[Tensor]
    outputs: list[Output] | None  # None: every output the model gives, in its order
    parameters: dict
    binary_output: bool = False  # HTTP: outputs not requested by name go out as binary


# -- HTTP -------------------------------------------------------------------------------------


def read_http(body: bytes, header_length: str | None) -> Request:
    """A request from an HTTP body: JSON, or (with `header_length`) the binary extension."""
    head, tail = body, b""
    if header_length is not None:
        field = "Inference-Header-Content-Length"
        if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
            raise ApiError(400, f"must be a byte count between 1 and the body's {len(body)} bytes", field)
        head, tail = body[: int(header_length)], body[int(header_length) :]
    obj = loads(head)
    request = _header(obj)
    binary = _Binary(tail)
    request.inputs = [_json_input(t, i, binary) for i, t in enumerate(obj["inputs"])]
    binary.check_used()
    return request


def _header(obj) -> Request:
    if not isinstance(obj, dict) or not isinstance(obj.get("inputs"), list) or not obj["inputs"]:
        raise ApiError(422, "expected an object with a non-empty 'inputs' list of tensors", "inputs")
    _known_keys(obj, REQUEST_KEYS, "body")
    if not isinstance(obj.get("id", ""), str):
        raise ApiError(422, f"must be a string, got {type_name(obj['id'])}", "id")
    binary_output = _flag(obj.get("parameters", {}), "binary_data_output", "parameters")
    outputs = None
    if "outputs" in obj:
        outputs = [_json_output(o, i) for i, o in enumerate(_list(obj["outputs"], "outputs"))]
    return Request(obj.get("id", ""), [], outputs, obj.get("parameters", {}), bool(binary_output))


def _flag(parameters: dict, key: str, field: str) -> bool | None:
    """A boolean parameter: absent is None, anything but true or false (null too) is a 422."""
    if key not in parameters:
        return None
    if not isinstance(parameters[key], bool):
        raise ApiError(422, "must be true or false", f"{field}.{key}")
    return parameters[key]


def _list(v, field: str) -> list:
    if not isinstance(v, list):
        raise ApiError(422, f"must be a list, got {type_name(v)}", field)
    return v


def _known_keys(obj: dict, known: tuple[str, ...], field: str) -> None:
    unknown = [k for k in obj if k not in known]
    if unknown:
        raise ApiError(422, f"unknown key(s) {unknown}; expected only {list(known)}", field)
    if not isinstance(obj.get("parameters", {}), dict):
        raise ApiError(422, f"must be an object, got {type_name(obj['parameters'])}", f"{field}.parameters")


def _json_output(o, i: int) -> Output:
    field = f"outputs[{i}]"
    if not isinstance(o, dict) or not isinstance(o.get("name"), str):
        raise ApiError(422, 'each requested output is {"name": ..., "parameters": {...}}', field)
    _known_keys(o, OUTPUT_KEYS, field)
    return Output(o["name"], _flag(o.get("parameters", {}), "binary_data", f"{field}.parameters"))


def _json_input(t, i: int, binary: _Binary) -> Tensor:
    field = f"inputs[{i}]"
    if not isinstance(t, dict) or not {"name", "shape", "datatype"} <= set(t):
        raise ApiError(422, "each input needs name, shape, datatype and data", field)
    _known_keys(t, TENSOR_KEYS, field)
    name, datatype, shape = _tensor_head(t["name"], t["datatype"], t["shape"], field)
    parameters = t.get("parameters", {})
    if "binary_data_size" in parameters:
        size = parameters["binary_data_size"]
        if "data" in t:
            raise ApiError(422, "give data or parameters.binary_data_size, not both", f"{field}.data")
        if type(size) is not int or size < 0:
            raise ApiError(422, "must be a byte count", f"{field}.parameters.binary_data_size")
        data = from_raw(binary.take(size, f"{field}.parameters.binary_data_size"), datatype, shape, field)
    elif "data" not in t:
        raise ApiError(422, "each input needs name, shape, datatype and data", field)
    else:
        data = _from_json(t["data"], datatype, shape, parameters, f"{field}.data")
    return Tensor(name, datatype, shape, data, field)


def _tensor_head(name, datatype, shape, field: str) -> tuple[str, str, tuple[int, ...]]:
    if not isinstance(name, str):
        raise ApiError(422, f"must be a string, got {type_name(name)}", f"{field}.name")
    if datatype not in DATATYPES:
        raise ApiError(
            422, f"must be one of {', '.join(DATATYPES)}, got {_short(datatype)}", f"{field}.datatype"
        )
    # JSON Schema counts 7.0 as an integer, and so does this check.
    if not (isinstance(shape, list) and all(_is_count(s) for s in shape)):
        raise ApiError(422, "must be a list of non-negative integers", f"{field}.shape")
    return name, datatype, tuple(int(s) for s in shape)


def _short(v) -> str:
    return repr(v)[:40] if isinstance(v, str) else type_name(v)


def _is_count(s) -> bool:
    return type(s) in (int, float) and math.isfinite(s) and 0 <= s < 2**53 and s == int(s)


class _Binary:
    """The raw tensors after the JSON header, handed out in order."""

    def __init__(self, data: bytes):
        self.data, self.offset = memoryview(data), 0

    def take(self, size: int, field: str) -> bytes:
        if self.offset + size > len(self.data):
            raise ApiError(
                400, f"asks for {size} bytes but only {len(self.data) - self.offset} are left", field
            )
        self.offset += size
        return self.data[self.offset - size : self.offset]

    def check_used(self) -> None:
        if self.offset != len(self.data):
            raise ApiError(
                400,
                f"{len(self.data) - self.offset} bytes after the header belong to no input "
                "(check each input's parameters.binary_data_size)",
                "body",
            )


def _flatten(data, field: str) -> list:
    if not isinstance(data, list):
        raise ApiError(422, f"must be a list, got {type_name(data)}", field)
    if data and isinstance(data[0], list):
        return [v for row in data for v in _flatten(row, field)]
    return data


def _check_count(n: int, shape: tuple[int, ...], field: str) -> None:
    if n != math.prod(shape):
        raise ApiError(422, f"holds {n} values but shape {list(shape)} needs {math.prod(shape)}", field)


def _from_json(data, datatype: str, shape: tuple[int, ...], parameters: dict, field: str) -> np.ndarray:
    flat = _flatten(data, field)
    _check_count(len(flat), shape, field)
    if datatype == "BYTES":
        return _json_bytes(flat, parameters.get("content_type") == "base64", field).reshape(shape)
    wanted = (bool,) if datatype == "BOOL" else (int, float)  # exact types: True is not a number
    for i, v in enumerate(flat):
        if type(v) not in wanted:
            kind = "true or false" if datatype == "BOOL" else "a number"
            raise ApiError(422, f"must be {kind}, got {type_name(v)}", f"{field}[{i}]")
    dtype = DTYPES[datatype]
    if dtype.kind == "f":
        return np.asarray(flat, np.float64).reshape(shape)  # the model checks ranges, by name
    if dtype.kind in "iu":
        return _integers(flat, dtype, datatype, field).reshape(shape)
    return np.asarray(flat, bool).reshape(shape)


def _integers(flat: list, dtype: np.dtype, datatype: str, field: str) -> np.ndarray:
    """Integral values within the datatype's range (7.0 counts as 7, as in JSON Schema)."""
    info = np.iinfo(dtype)
    values = np.asarray(flat, np.float64) if flat else np.zeros(0)
    bad = ~((values >= info.min) & (values <= info.max) & (values == np.round(values)))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        problem = f"must be an integer in [{info.min}, {info.max}] ({datatype})"
        raise ApiError(422, f"{problem}, got {type_name(flat[i])} outside it", f"{field}[{i}]")
    return np.asarray([int(v) for v in flat], dtype)


def _json_bytes(flat: list, is_base64: bool, field: str) -> np.ndarray:
    out = np.empty(len(flat), object)
    for i, v in enumerate(flat):
        if not isinstance(v, str):
            raise ApiError(422, f"must be a string, got {type_name(v)}", f"{field}[{i}]")
        if is_base64:
            try:
                out[i] = base64.b64decode(v, validate=True)
            except ValueError:  # binascii.Error, or a non-ASCII string
                raise ApiError(422, "is not valid base64", f"{field}[{i}]") from None
        else:
            out[i] = v.encode()
    return out


def from_raw(raw, datatype: str, shape: tuple[int, ...], field: str) -> np.ndarray:
    """A tensor from raw little-endian bytes (binary extension or gRPC raw contents)."""
    if datatype == "BYTES":
        values = _raw_bytes(bytes(raw), field)
        _check_count(len(values), shape, f"{field}.data")
        return values.reshape(shape)
    dtype = DTYPES[datatype]
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise ApiError(
            422,
            f"holds {len(raw)} bytes but shape {list(shape)} of {datatype} needs "
            f"{math.prod(shape) * dtype.itemsize}",
            f"{field}.data",
        )
    return np.frombuffer(raw, dtype).reshape(shape)


def _raw_bytes(raw: bytes, field: str) -> np.ndarray:
    """BYTES elements, each a 4-byte little-endian length then that many bytes."""
    out, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ApiError(422, "a BYTES element's 4-byte length is cut off", f"{field}.data")
        (n,) = struct.unpack_from("<I", raw, offset)
        if offset + 4 + n > len(raw):
            raise ApiError(422, f"a BYTES element says {n} bytes but fewer are left", f"{field}.data")
        out.append(raw[offset + 4 : offset + 4 + n])
        offset += 4 + n
    array = np.empty(len(out), object)
    array[:] = out
    return array


def raw_bytes(values) -> bytes:
    """BYTES elements in raw form (the inverse of `_raw_bytes`)."""
    return b"".join(struct.pack("<I", len(v)) + bytes(v) for v in values)


def select(request: Request, names: tuple[str, ...]) -> list[tuple[str, bool]]:
    """(name, binary) of each output to send: the requested ones in their order, else all.
    An unknown name is a 400 naming it."""
    if request.outputs is None:
        return [(n, request.binary_output) for n in names]
    chosen = []
    for i, o in enumerate(request.outputs):
        if o.name not in names:
            raise ApiError(
                400, f"unknown output {o.name!r}; this model gives {list(names)}", f"outputs[{i}].name"
            )
        chosen.append((o.name, request.binary_output if o.binary is None else o.binary))
    return chosen


def write_http(head: dict, outputs: list[tuple[str, str, np.ndarray, bool]]) -> tuple[bytes, int | None]:
    """The HTTP body for `head` (model_name, model_version, id) plus outputs (name, datatype,
    values, binary); the JSON header's length when any output is binary, else None."""
    tensors, raw = [], []
    for name, datatype, values, binary in outputs:
        tensor = {"name": name, "datatype": datatype, "shape": list(values.shape)}
        if binary:
            data = (
                raw_bytes(values.reshape(-1)) if datatype == "BYTES" else _little(values, datatype).tobytes()
            )
            tensor["parameters"] = {"binary_data_size": len(data)}
            raw.append(data)
        else:
            tensor["data"] = values.reshape(-1).tolist()
        tensors.append(tensor)
    header = orjson.dumps({**head, "outputs": tensors})
    if not raw:
        return header, None
    return b"".join([header, *raw]), len(header)


def _little(values: np.ndarray, datatype: str) -> np.ndarray:
    return np.ascontiguousarray(values, DTYPES[datatype])
