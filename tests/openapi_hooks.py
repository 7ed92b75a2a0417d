"""schemathesis hooks for this server's OpenAPI document (loaded by tests/test_openapi_conformance.py,
and by the CLI with SCHEMATHESIS_HOOKS=tests.openapi_hooks).

JSON Schema cannot say that a KServe v2 tensor's `data` holds N rows for `shape` [N, 30] (a rule
between two fields), nor that a binary body or a base64 string is a decodable PNG or JPEG. For
requests meant to be valid, this sets N to the rows generated and puts a real image where one is
due; requests meant to be invalid are left alone.
"""

import base64
import io

import numpy as np
import schemathesis
from PIL import Image


def _image(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)).save(buf, format=fmt)
    return buf.getvalue()


IMAGES = {"image/png": _image("PNG"), "image/jpeg": _image("JPEG")}


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.media_type in IMAGES:  # an image upload
        case.body = IMAGES[case.media_type]
        return
    for instance in (case.body or {}).get("instances", []) if isinstance(case.body, dict) else []:
        if isinstance(instance, dict) and "b64" in instance:  # Vertex AI, image model
            instance["b64"] = base64.b64encode(IMAGES["image/png"]).decode()
    if not case.path.endswith("/infer"):
        return
    for tensor in (case.body or {}).get("inputs", []):
        if isinstance(tensor.get("shape"), list) and tensor["shape"] and isinstance(tensor.get("data"), list):
            tensor["shape"][0] = len(tensor["data"])
