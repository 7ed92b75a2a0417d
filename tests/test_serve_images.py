"""The server with an image bundle, started for real (uvicorn on loopback, token set): PNG/JPEG
uploads give the trainer's probability for the pixels training would have seen; a non-image, an
oversized body, a decompression bomb and a truncated image get 415/413/413/422 naming what is
wrong, and the server keeps answering; KServe v2 UINT8 image tensors over HTTP and gRPC."""

import base64
import io
import struct
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image, ImageFile
from test_serve import AUTH, TOKEN, VERTEX, free_port, running_both

from gan_jax.data import images as image_data
from gan_jax.data import nuclei
from gan_jax.serve import DataPlane, ServeSettings, from_bundle, uploads
from gan_jax.serve.errors import ApiError
from gan_jax.training import image

LIMITS = uploads.ImageLimits(max_side=512, max_pixels=300 * 300)
MAX_BODY = 200_000


@pytest.fixture(scope="module")
def served(tiny_image_bundle_export):
    """(client, gRPC port, bundle path, state, config)."""
    path, b, state, config = tiny_image_bundle_export
    grpc_port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in VERTEX.items():
            mp.setenv(k, v)
        settings = ServeSettings.from_env(
            token=TOKEN,
            max_batch=8,
            max_body_bytes=MAX_BODY,
            image_limits=LIMITS,
            grpc_port=grpc_port,
            grpc_host="127.0.0.1",
        )
    plane = DataPlane(from_bundle(b, max_batch=8, image_limits=LIMITS), settings)
    with running_both(plane) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        yield client, grpc_port, path, state, config


def encode(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array.squeeze()).save(buf, format=fmt)
    return buf.getvalue()


def photo(seed: int = 1) -> np.ndarray:
    """A 40 x 30 RGB nuclei picture: not the model's 8 x 8, so the server must resize it."""
    return nuclei.generate(1, seed=seed, size=40)[0][0][:30]


def expected_proba(data: bytes, config, state, tmp_path) -> float:
    """What the trainer gives for these bytes read as training reads image files."""
    f = tmp_path / "upload.img"
    f.write_bytes(data)
    pixels = image_data.decode_image_file(str(f), config.model.image_shape)
    return float(np.asarray(image.predict_proba(config, state, pixels[None]))[0])


def png_declaring(width: int, height: int) -> bytes:
    """A valid 1-bit grey PNG of width x height zero pixels: a few KB that decode to width*height
    bytes (Pillow expands 1-bit to one byte per pixel) — a decompression bomb when large."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# -- uploads ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, content_type, mode",
    [("PNG", "image/png", "RGB"), ("JPEG", "image/jpeg", "RGB"), ("PNG", "image/png", "L")],
)
def test_an_upload_gets_the_trainers_probability(served, tmp_path, fmt, content_type, mode):
    # Catches a resize or colour conversion other than training's, and a swapped probability column.
    client, _, _, state, config = served
    array = photo()
    data = encode(np.asarray(Image.fromarray(array).convert(mode)), fmt)
    r = client.post("/predict", content=data, headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    body = r.json()
    want = expected_proba(data, config, state, tmp_path)
    assert body["malignant_probability"] == pytest.approx(want, abs=1e-6)
    assert body["label"] == ("malignant" if want >= 0.5 else "benign")
    assert body["model_version"] == served[0].get("/model").json()["model_version"]


def test_uploads_need_the_token(served):
    r = httpx.post(
        f"{served[0].base_url}/predict", content=encode(photo(), "PNG"), headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 401


BOMB = png_declaring(20_000, 20_000)  # 400 M pixels in ~50 KB: beyond Pillow's own guard too
WIDE = png_declaring(5_000, 5_000)  # 25 M pixels: under Pillow's guard, over this server's limit


@pytest.mark.parametrize(
    "content, content_type, status, message",
    [
        (b"hello, not an image", "image/png", 415, "body: not a PNG or JPEG image"),
        (encode(np.zeros((4, 4, 3), np.uint8), "GIF"), "image/png", 415, "body: not a PNG or JPEG image"),
        (
            encode(np.zeros((4, 4, 3), np.uint8), "PNG"),
            "application/json",
            415,
            "content type 'application/json' is not supported; send the image as the body with Content-Type "
            "image/png or image/jpeg",
        ),
        (b"", "image/png", 400, "body: the image is empty"),
        (b"x" * (MAX_BODY + 1), "image/png", 413, f"larger than this server's limit of {MAX_BODY} bytes"),
        (
            WIDE,
            "image/png",
            413,
            "body: the PNG image declares 5000 x 5000 pixels; this server takes at most "
            "512 per side and 90000 in all",
        ),
        (png_declaring(600, 2), "image/png", 413, "declares 600 x 2 pixels"),
        (png_declaring(300, 301), "image/png", 413, "declares 300 x 301 pixels"),
        (BOMB, "image/png", 413, "body: the image is a decompression bomb"),
        (encode(photo(), "PNG")[:300], "image/png", 422, "body: the PNG image data is corrupt or truncated"),
        (
            encode(photo(), "JPEG")[:400],
            "image/jpeg",
            422,
            "body: the JPEG image header is corrupt or truncated",
        ),
        (
            encode(photo(), "JPEG")[:-100],
            "image/jpeg",
            422,
            "body: the JPEG image data is corrupt or truncated",
        ),
    ],
    ids=[
        "text",
        "gif",
        "json-type",
        "empty",
        "oversized-body",
        "over-pixel-limit",
        "over-side-limit",
        "over-pixels-by-one-row",
        "decompression-bomb",
        "truncated-png",
        "truncated-jpeg-header",
        "truncated-jpeg",
    ],
)
def test_bad_uploads_are_refused_and_the_server_keeps_answering(
    served, content, content_type, status, message
):
    client = served[0]
    r = client.post("/predict", content=content, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    r = client.post("/predict", content=encode(photo(), "PNG"), headers={"Content-Type": "image/png"})
    assert r.status_code == 200


@pytest.mark.parametrize("data", [BOMB, WIDE], ids=["bomb", "over-limit"])
def test_oversized_images_are_refused_before_any_pixel_is_decoded(data, monkeypatch):
    # Catches a size check done after decoding (the allocation a decompression bomb wants).
    def no_decoding(self):
        raise AssertionError("decoded an image that should have been refused from its header")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ApiError) as e:
        uploads.decode_image(data, (8, 8, 3), LIMITS)
    assert e.value.status == 413


def test_sagemaker_takes_an_image_body(served, tmp_path):
    client, _, _, state, config = served
    data = encode(photo(2), "JPEG")
    want = expected_proba(data, config, state, tmp_path)
    r = client.post("/invocations", content=data, headers={"Content-Type": "image/jpeg"})
    assert r.json()["predictions"][0]["malignant_probability"] == pytest.approx(want, abs=1e-6)
    r = client.post(
        "/invocations", content=data, headers={"Content-Type": "image/jpeg", "Accept": "text/csv"}
    )
    p, label = r.text.strip().split(",")
    assert float(p) == pytest.approx(want, abs=1e-6) and label in ("benign", "malignant")
    r = client.post("/invocations", content=b"1,2,3\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 415 and "image/png or image/jpeg" in r.json()["error"]


def test_vertex_takes_base64_images(served, tmp_path):
    client, _, _, state, config = served
    datas = [encode(photo(3), "PNG"), encode(photo(4), "JPEG")]
    want = [expected_proba(d, config, state, tmp_path) for d in datas]
    instances = [{"b64": base64.b64encode(d).decode()} for d in datas]
    r = client.post("/vertex/predict", json={"instances": instances})
    got = [p["malignant_probability"] for p in r.json()["predictions"]]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    for bad in ("***", "é"):  # not base64; not even ASCII (Python raises another error for it)
        r = client.post("/vertex/predict", json={"instances": [instances[0], {"b64": bad}]})
        assert r.status_code == 422 and r.json()["error"] == "instances[1].b64: is not valid base64"
    r = client.post("/vertex/predict", json={"instances": [{"b64": base64.b64encode(b"text").decode()}]})
    assert r.status_code == 415 and r.json()["field"] == "instances[0].b64"


# -- KServe v2 --------------------------------------------------------------------------------------


def test_kserve_metadata_and_model_info_describe_the_image_input(served, tiny_image_bundle_export):
    client = served[0]
    meta = client.get("/v2/models/gan_jax").json()
    assert meta["inputs"] == [{"name": "input-0", "datatype": "UINT8", "shape": [-1, 8, 8, 3]}]
    assert meta["parameters"]["image_shape"] == [8, 8, 3]
    info = client.get("/model").json()
    assert info["kind"] == "image" and info["image_shape"] == [8, 8, 3]
    assert info["checksum"] == tiny_image_bundle_export[1].checksum


def v2_body(pixels: np.ndarray, datatype: str = "UINT8", shape=None) -> dict:
    shape = list(pixels.shape) if shape is None else shape
    return {
        "id": "r1",
        "inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": pixels.tolist()}],
    }


def test_kserve_v2_image_tensor(served):
    client, _, _, state, config = served
    pixels = nuclei.generate(3, seed=9, size=8)[0]
    want = np.asarray(image.predict_proba(config, state, pixels))
    r = client.post("/v2/models/gan_jax/infer", json=v2_body(pixels))
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    np.testing.assert_allclose(out["malignant_probability"]["data"], want, rtol=0, atol=1e-6)
    assert out["label"]["data"] == (want >= 0.5).astype(int).tolist() and r.json()["id"] == "r1"
    flat = v2_body(pixels)
    flat["inputs"][0]["data"] = pixels.reshape(-1).tolist()  # flat data, row-major, is accepted too
    assert client.post("/v2/models/gan_jax/infer", json=flat).json()["outputs"] == r.json()["outputs"]


@pytest.mark.parametrize(
    "body, message",
    [
        (
            v2_body(np.zeros((2, 8, 8, 1), np.uint8)),
            "inputs[0].shape: shape must be [N, 8, 8, 3] (this model's image size), got [2, 8, 8, 1]",
        ),
        (
            v2_body(np.zeros((2, 8, 8, 3), np.uint8), shape=[2, 192]),
            "inputs[0].shape: shape must be [N, 8, 8, 3]",
        ),
        (v2_body(np.zeros((1, 8, 8, 3), np.uint8), "FP32"), "inputs[0].datatype: datatype must be UINT8"),
        (v2_body(np.full((1, 8, 8, 3), 256)), "inputs[0].data[0]: must be an integer in [0, 255] (UINT8)"),
        (v2_body(np.zeros((9, 8, 8, 3), np.uint8)), "9 images: send between 1 and 8 per request"),
        (v2_body(np.zeros((1, 8, 8, 3), np.uint8), shape=[2, 8, 8, 3]), "inputs[0].data: holds 192 values"),
    ],
    ids=["channels", "rank", "datatype", "range", "too-many", "count"],
)
def test_kserve_v2_refuses_tensors_of_another_shape_or_type(served, body, message):
    r = served[0].post("/v2/models/gan_jax/infer", json=body)
    assert r.status_code == 422 and message in r.json()["error"], r.text


def test_kserve_v2_image_tensor_over_grpc(served):
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    client, port, _, state, config = served
    pixels = nuclei.generate(2, seed=11, size=8)[0]
    grpc = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
    try:
        t = triton.InferInput("input-0", list(pixels.shape), "UINT8")
        t.set_data_from_numpy(pixels)
        result = grpc.infer("gan_jax", [t], headers={"authorization": f"Bearer {TOKEN}"})
        want = np.asarray(image.predict_proba(config, state, pixels))
        np.testing.assert_allclose(result.as_numpy("malignant_probability"), want, rtol=0, atol=1e-6)
        meta = grpc.get_model_metadata("gan_jax", headers={"authorization": f"Bearer {TOKEN}"})
        assert [(i.datatype, list(i.shape)) for i in meta.inputs] == [("UINT8", [-1, 8, 8, 3])]
        wrong = triton.InferInput("input-0", [1, 8, 8, 1], "UINT8")
        wrong.set_data_from_numpy(pixels[:1, ..., :1].copy())
        with pytest.raises(InferenceServerException) as e:
            grpc.infer("gan_jax", [wrong], headers={"authorization": f"Bearer {TOKEN}"})
        assert e.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert "shape must be [N, 8, 8, 3] (this model's image size)" in e.value.message()
    finally:
        grpc.close()


def test_the_document_describes_the_image_routes(served):
    spec = served[0].get("/openapi.json").json()
    predict = spec["paths"]["/predict"]["post"]
    assert sorted(predict["requestBody"]["content"]) == ["image/jpeg", "image/png"]
    assert set(predict["responses"]) == {"200", "400", "401", "413", "415", "422", "500"}
    tensor = spec["paths"]["/v2/models/{name}/infer"]["post"]["requestBody"]["content"]["application/json"]
    tensor = tensor["schema"]["properties"]["inputs"]["items"]["oneOf"][0]["properties"]
    assert [d.get("const") for d in tensor["shape"]["prefixItems"][1:]] == [8, 8, 3]
    assert tensor["datatype"]["const"] == "UINT8"
    invocations = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert sorted(invocations) == ["image/jpeg", "image/png"]  # no table JSON/CSV bodies
