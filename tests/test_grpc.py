"""The Open Inference Protocol over gRPC (issue 15 §4), called with Triton's own client
(`tritonclient.grpc`) against the real server: health, metadata and inference answer as over
HTTP; bad input is INVALID_ARGUMENT naming the field with the HTTP message; a wrong or missing
token is UNAUTHENTICATED; a NaN probability is INTERNAL with a request id, never a label."""

import numpy as np
import pytest
import tritonclient.grpc as triton
from test_serve import TOKEN, NanModel, free_port, running_both
from tritonclient.utils import InferenceServerException

from gan_jax.serve import BundleModel, DataPlane, ServeSettings, from_bundle

AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def grpc_client(tiny_bundle_export):
    port = free_port()
    settings = ServeSettings(token=TOKEN, max_batch=8, grpc_port=port, grpc_host="127.0.0.1")
    plane = DataPlane(from_bundle(tiny_bundle_export[1], max_batch=8), settings)
    with running_both(plane) as url:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        yield client, url
        client.close()


@pytest.fixture(scope="module")
def six(tiny_bundle_export):
    from gan_jax.data import load_dataset

    x = load_dataset().x[[0, 1, 19, 20, 100, 568]]
    return x, BundleModel(tiny_bundle_export[1], max_batch=8).predict(x)


def tensor(x, datatype="FP32", name="input-0"):
    t = triton.InferInput(name, list(x.shape), datatype)
    t.set_data_from_numpy(x.astype({"FP32": np.float32, "FP64": np.float64}[datatype]))
    return t


def status_of(call) -> tuple[str, str]:
    with pytest.raises(InferenceServerException) as e:
        call()
    return e.value.status(), e.value.message()


def test_health_is_open_and_ready(grpc_client):
    client, _ = grpc_client  # no token: the health RPCs are open, as /v2/health/* are
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("gan_jax")
    assert status_of(lambda: client.is_model_ready("other"))[0] == "StatusCode.NOT_FOUND"


def test_metadata_matches_http(grpc_client, tiny_bundle_export):
    client, url = grpc_client
    import httpx

    server = client.get_server_metadata(headers=AUTH)
    assert server.name == "gan_jax" and server.version == tiny_bundle_export[1].model_version
    meta = client.get_model_metadata("gan_jax", headers=AUTH)
    over_http = httpx.get(f"{url}/v2/models/gan_jax", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert meta.name == over_http["name"] and list(meta.versions) == over_http["versions"]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("input-0", "FP32", [-1, 30])]
    assert [t.name for t in meta.outputs] == ["malignant_probability", "label"]


def test_infer_gives_the_models_probabilities_and_labels(grpc_client, six, tiny_bundle_export):
    client, _ = grpc_client
    x, proba = six
    result = client.infer("gan_jax", [tensor(x)], headers=AUTH, request_id="req-7")
    np.testing.assert_array_equal(result.as_numpy("malignant_probability"), proba)  # one batch: bit for bit
    np.testing.assert_array_equal(result.as_numpy("label"), (proba >= 0.5).astype(np.int32))
    response = result.get_response()
    assert response.id == "req-7" and response.model_version == tiny_bundle_export[1].model_version
    # FP64 in, same answer.
    np.testing.assert_array_equal(
        client.infer("gan_jax", [tensor(x, "FP64")], headers=AUTH).as_numpy("malignant_probability"), proba
    )


def test_bad_input_is_invalid_argument_naming_the_field_as_http_does(grpc_client, six):
    client, url = grpc_client
    import httpx

    x = six[0][:2].astype(np.float64)
    x[1, 3] = 1e39  # overflows float32
    status, message = status_of(lambda: client.infer("gan_jax", [tensor(x, "FP64")], headers=AUTH))
    body = {"inputs": [{"name": "input-0", "shape": [2, 30], "datatype": "FP64", "data": x.tolist()}]}
    over_http = httpx.post(
        f"{url}/v2/models/gan_jax/infer", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == "StatusCode.INVALID_ARGUMENT"
    assert message == over_http.json()["error"]
    assert message.startswith("inputs[0].data[33]: must be a finite number within the float32 range")
    status, message = status_of(lambda: client.infer("gan_jax", [tensor(six[0][:2, :29])], headers=AUTH))
    assert status == "StatusCode.INVALID_ARGUMENT" and message.startswith(
        "inputs[0].shape: shape must be [N, 30]"
    )
    too_many = np.ones((9, 30), np.float32)
    status, message = status_of(lambda: client.infer("gan_jax", [tensor(too_many)], headers=AUTH))
    assert (
        status == "StatusCode.INVALID_ARGUMENT" and "9 cases is more than this server's limit of 8" in message
    )
    assert (
        status_of(lambda: client.infer("other", [tensor(six[0])], headers=AUTH))[0] == "StatusCode.NOT_FOUND"
    )


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}])
def test_wrong_or_missing_token_is_unauthenticated(grpc_client, six, headers):
    client, _ = grpc_client
    status, message = status_of(lambda: client.infer("gan_jax", [tensor(six[0])], headers=headers))
    assert status == "StatusCode.UNAUTHENTICATED" and "bearer token" in message
    assert (
        status_of(lambda: client.get_model_metadata("gan_jax", headers=headers))[0]
        == "StatusCode.UNAUTHENTICATED"
    )


def test_a_nan_probability_is_internal_with_a_request_id(tiny_bundle_export, six):
    port = free_port()
    predictor = from_bundle(tiny_bundle_export[1], max_batch=8)
    predictor.model = NanModel(tiny_bundle_export[1], max_batch=8)
    with running_both(DataPlane(predictor, ServeSettings(grpc_port=port, grpc_host="127.0.0.1"))):
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        headers = {"x-request-id": "nan-probe"}
        status, message = status_of(lambda: client.infer("gan_jax", [tensor(six[0][:2])], headers=headers))
        client.close()
    assert status == "StatusCode.INTERNAL" and message == "internal server error (request_id nan-probe)"


def test_the_serve_command_serves_grpc_beside_http(tiny_bundle_export, six, tmp_path):
    """`gan-jax serve --grpc-port`: both protocols from one process, with the token file."""
    import os
    import subprocess
    import sys
    import time

    (tmp_path / "token").write_text(TOKEN)
    http_port, grpc_port = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "gan_jax.cli",
        "serve",
        str(tiny_bundle_export[0]),
        "--host",
        "127.0.0.1",
        "--port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        "--token-file",
        str(tmp_path / "token"),
    ]
    proc = subprocess.Popen(argv, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    client = triton.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
    try:
        deadline = time.time() + 90
        while True:
            assert proc.poll() is None and time.time() < deadline, (
                proc.stdout.read().decode() if proc.poll() else ""
            )
            try:
                if client.is_server_ready():
                    break
            except InferenceServerException:
                time.sleep(0.2)
        result = client.infer("gan_jax", [tensor(six[0])], headers=AUTH)
        np.testing.assert_allclose(result.as_numpy("malignant_probability"), six[1], rtol=0, atol=1e-7)
    finally:
        client.close()
        proc.terminate()
        proc.wait(20)
    assert "gRPC (Open Inference Protocol) listening on 127.0.0.1:" in proc.stdout.read().decode()
