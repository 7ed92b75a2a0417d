"""The Open Inference Protocol as real clients send it (issue 20): Triton's own `tritonclient.http`
(its default binary tensor mode, JSON mode, with and without requested outputs) and
`tritonclient.grpc`, against one server (HTTP and gRPC on one data plane), on a table and an image
bundle, each answer compared with the bundle's own predictions (`Bundle.predict_proba`).

Bugs caught: requested outputs refused as unknown keys (422), the client's default binary body
refused as "not valid JSON" (400), outputs sent that were not asked for or in another order, and
any malformed binary or output variant answered with a 5xx or without naming the field.
"""

import io
import json
import struct

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from PIL import Image
from test_serve import AUTH, TOKEN, free_port, running_both
from tritonclient.utils import InferenceServerException

from gan_jax.data import load_dataset, nuclei
from gan_jax.serve import DataPlane, ServeSettings, from_bundle

GRPC_AUTH = {"authorization": f"Bearer {TOKEN}"}
OUTPUTS = ["malignant_probability", "label"]


def _serve(b, max_batch: int = 8):
    port = free_port()
    settings = ServeSettings(
        token=TOKEN, max_batch=max_batch, max_body_bytes=100_000, grpc_port=port, grpc_host="127.0.0.1"
    )
    with running_both(DataPlane(from_bundle(b, max_batch=max_batch), settings)) as url:
        http = triton_http.InferenceServerClient(url=url.removeprefix("http://"))
        grpc = triton_grpc.InferenceServerClient(url=f"127.0.0.1:{port}")
        yield url, http, grpc, f"127.0.0.1:{port}"
        http.close()
        grpc.close()


@pytest.fixture(scope="module")
def table(tiny_bundle_export):
    """(url, http client, gRPC client, x [6, 30], the bundle's probabilities for x, gRPC target)."""
    b = tiny_bundle_export[1]
    x = load_dataset().x[[0, 1, 19, 20, 100, 568]].astype(np.float32)
    for url, http, grpc, target in _serve(b):
        yield url, http, grpc, x, b.predict_proba(x), target


@pytest.fixture(scope="module")
def images(tiny_image_bundle_export):
    """(url, http client, gRPC client, uint8 images [3, 8, 8, 3], the bundle's probabilities, gRPC target)."""
    b = tiny_image_bundle_export[1]
    x = nuclei.generate(3, seed=5, size=8)[0]
    for url, http, grpc, target in _serve(b):
        yield url, http, grpc, x, b.predict_proba(x), target


def http_input(x, datatype, binary=True):
    t = triton_http.InferInput("input-0", list(x.shape), datatype)
    t.set_data_from_numpy(x, binary_data=binary)
    return t


def grpc_input(x, datatype):
    t = triton_grpc.InferInput("input-0", list(x.shape), datatype)
    t.set_data_from_numpy(x)
    return t


def check(result, proba, names=OUTPUTS):
    """The result holds exactly `names`, in order, equal to the bundle's answers."""
    response = result.get_response()
    outputs = response["outputs"] if isinstance(response, dict) else response.outputs
    got = [o["name"] if isinstance(o, dict) else o.name for o in outputs]
    assert got == names
    expected = {"malignant_probability": proba, "label": (proba >= 0.5).astype(np.int32)}
    for name in names:
        # Served in a batch padded to 8 rows: equal to the bundle's answer within float32 rounding.
        np.testing.assert_allclose(result.as_numpy(name), expected[name], rtol=0, atol=1e-6)
    if "label" in names:
        np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])


# -- tritonclient.http ------------------------------------------------------------------------


@pytest.mark.parametrize("served", ["table", "images"])
def test_http_default_binary_mode(served, request):
    """`set_data_from_numpy(x)` and no outputs: binary tensor in, binary outputs back."""
    _, http, _, x, proba, _ = request.getfixturevalue(served)
    datatype = "FP32" if x.dtype == np.float32 else "UINT8"
    check(http.infer("gan_jax", [http_input(x, datatype)], headers=dict(AUTH)), proba)


@pytest.mark.parametrize("served", ["table", "images"])
@pytest.mark.parametrize("binary_in", [True, False], ids=["binary-in", "json-in"])
@pytest.mark.parametrize("binary_out", [True, False], ids=["binary-out", "json-out"])
def test_http_requested_outputs(served, binary_in, binary_out, request):
    _, http, _, x, proba, _ = request.getfixturevalue(served)
    datatype = "FP32" if x.dtype == np.float32 else "UINT8"
    inputs = [http_input(x, datatype, binary_in)]
    for names in (["label"], ["malignant_probability"], ["label", "malignant_probability"]):
        outputs = [triton_http.InferRequestedOutput(n, binary_data=binary_out) for n in names]
        check(http.infer("gan_jax", inputs, outputs=outputs, headers=dict(AUTH)), proba, names)


def test_http_json_mode_is_plain_json(table):
    """binary_data=False everywhere: the body and the answer are plain JSON."""
    url, _, _, x, proba, _ = table
    body = {
        "inputs": [{"name": "input-0", "shape": [6, 30], "datatype": "FP32", "data": x.reshape(-1).tolist()}],
        "outputs": [{"name": "malignant_probability", "parameters": {"binary_data": False}}],
        "parameters": {"priority": 0},
    }
    r = httpx.post(f"{url}/v2/models/gan_jax/infer", json=body, headers=dict(AUTH))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in r.headers
    (out,) = r.json()["outputs"]
    assert out["name"] == "malignant_probability" and out["shape"] == [6]
    np.testing.assert_allclose(out["data"], proba, rtol=0, atol=1e-6)


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_http_bytes_tensor_of_png_images(images):
    """An image bundle takes a BYTES tensor of PNGs: binary from tritonclient, base64 in JSON."""
    import base64

    url, http, _, x, proba, _ = images
    encoded = np.array([png(image) for image in x], dtype=object)
    check(http.infer("gan_jax", [http_input(encoded, "BYTES")], headers=dict(AUTH)), proba)
    tensor = {
        "name": "input-0",
        "shape": [3],
        "datatype": "BYTES",
        "data": [base64.b64encode(bytes(b)).decode() for b in encoded],
        "parameters": {"content_type": "base64"},
    }
    r = httpx.post(f"{url}/v2/models/gan_jax/infer", json={"inputs": [tensor]}, headers=dict(AUTH))
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["outputs"][0]["data"], proba, rtol=0, atol=1e-6)


# -- tritonclient.grpc ------------------------------------------------------------------------


@pytest.mark.parametrize("served", ["table", "images"])
def test_grpc_with_and_without_requested_outputs(served, request):
    _, _, grpc, x, proba, _ = request.getfixturevalue(served)
    datatype = "FP32" if x.dtype == np.float32 else "UINT8"
    check(grpc.infer("gan_jax", [grpc_input(x, datatype)], headers=GRPC_AUTH), proba)
    for names in (["label"], ["label", "malignant_probability"]):
        outputs = [triton_grpc.InferRequestedOutput(n) for n in names]
        result = grpc.infer("gan_jax", [grpc_input(x, datatype)], outputs=outputs, headers=GRPC_AUTH)
        check(result, proba, names)


def test_grpc_bytes_tensor_of_png_images(images):
    _, _, grpc, x, proba, _ = images
    encoded = np.array([png(image) for image in x], dtype=object)
    check(grpc.infer("gan_jax", [grpc_input(encoded, "BYTES")], headers=GRPC_AUTH), proba)


# -- malformed variants: a 4xx naming the field, never a 5xx ----------------------------------


def binary_body(header: dict, raw: bytes) -> tuple[bytes, dict]:
    head = json.dumps(header).encode()
    return head + raw, {**AUTH, "Inference-Header-Content-Length": str(len(head))}


ROW = np.ones((1, 30), np.float32)
TENSOR = {"name": "input-0", "shape": [1, 30], "datatype": "FP32", "parameters": {"binary_data_size": 120}}


def _with(**changes):
    return {"inputs": [{**TENSOR, **changes}]}


@pytest.mark.parametrize(
    "header, raw, length, status, message",
    [
        (_with(), ROW.tobytes(), "abc", 400, "Inference-Header-Content-Length: must be a byte count"),
        (_with(), ROW.tobytes(), "99999", 400, "Inference-Header-Content-Length: must be a byte count"),
        (
            _with(),
            ROW.tobytes()[:100],
            None,
            400,
            "inputs[0].parameters.binary_data_size: asks for 120 bytes",
        ),
        (_with(), ROW.tobytes() + b"xx", None, 400, "body: 2 bytes after the header belong to no input"),
        (
            _with(parameters={"binary_data_size": 100}),
            ROW.tobytes()[:100],
            None,
            422,
            "inputs[0].data: holds 100 bytes but shape [1, 30] of FP32 needs 120",
        ),
        (_with(data=[1.0] * 30), ROW.tobytes(), None, 422, "inputs[0].data: give data or"),
        (
            _with(parameters={"binary_data_size": -1}),
            b"",
            None,
            422,
            "inputs[0].parameters.binary_data_size: must be a byte count",
        ),
        (
            {**_with(), "outputs": [{"name": "survival"}]},
            ROW.tobytes(),
            None,
            400,
            "outputs[0].name: unknown output 'survival'; this model gives ['malignant_probability', 'label']",
        ),
        ({**_with(), "outputs": "label"}, ROW.tobytes(), None, 422, "outputs: must be a list"),
        (
            {**_with(), "outputs": [{"name": "label", "parameters": {"binary_data": "yes"}}]},
            ROW.tobytes(),
            None,
            422,
            "outputs[0].parameters.binary_data: must be true or false",
        ),
        (
            {**_with(), "parameters": {"binary_data_output": 1}},
            ROW.tobytes(),
            None,
            422,
            "parameters.binary_data_output: must be true or false",
        ),
        (
            {**_with(), "outputs": [{"name": "label", "shape": [1]}]},
            ROW.tobytes(),
            None,
            422,
            "outputs[0]: unknown key(s) ['shape']",
        ),
        (_with(datatype="FP8"), ROW.tobytes(), None, 422, "inputs[0].datatype: must be one of BOOL"),
        (
            _with(datatype="BYTES", shape=[1], parameters={"binary_data_size": 6}),
            struct.pack("<I", 9) + b"ab",
            None,
            422,
            "inputs[0].data: a BYTES element says 9 bytes but fewer are left",
        ),
    ],
    ids=[
        "length-not-a-number",
        "length-past-the-body",
        "too-few-bytes",
        "bytes-left-over",
        "bytes-for-another-shape",
        "data-and-binary",
        "negative-size",
        "unknown-output",
        "outputs-not-a-list",
        "binary-data-not-bool",
        "binary-data-output-not-bool",
        "output-extra-key",
        "unknown-datatype",
        "bytes-element-cut",
    ],
)
def test_malformed_binary_requests_name_the_field(table, header, raw, length, status, message):
    url = table[0]
    body, headers = binary_body(header, raw)
    if length is not None:
        headers["Inference-Header-Content-Length"] = length
    r = httpx.post(f"{url}/v2/models/gan_jax/infer", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"].startswith(message), r.text


def test_a_binary_body_over_the_limit_is_413(table):
    url = table[0]
    big = np.ones((1000, 30), np.float32)  # 120 kB of tensor against a 100 kB limit
    body, headers = binary_body(
        _with(shape=[1000, 30], parameters={"binary_data_size": big.nbytes}), big.tobytes()
    )
    r = httpx.post(f"{url}/v2/models/gan_jax/infer", content=body, headers=headers)
    assert r.status_code == 413 and "larger than this server's limit" in r.json()["error"]


def _grpc_status(call) -> tuple[str, str]:
    with pytest.raises(InferenceServerException) as e:
        call()
    return e.value.status(), e.value.message()


def test_malformed_grpc_requests_name_the_field(table):
    _, _, grpc, x, _, _ = table
    unknown = [triton_grpc.InferRequestedOutput("survival")]
    status, message = _grpc_status(
        lambda: grpc.infer("gan_jax", [grpc_input(x, "FP32")], outputs=unknown, headers=GRPC_AUTH)
    )
    assert status == "StatusCode.INVALID_ARGUMENT" and message.startswith("outputs[0].name: unknown output")
    # tritonclient checks shapes itself, so the raw message goes through a bare gRPC channel.
    import grpc as grpcio

    from gan_jax.serve.proto import kserve_v2_pb2 as pb

    request = pb.ModelInferRequest(
        model_name="gan_jax",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP32", shape=[2, 30])],
        raw_input_contents=[x[:1].tobytes()],  # 1 row of bytes for a shape of 2
    )
    with grpcio.insecure_channel(table[5]) as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        with pytest.raises(grpcio.RpcError) as e:
            call(request, metadata=list(GRPC_AUTH.items()))
    assert e.value.code() == grpcio.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith(
        "raw_input_contents[0].data: holds 120 bytes but shape [2, 30] of FP32 needs 240"
    )
