"""schemathesis hooks for this server's OpenAPI document (loaded by tests/test_openapi_conformance.py,
and by the CLI with SCHEMATHESIS_HOOKS=tests.openapi_hooks).

JSON Schema cannot say that a KServe v2 tensor's `data` holds N rows for `shape` [N, 30] (a rule
between two fields), that a binary body or a base64 string is a decodable PNG or JPEG, nor that a
binary-extension body (application/octet-stream) is a JSON header of the length the
Inference-Header-Content-Length header gives followed by the raw tensors it announces. For
requests meant to be valid, this sets N to the rows generated, puts a real image where one is
due and makes the binary body a real one; requests meant to be invalid are left alone.
"""

import base64
import io
import json

import numpy as np
import schemathesis
from PIL import Image


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)).save(buf, format=fmt)
    return buf.getvalue()


IMAGES = {"image/png": _image("PNG"), "image/jpeg": _image("JPEG")}


def _binary_infer_body(spec_path: str, schema: dict) -> tuple[bytes, int]:
    """A valid binary-extension request for the served model: one case of zeros (a table
    model's [1, F] FP32 row, or an image model's [1, H, W, C] UINT8 image)."""
    tensor = schema["properties"]["inputs"]["items"]
    tensor = tensor["oneOf"][0] if "oneOf" in tensor else tensor
    dims = [d["const"] for d in tensor["properties"]["shape"]["prefixItems"][1:]]
    datatype = tensor["properties"]["datatype"].get("const", "FP32")
    raw = np.zeros([1, *dims], np.uint8 if datatype == "UINT8" else np.float32).tobytes()
    header = {"inputs": [{"name": "input-0", "shape": [1, *dims], "datatype": datatype}]}
    header["inputs"][0]["parameters"] = {"binary_data_size": len(raw)}
    head = json.dumps(header).encode()
    return head + raw, len(head)


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.media_type in IMAGES:  # an image upload
        case.body = IMAGES[case.media_type]
        return
    if case.media_type == "application/octet-stream" and case.path.endswith("/infer"):
        json_schema = case.operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]
        case.body, length = _binary_infer_body(case.path, json_schema)
        case.headers = {**(case.headers or {}), "Inference-Header-Content-Length": str(length)}
        return
    for instance in (case.body or {}).get("instances", []) if isinstance(case.body, dict) else []:
        if isinstance(instance, dict) and "b64" in instance:  # Vertex AI, image model
            instance["b64"] = base64.b64encode(IMAGES["image/png"]).decode()
    if not case.path.endswith("/infer"):
        return
    for tensor in (case.body or {}).get("inputs", []):
        if isinstance(tensor.get("shape"), list) and tensor["shape"] and isinstance(tensor.get("data"), list):
            tensor["shape"][0] = len(tensor["data"])
        if tensor.get("datatype") == "BYTES" and isinstance(tensor.get("data"), list):  # images, base64
            tensor["data"] = [base64.b64encode(IMAGES["image/png"]).decode()] * len(tensor["data"])
