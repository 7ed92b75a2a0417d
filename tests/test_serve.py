"""The prediction server, started for real (uvicorn on a free loopback port) and called with a
real HTTP client: every endpoint and contract, auth, every validation error, metrics, and
predictions equal to the in-process model's."""

import asyncio
import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn

from gan_jax.artifacts import bundle
from gan_jax.data import load_dataset
from gan_jax.serve import BundleModel, DataPlane, MicroBatcher, ServeSettings, create_app, from_bundle
from gan_jax.serve.predictor import TablePredictor
from gan_jax.serve.server import Server

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VERTEX = {"AIP_HEALTH_ROUTE": "/vertex/health", "AIP_PREDICT_ROUTE": "/vertex/predict"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_for(b, settings: ServeSettings | None = None, max_batch: int = 8, model=None):
    """The HTTP app of bundle `b` (its model replaced by `model`, if given)."""
    predictor = from_bundle(b, max_batch=max_batch)
    if model is not None:
        predictor.model = model
    return create_app(DataPlane(predictor, settings or ServeSettings()))


@contextlib.contextmanager
def running(app):
    """Serves `app` with uvicorn in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    with _serving(server):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def running_both(plane: DataPlane):
    """Serves `plane` over HTTP and (with settings.grpc_port) gRPC, as `gan-jax serve` does, in a
    thread; yields the HTTP base URL."""
    port = free_port()
    with _serving(Server(plane, "127.0.0.1", port, log_level="warning")):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _serving(server):
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        assert time.time() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def tiny_bundle(tiny_bundle_export):
    path = tiny_bundle_export[0]
    return path, bundle.load(path)


@pytest.fixture(scope="module")
def server(tiny_bundle):
    with pytest.MonkeyPatch.context() as mp:
        for k, v in VERTEX.items():
            mp.setenv(k, v)
        settings = ServeSettings.from_env(token=TOKEN, max_batch=8, max_body_bytes=20_000)
    app = app_for(tiny_bundle[1], settings)
    with running(app) as url, httpx.Client(base_url=url, headers=AUTH, timeout=10) as client:
        client.app_routes = app.routes
        yield client


@pytest.fixture(scope="module")
def cases(tiny_bundle):
    """Six real cases and the in-process model's malignant probabilities for them, computed as
    the server computes them: the six as one batch (padded to 8 rows)."""
    data = load_dataset()
    x = data.x[[0, 1, 19, 20, 100, 568]]
    proba = BundleModel(tiny_bundle[1], max_batch=8).predict(x)
    # XLA's CPU matrix kernels sum in a different order for small and large batches, so a row's
    # probability can move by one float32 ulp with the batch it is in; within that, any
    # batching gives the bundle's own answer.
    np.testing.assert_allclose(proba, tiny_bundle[1].predict_proba(x), rtol=0, atol=1e-7)
    return x, proba, data.feature_names


def named(row, names):
    return {n: float(v) for n, v in zip(names, row)}


def label(p):
    return "malignant" if p >= 0.5 else "benign"


# -- health, metadata, docs -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v2/health/live", "/v2/health/ready", "/ping", "/vertex/health", "/docs", "/openapi.json"]
)
def test_health_and_docs_are_open(server, path):
    r = httpx.get(f"{server.base_url}{path}")  # no token
    assert r.status_code == 200


def test_openapi_documents_every_contract(server):
    paths = server.get("/openapi.json").json()["paths"]
    for p in ("/predict", "/v2/models/{name}/infer", "/invocations", "/vertex/predict", "/metrics", "/ping"):
        assert p in paths
    body = paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "oneOf" in body


def test_the_document_and_the_routes_are_one_list(server):
    """The hand-written document is the single source: every route the app serves is in it
    with its method, and nothing else is (docs pages and their assets aside)."""
    app_routes = {
        (m.lower(), r.path)
        for r in server.app_routes
        for m in getattr(r, "methods", None) or ()
        if m != "HEAD" and not r.path.startswith(("/docs", "/redoc", "/openapi.json"))
    }
    documented = {(m, p) for p, ops in server.get("/openapi.json").json()["paths"].items() for m in ops}
    assert app_routes == documented


def test_kserve_metadata(server, tiny_bundle):
    version = tiny_bundle[1].model_version
    assert server.get("/v2").json()["version"] == version
    meta = server.get("/v2/models/gan_jax").json()
    assert meta["name"] == "gan_jax" and meta["versions"] == [version]
    assert meta["inputs"][0]["shape"] == [-1, 30] and len(meta["parameters"]["feature_names"]) == 30
    assert server.get("/v2/models/gan_jax/ready").json()["ready"] is True
    assert server.get("/v2/models/other").status_code == 404
    info = server.get("/model").json()
    assert info["checksum"] == tiny_bundle[1].checksum and info["config"]["schedule"]["ae_steps"] == 5


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}],
)
@pytest.mark.parametrize("path", ["/predict", "/invocations", "/v2/models/gan_jax/infer", "/vertex/predict"])
def test_scoring_needs_the_token(server, cases, headers, path):
    x, _, names = cases
    r = httpx.post(f"{server.base_url}{path}", json={"instances": [named(x[0], names)]}, headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in r.json()["error"]


def test_metrics_and_model_info_need_the_token(server):
    assert httpx.get(f"{server.base_url}/metrics").status_code == 401
    assert httpx.get(f"{server.base_url}/model").status_code == 401


# -- predictions equal the in-process model's -------------------------------------------------


def test_native_single_case_by_name_and_by_order(server, cases, tiny_bundle):
    x, _, names = cases
    alone = BundleModel(tiny_bundle[1], max_batch=8).predict(x[:1])[0]  # a batch of one, as served
    for features in (named(x[0], names), x[0].tolist()):
        r = server.post("/predict", json={"features": features})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["malignant_probability"] == float(alone)  # bit for bit
        assert body["label"] == label(alone) and body["model_version"] == tiny_bundle[1].model_version


def test_native_many_cases_and_other_spellings(server, cases):
    x, proba, names = cases
    sklearn_style = {f"mean {n[:-5]}" if n.endswith("_mean") else n: v for n, v in named(x[1], names).items()}
    instances = [named(x[0], names), sklearn_style, *x[2:].tolist()]
    body = server.post("/predict", json={"instances": instances}).json()
    assert [p["malignant_probability"] for p in body["predictions"]] == proba.tolist()
    assert [p["label"] for p in body["predictions"]] == [label(p) for p in proba]


def test_kserve_v2_infer(server, cases, tiny_bundle):
    x, proba, names = cases
    tensor = {"name": "input-0", "shape": [len(x), 30], "datatype": "FP32", "data": x.tolist()}
    r = server.post("/v2/models/gan_jax/infer", json={"id": "req-1", "inputs": [tensor]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-1" and body["model_version"] == tiny_bundle[1].model_version
    out = {o["name"]: o for o in body["outputs"]}
    assert out["malignant_probability"]["data"] == proba.tolist() and out["malignant_probability"][
        "shape"
    ] == [6]
    assert out["label"]["data"] == [int(p >= 0.5) for p in proba]
    # One tensor per feature, by name, flat data: the same answer.
    columns = [
        {"name": n, "shape": [len(x)], "datatype": "FP64", "data": x[:, j].tolist()}
        for j, n in enumerate(names)
    ]
    body = server.post("/v2/models/gan_jax/infer", json={"inputs": columns}).json()
    assert body["outputs"][0]["data"] == proba.tolist()
    assert server.post("/v2/models/nope/infer", json={"inputs": [tensor]}).status_code == 404


def test_sagemaker_json_and_csv(server, cases, tiny_bundle):
    x, proba, names = cases
    body = server.post("/invocations", json={"instances": x.tolist()}).json()
    assert body["model_version"] == tiny_bundle[1].model_version
    assert [p["malignant_probability"] for p in body["predictions"]] == proba.tolist()
    csv_rows = "\n".join(",".join(repr(float(v)) for v in row) for row in x)
    r = server.post("/invocations", content=csv_rows, headers={"Content-Type": "text/csv"})
    assert [p["malignant_probability"] for p in r.json()["predictions"]] == proba.tolist()
    # A header row sets the column order; Accept: text/csv answers in CSV.
    order = list(reversed(range(30)))
    header = ",".join(names[j] for j in order)
    rows = "\n".join(",".join(repr(float(row[j])) for j in order) for row in x)
    r = server.post(
        "/invocations",
        content=f"{header}\n{rows}\n",
        headers={"Content-Type": "text/csv; charset=utf-8", "Accept": "text/csv"},
    )
    assert r.headers["content-type"].startswith("text/csv")
    lines = [line.split(",") for line in r.text.strip().split("\n")]
    assert [float(p) for p, _ in lines] == proba.tolist() and [lab for _, lab in lines] == [
        label(p) for p in proba
    ]


def test_vertex_routes_from_the_environment(server, cases, tiny_bundle):
    x, proba, names = cases
    instances = [named(x[0], names), *x[1:].tolist()]
    r = server.post("/vertex/predict", json={"instances": instances, "parameters": {}})
    assert r.status_code == 200, r.text
    assert [p["malignant_probability"] for p in r.json()["predictions"]] == proba.tolist()
    assert server.post("/vertex/predict", json={"features": x[0].tolist()}).status_code == 422


def test_vertex_routes_naming_existing_routes_reuse_them(tiny_bundle, cases, monkeypatch):
    x, proba, _ = cases
    monkeypatch.setenv("AIP_HEALTH_ROUTE", "/ping")
    monkeypatch.setenv("AIP_PREDICT_ROUTE", "/predict")
    app = app_for(tiny_bundle[1], ServeSettings.from_env())
    with running(app) as url:  # no token: auth off
        assert httpx.get(f"{url}/ping").status_code == 200
        r = httpx.post(f"{url}/predict", json={"instances": x.tolist()})
        assert [p["malignant_probability"] for p in r.json()["predictions"]] == proba.tolist()
        assert httpx.post(f"{url}/predict", json={"features": x[0].tolist()}).json()["label"] in (
            "benign",
            "malignant",
        )


def test_concurrent_requests_all_get_their_own_answer(server, cases):
    x, proba, _ = cases

    async def main():
        async with httpx.AsyncClient(base_url=str(server.base_url), headers=AUTH) as client:
            rs = await asyncio.gather(
                *[client.post("/predict", json={"features": x[i % 6].tolist()}) for i in range(48)]
            )
            return [r.json()["malignant_probability"] for r in rs]

    # Merged into batches of whatever size arrived together: equal up to one float32 ulp.
    np.testing.assert_allclose(asyncio.run(main()), [proba[i % 6] for i in range(48)], rtol=0, atol=1e-7)


def test_micro_batcher_merges_one_tick_into_one_call(cases, tiny_bundle):
    x, proba, _ = cases
    batcher = MicroBatcher(BundleModel(tiny_bundle[1], max_batch=4), max_rows=4)

    async def main():
        return await asyncio.gather(*[batcher.predict(x[i : i + 1]) for i in range(6)])

    out = asyncio.run(main())
    np.testing.assert_allclose(np.concatenate(out), proba, rtol=0, atol=1e-7)
    assert batcher.calls == 2  # 6 requests in one tick, at most 4 rows per call


# -- validation: clear 4xx naming the field ---------------------------------------------------

GOOD = [1.0] * 30


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/predict", {"features": [1.0] * 29}, 422, "features: expected 30 features"),
        (
            "/predict",
            {"features": {"radius_mean": 1.0}},
            422,
            "features: missing 29 feature(s): texture_mean",
        ),
        (
            "/predict",
            {"features": {"radius_mean": 1.0, "tumour_size": 2}},
            422,
            "unknown feature 'tumour_size'",
        ),
        ("/predict", {"features": ["1.0", *GOOD[1:]]}, 422, "features[0]: must be a number, got a string"),
        ("/predict", {"features": [True, *GOOD[1:]]}, 422, "features[0]: must be a number, got a boolean"),
        ("/predict", {"features": [None, *GOOD[1:]]}, 422, "features[0]: must be a number, got null"),
        (
            "/predict",
            {"instances": [GOOD, [*GOOD[:3], 1e39, *GOOD[4:]]]},
            422,
            "instances[1][3]: must be a finite",
        ),
        ("/predict", {"instances": []}, 422, "instances: the batch is empty"),
        ("/predict", {"instances": [GOOD] * 9}, 422, "9 cases is more than this server's limit of 8"),
        ("/predict", {"instances": "all"}, 422, "instances: must be a list of cases"),
        ("/predict", {"instances": [7]}, 422, "instances[0]: a case must be an object"),
        ("/predict", {"cases": [GOOD]}, 422, 'body: expected {"features"'),
        ("/predict", [], 422, "body: the batch is empty"),
        ("/predict", 3, 422, "body: expected a JSON object"),
        (
            "/v2/models/gan_jax/infer",
            {"inputs": [{"name": "x", "shape": [1, 29], "datatype": "FP32", "data": GOOD[:29]}]},
            422,
            "inputs[0].shape: shape must be [N, 30]",
        ),
        (
            "/v2/models/gan_jax/infer",
            {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP32", "data": GOOD}]},
            422,
            "inputs[0].data: holds 30 values",
        ),
        (
            "/v2/models/gan_jax/infer",
            {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "BYTES", "data": ["1.0"] * 30}]},
            422,
            "inputs[0].datatype: datatype must be a number type such as FP32 (one of FP16, FP32, FP64, INT8",
        ),
        ("/v2/models/gan_jax/infer", {"inputs": []}, 422, "inputs: expected an object"),
        ("/v2/models/gan_jax/infer", {"inputs": [{"name": "x"}]}, 422, "inputs[0]: each input needs"),
        (
            "/invocations",
            {"instances": [{"radius_mean": "big"}]},
            422,
            "instances[0].radius_mean: must be a number",
        ),
    ],
)
def test_validation_errors_name_the_field(server, path, body, status, message):
    r = server.post(path, json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


@pytest.mark.parametrize(
    "content, headers, status, message",
    [
        (b'{"features": [NaN' + b", 1.0" * 29 + b"]}", {}, 400, "not valid JSON"),
        (b'{"features": [Infinity]}', {}, 400, "NaN and Infinity are not allowed"),
        (b"{not json", {}, 400, "not valid JSON"),
        (b"", {}, 400, "the request body is empty"),
        (b"x" * 20_001, {}, 413, "larger than this server's limit of 20000 bytes"),
    ],
)
def test_malformed_and_oversized_bodies(server, content, headers, status, message):
    r = server.post("/predict", content=content, headers={"Content-Type": "application/json", **headers})
    assert r.status_code == status and message in r.json()["error"]


def test_oversized_chunked_body_is_refused(server):
    def chunks():
        for _ in range(30):
            yield b" " * 1000

    r = server.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["error"]


@pytest.mark.parametrize(
    "content, content_type, status, message",
    [
        ("1,2,3\n", "text/csv", 422, "line 1: expected 30 comma-separated values, got 3"),
        (
            ",".join(["1"] * 29 + ["x"]) + "\n",
            "text/csv",
            422,
            "line 1, column 30 (fractal_dimension_worst): must be a number, got text",
        ),
        (
            "\n" + ",".join(["1"] * 29 + ["nan"]) + "\n",
            "text/csv",
            422,
            "line 2, column 30 (fractal_dimension_worst): must be a finite",
        ),
        (
            "radius_mean,foo\n1,2\n",
            "text/csv",
            422,
            "line 1 (header): the header lacks the feature column(s) texture_mean",
        ),
        ("", "text/csv", 422, "the batch is empty"),
        ("<xml/>", "application/xml", 415, "content type 'application/xml' is not supported"),
    ],
)
def test_sagemaker_csv_errors(server, content, content_type, status, message):
    r = server.post("/invocations", content=content, headers={"Content-Type": content_type})
    assert r.status_code == status and message in r.json()["error"]


def test_predict_and_the_server_refuse_the_same_cell_with_the_same_words(
    server, cases, tiny_bundle, tmp_path, capsys
):
    """Bug caught: three parsers with three rule sets (issue 11 §2) — `gan-jax predict` wrote
    "nan,benign" for a 1e39 cell that the server refused. Now one validator, one message."""
    from gan_jax import cli

    x, _, names = cases
    rows = [[repr(float(v)) for v in row] for row in x[:3]]
    rows[1][3] = "1e39"  # area_mean of the second case: finite for Python, inf in float32
    text = "\n".join(",".join(r) for r in [list(names), *rows]) + "\n"
    (tmp_path / "in.csv").write_text(text)
    argv = ["predict", str(tiny_bundle[0]), str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]
    assert cli.main(argv) == 2
    from_predict = (
        capsys.readouterr().err.strip().removeprefix(f"gan-jax predict: error: {tmp_path / 'in.csv'}: ")
    )
    assert from_predict.startswith("line 3, column 4 (area_mean): must be a finite number within the float32")

    r = server.post("/invocations", content=text, headers={"Content-Type": "text/csv"})
    assert (r.status_code, r.json()["error"]) == (422, from_predict)
    problem = from_predict.removeprefix("line 3, column 4 (area_mean): ")
    by_order = [x[0].tolist(), [*x[1, :3].tolist(), 1e39, *x[1, 4:].tolist()], x[2].tolist()]
    r = server.post("/predict", json={"instances": by_order})
    assert (r.status_code, r.json()["error"]) == (422, f"instances[1][3]: {problem}")
    r = server.post("/predict", json={"instances": [named(row, names) for row in by_order]})
    assert (r.status_code, r.json()["error"]) == (422, f"instances[1].area_mean: {problem}")
    tensor = {"name": "input-0", "shape": [3, 30], "datatype": "FP64", "data": by_order}
    r = server.post("/v2/models/gan_jax/infer", json={"inputs": [tensor]})
    assert (r.status_code, r.json()["error"]) == (422, f"inputs[0].data[33]: {problem}")


class NanModel(BundleModel):
    """The real model, except that its second row's probability is NaN."""

    def predict(self, x):
        proba = super().predict(x).copy()
        proba[1:2] = np.nan
        return proba


def test_a_non_finite_probability_is_a_500_never_a_label(tiny_bundle, cases):
    """Bug caught: NaN >= 0.5 is False, so a NaN probability was served as "benign" (and orjson
    writes the NaN as null)."""
    x, _, names = cases
    app = app_for(tiny_bundle[1], model=NanModel(tiny_bundle[1], max_batch=8))
    tensor = {"name": "input-0", "shape": [2, 30], "datatype": "FP32", "data": x[:2].tolist()}
    with running(app) as url:
        for path, body in [
            ("/predict", {"instances": x[:2].tolist()}),
            ("/invocations", {"instances": x[:2].tolist()}),
            ("/v2/models/gan_jax/infer", {"inputs": [tensor]}),
        ]:
            r = httpx.post(f"{url}{path}", json=body, headers={"X-Request-ID": "nan-probe"})
            assert r.status_code == 500, (path, r.text)
            assert r.json() == {"error": "internal server error", "request_id": "nan-probe"}


@pytest.mark.parametrize("path", ["/predict", "/invocations", "/vertex/predict"])
def test_values_the_model_cannot_score_are_refused_by_name(server, path, tiny_bundle):
    """Bug caught: every feature at 3e38 is valid float32, but the scaled value overflows and this
    model answered NaN (a 500, or before that "benign"). The server now refuses values more than
    1e6 scaler units from the training data, naming the field and the model's range."""
    row = [3e38] * 30
    r = server.post(path, json={"instances": [[1.0] * 30, row]})
    assert r.status_code == 422
    assert r.json()["error"].startswith("instances[1][0]: must be within [")
    assert (
        "for this model (1e+06 scaler units around its training data; check the units)" in r.json()["error"]
    )


def test_metrics_count_requests_and_latency(server, cases):
    server.post("/predict", json={"features": cases[0][0].tolist()})
    text = server.get("/metrics").text
    assert 'gan_jax_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'gan_jax_requests_total{method="POST",route="/predict",status="422"}' in text
    assert 'gan_jax_request_seconds_bucket{le="0.005",route="/predict"}' in text
    assert "gan_jax_model_call_rows_count" in text


# -- failures never crash the server or leak data ---------------------------------------------


class BrokenModel:
    version, buckets, bounds = "0", (1,), None

    def warmup(self):
        return 0.0

    def predict(self, x):
        raise RuntimeError(f"kaboom with {x.tolist()}")  # an error message that quotes the input


def test_unexpected_errors_are_500_with_a_request_id_and_no_data_in_logs(cases, caplog):
    x, _, names = cases
    secret = repr(float(x[0, 3]))  # area_mean of a real patient
    predictor = TablePredictor(
        BrokenModel(), feature_names=names, name="broken", label_names=("benign", "malignant"), max_batch=8
    )
    app = create_app(DataPlane(predictor))
    with caplog.at_level(logging.DEBUG), running(app) as url:
        r = httpx.post(f"{url}/predict", json={"features": x[0].tolist()}, headers={"X-Request-ID": "abc123"})
        assert r.status_code == 500
        assert r.json() == {"error": "internal server error", "request_id": "abc123"}
        r = httpx.post(f"{url}/predict", json={"features": x[0].tolist()})
        assert r.status_code == 500 and len(r.json()["request_id"]) == 32
        assert httpx.get(f"{url}/v2/health/live").status_code == 200  # still up
    server_logs = [rec for rec in caplog.records if rec.name.startswith(("gan_jax", "uvicorn"))]
    logged = "\n".join(rec.getMessage() for rec in server_logs)
    assert "abc123" in logged and "RuntimeError" in logged
    assert secret not in logged and "kaboom with [" not in logged and secret not in r.text


def test_the_serve_command_reads_the_cloud_environment(tiny_bundle, cases):
    """`gan-jax serve` as a container runs it: bundle, port and routes from the environment."""
    path, b = tiny_bundle
    x, proba, _ = cases
    port = free_port()
    env = {
        **os.environ,
        **VERTEX,
        "AIP_HTTP_PORT": str(port),
        "GAN_JAX_BUNDLE": str(path),
        "GAN_JAX_API_TOKEN": TOKEN,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gan_jax.cli", "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            assert proc.poll() is None and time.time() < deadline, (
                proc.stdout.read().decode() if proc.poll() else ""
            )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/vertex/health").status_code == 200:
                    break
            time.sleep(0.2)
        r = httpx.post(f"{url}/vertex/predict", json={"instances": x.tolist()}, headers=AUTH)
        got = [p["malignant_probability"] for p in r.json()["predictions"]]
        np.testing.assert_allclose(got, proba, rtol=0, atol=1e-7)
    finally:
        proc.terminate()
        proc.wait(20)
    # Start-up information at INFO, through uvicorn's formatter; nothing to warn about here.
    out = proc.stdout.read().decode()
    assert re.search(r"^INFO: +loaded the bundle in", out, re.M), out
    assert re.search(r"^INFO: +model gan_jax \(.*\) ready: compiled batch sizes", out, re.M), out
    assert "WARNING" not in out, out


@pytest.mark.parametrize("token", [TOKEN, None])
def test_start_up_is_info_and_only_open_auth_is_a_warning(tiny_bundle, caplog, token):
    """Bug caught: the server logged its start-up information at WARNING (issue 11 §7), so real
    warnings could not be told from it."""
    app = app_for(tiny_bundle[1], ServeSettings(token=token))
    with caplog.at_level(logging.DEBUG, logger="gan_jax"), running(app):
        pass
    ours = [r for r in caplog.records if r.name.startswith("gan_jax")]
    ready = [r.levelno for r in ours if "ready: compiled batch sizes" in r.getMessage()]
    assert ready == [logging.INFO]
    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert warnings == ([] if token else [warnings[0]]) and (token or "no API token set" in warnings[0])


def test_the_serve_command_refuses_a_bad_bundle(tmp_path, capsys):
    from gan_jax import cli

    assert cli.main(["serve", str(tmp_path)]) == 2
    assert "not a gan_jax bundle" in capsys.readouterr().err
    (tmp_path / "t").write_text("")
    assert cli.main(["serve", "--echo", "--token-file", str(tmp_path / "t")]) == 2
    assert "token file" in capsys.readouterr().err


def test_the_bundle_kind_is_decided_once():
    """Issue 20: 14 `kind == "image"` switches across bundle.py and serve/. The kind is now picked
    in one place each (bundle_kinds.kind_of, predictor.from_bundle); nothing else compares it."""
    import pathlib

    import gan_jax

    root = pathlib.Path(gan_jax.__file__).parent
    files = [*sorted((root / "serve").glob("*.py")), *sorted((root / "artifacts").glob("*bundle*.py"))]
    # `x.kind == "image"` and `getattr(x, "kind", "table") == "image"`
    switch = re.compile(r"""kind["']?(,\s*["']\w+["']\))?\s*[!=]=\s*["'](table|image)["']""")
    found = [
        f"{f.name}:{i}"
        for f in files
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if switch.search(line)
    ]
    assert found == []
