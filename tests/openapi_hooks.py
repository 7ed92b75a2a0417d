"""schemathesis hooks for this server's OpenAPI document (loaded by tests/test_openapi_conformance.py,
and by the CLI with SCHEMATHESIS_HOOKS=tests.openapi_hooks).

JSON Schema cannot say that a KServe v2 tensor's `data` holds N rows for `shape` [N, 30] (a rule
between two fields). For requests meant to be valid, this sets N to the rows generated; requests
meant to be invalid are left alone.
"""

import schemathesis


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if not case.path.endswith("/infer") or case.meta is None or not case.meta.generation.mode.is_positive:
        return
    for tensor in (case.body or {}).get("inputs", []):
        if isinstance(tensor.get("shape"), list) and tensor["shape"] and isinstance(tensor.get("data"), list):
            tensor["shape"][0] = len(tensor["data"])
