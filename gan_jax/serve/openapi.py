"""The OpenAPI document: the single source of what the server accepts and answers.

The web layer is Starlette, not FastAPI: every body is parsed by hand (serve/schemas.py,
serve/v2.py) because a pydantic model per case costs more than the model, and the binary tensor
extension (JSON header + raw bytes) is no JSON model at all. So no framework derives the
document; it is written here, as strict as the validation (the same counts, the float32 range,
no extra keys), with every status a route can answer, and served as /openapi.json. The whole
document is checked against the running server by schemathesis (tests/test_openapi_conformance.py),
and the app's routes against the document's paths (tests/test_serve.py).

The bodies' schemas and the scoring operations are in serve/openapi_parts.py; this module
assembles the document (the operations every model has, tags, summaries, auth).
"""

from __future__ import annotations

from gan_jax.serve.openapi_base import body, flag, json_content, not_ready, obj, ok, responses


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
    ops = {**_common(doc, name), **doc.scoring(name)}
    if vertex_health and ("get", vertex_health) not in ops:
        ops["get", vertex_health] = {
            "responses": responses(ok(flag("ready")), protected=False, ready=not_ready(flag("ready")))
        }
    if vertex_predict and ("post", vertex_predict) not in ops:
        ops["post", vertex_predict] = {
            **body(json_content(doc.vertex_request())),
            "responses": responses(
                ok(doc.predictions("deployedModelVersion")), *doc.vertex_errors, texts=doc.texts
            ),
        }
    return ops


def _common(doc, name: list) -> dict:
    """The operations that read no body: the same for every kind of model."""
    ready_flag = obj({"name": {"type": "string"}, "ready": {"type": "boolean"}})
    server = obj(
        {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        }
    )
    metadata = {"type": "object", "required": ["name", "versions", "platform", "inputs", "outputs"]}
    return {
        ("get", "/model"): {"responses": responses(ok({"type": "object"}, "The served bundle"))},
        ("get", "/v2"): {"responses": responses(ok(server))},
        ("get", "/v2/health/live"): {"responses": responses(ok(flag("live")), protected=False)},
        ("get", "/v2/health/ready"): {
            "responses": responses(ok(flag("ready")), protected=False, ready=not_ready(flag("ready")))
        },
        ("get", "/v2/models/{name}"): {"parameters": name, "responses": responses(ok(metadata), 404)},
        ("get", "/v2/models/{name}/ready"): {
            "parameters": name,
            "responses": responses(ok(ready_flag), 404, ready=not_ready(ready_flag)),
        },
        ("get", "/ping"): {
            "responses": responses(
                {"description": "Ready (empty body)."},
                protected=False,
                ready={"description": "Still loading (empty body)."},
            )
        },
        ("get", "/metrics"): {
            "responses": responses(
                {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            )
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


# (method, path) -> (tag, summary) of every documented route; serve/app.py serves exactly these.
SUMMARIES = {
    ("post", "/predict"): ("native", "Score one case or many (an image bundle: one PNG or JPEG body)"),
    ("get", "/model"): ("native", "The served bundle: version, inputs, metrics, config"),
    ("get", "/v2"): ("kserve-v2", "Server metadata"),
    ("get", "/v2/health/live"): ("kserve-v2", "Liveness"),
    ("get", "/v2/health/ready"): ("kserve-v2", "Readiness"),
    ("get", "/v2/models/{name}"): ("kserve-v2", "Model metadata"),
    ("get", "/v2/models/{name}/ready"): ("kserve-v2", "Model readiness"),
    ("post", "/v2/models/{name}/infer"): ("kserve-v2", "Score a tensor (Open Inference Protocol)"),
    ("get", "/ping"): ("sagemaker", "SageMaker health check"),
    ("post", "/invocations"): ("sagemaker", "SageMaker inference: JSON or CSV (an image bundle: one image)"),
    ("get", "/metrics"): ("operations", "Prometheus metrics"),
}


def build(
    doc, *, title: str, version: str, description: str, vertex_health, vertex_predict, auth: bool
) -> dict:
    """The whole OpenAPI 3.1 document of a server of `doc`'s model."""
    paths: dict = {}
    for (method, path), fields in operations(doc, vertex_health, vertex_predict).items():
        tag, summary = SUMMARIES.get((method, path), ("vertex-ai", f"Vertex AI {path}"))
        paths.setdefault(path, {})[method] = {"tags": [tag], "summary": summary, **fields}
    spec = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
    }
    _set_auth(spec, auth)
    return spec
