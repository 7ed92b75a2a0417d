"""`gan-jax image-study --data` on data the tests make in each real format (a folder of PNG and
JPEG files, a BreastMNIST-layout .npz, TFDS mock data for patch_camelyon), and `gan-jax
predict` on a folder of pictures with the image bundle the study exported.

Every study uses tests/tiny_image_experiment.py (8×8×3, a few steps) on 24 images (the trainer's
compiled programs take the whole image array, so one size means one compile for all tests)."""

import contextlib
import csv
import io
import json
import os

import httpx
import numpy as np
import pytest
from PIL import Image

from gan_jax import cli
from gan_jax.artifacts import bundle
from gan_jax.data import image_sets
from gan_jax.data import images as img

tfds = pytest.importorskip("tensorflow_datasets")

TINY = os.path.join(os.path.dirname(__file__), "tiny_image_experiment.py")


def picture_folder(root, n=6):
    """train/ and test/, benign dark and malignant bright, PNG and JPEG, 12×12 RGB."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label, value in (("benign", 40), ("malignant", 200)):
            for i in range(n):
                arr = np.full((12, 12, 3), value, np.uint8) + rng.integers(0, 20, (12, 12, 3), dtype=np.uint8)
                fmt, ext = ("JPEG", "jpg") if i % 2 else ("PNG", "png")
                path = root / split / label / f"{label}_{i}.{ext}"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(path, format=fmt)
    return root


def breastmnist_npz(path, n=12):
    rng = np.random.default_rng(1)
    arrays = {}
    for split in ("train", "val", "test"):
        y = np.arange(n) % 2  # BreastMNIST coding: 0 = malignant
        arrays[f"{split}_images"] = (
            np.where(y[:, None, None] == 0, 200, 40) + rng.integers(0, 20, (n, 28, 28))
        ).astype(np.uint8)
        arrays[f"{split}_labels"] = y.reshape(n, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return path


def study(tmp_path, data, *extra):
    out = tmp_path / "out"
    argv = ["image-study", "-e", TINY, "--data", str(data), "--out", str(out), "--quick", *extra]
    assert cli.main(argv) == 0
    return json.loads((out / "image_study.json").read_text()), out


@pytest.fixture(scope="module")
def folder_study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("folder_study")
    root = picture_folder(tmp / "pictures")
    bundle_uri = str(tmp / "bundle")
    record, out = study(tmp, root, "--data-dir", str(tmp / "tfds"), "--bundle", bundle_uri)
    return record, root, bundle_uri


def test_folder_study_uses_its_own_split(folder_study):
    # Catches a folder's train/test split ignored (k-fold over both) or not said in the results.
    record, root, bundle_uri = folder_study
    assert record["own_split"] is True and record["synthetic_data"] is False
    assert "own split" in record["evaluation"] and "'train' (12 images)" in record["evaluation"]
    assert str(root) in record["data"] and record["n_images"] == 24
    assert record["config"]["model"]["image_shape"] == [8, 8, 3]
    assert "--data " + str(root) in record["command"]
    b = bundle.load(bundle_uri)  # run 0, servable, with what it was trained on
    assert b.kind == "image" and b.image_shape == (8, 8, 3) and b.label_names == ("benign", "malignant")
    assert b.meta["training"]["evaluation"] == record["evaluation"]


def test_npz_study(tmp_path):
    record, out = study(tmp_path, breastmnist_npz(tmp_path / "breastmnist.npz"))
    assert record["own_split"] is True and "['val'] not used" in record["evaluation"]
    assert "BreastMNIST's coding" in record["data"]
    assert "Image study: tiny_images" in (out / "image_study.md").read_text()


def test_patch_camelyon_mock_study(tmp_path):
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        record, _ = study(tmp_path, "tfds:patch_camelyon")
    assert record["own_split"] is True and record["data"].startswith("tfds:patch_camelyon")
    assert len(record["per_fraction"][0]["models"]["conv SGAN (AE → SGAN)"]["runs"]["accuracy"]) == 2


def test_folder_without_split_gets_k_fold(tmp_path):
    root = picture_folder(tmp_path / "pictures", n=12) / "train"  # <label>/* only
    record, _ = study(tmp_path, root, "--data-dir", str(tmp_path / "tfds"))
    assert record["own_split"] is False and "2-fold CV over all 24 images" in record["evaluation"]


def test_bad_data_set_exits_2_naming_the_file(tmp_path, capsys):
    root = picture_folder(tmp_path / "pictures")
    (root / "train" / "benign" / "broken.png").write_bytes(b"\x89PNG not really")
    argv = ["image-study", "-e", TINY, "--data", str(root), "--data-dir", str(tmp_path / "tfds")]
    assert cli.main([*argv, "--out", str(tmp_path / "out"), "--quick"]) == 2
    assert "broken.png: cannot be read as a PNG or JPEG" in capsys.readouterr().err


# ------------------------------------------------------------------------------ predict


def predict(bundle_uri, folder, out, *extra):
    return cli.main(["predict", str(bundle_uri), str(folder), "-o", str(out), *extra])


def test_predict_writes_one_row_per_picture_with_the_bundles_probability(tiny_image_bundle_export, tmp_path):
    # Catches rows out of order with their files, or pixels decoded differently from training.
    bundle_uri, b, _, _ = tiny_image_bundle_export
    root = picture_folder(tmp_path / "pictures", n=3) / "test"
    (root / "benign" / ".DS_Store").write_bytes(b"litter")
    out = tmp_path / "p.csv"
    assert predict(bundle_uri, root, out) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["file", "malignant_probability", "label"]
    names = [
        f"{label}/{label}_{i}.{ext}"
        for label in ("benign", "malignant")
        for i, ext in enumerate(["png", "jpg", "png"])
    ]
    assert [r[0] for r in rows[1:]] == names
    pixels = np.stack([img.decode_image_file(str(root / n), b.image_shape) for n in names])
    expected = b.predict_proba(pixels)
    assert np.ptp(expected) > 0  # pictures the model tells apart, so a row mix-up shows
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], expected, rtol=1e-6)
    assert [r[2] for r in rows[1:]] == [b.label_names[int(p >= 0.5)] for p in expected]


def test_predict_refuses_a_bad_picture_by_name_or_skips_it_when_told(
    tiny_image_bundle_export, tmp_path, capsys
):
    bundle_uri = tiny_image_bundle_export[0]
    pictures = picture_folder(tmp_path / "all", n=2) / "test" / "benign"
    (pictures / "cut.png").write_bytes((pictures / "benign_0.png").read_bytes()[:60])  # truncated
    (pictures / "notes.txt").write_text("not a picture")
    out = tmp_path / "p.csv"
    assert predict(bundle_uri, pictures, out) == 2
    assert "cut.png: cannot be read as a PNG or JPEG" in capsys.readouterr().err
    assert not out.exists()  # no partial output that looks like a result
    assert predict(bundle_uri, pictures, out, "--skip-invalid") == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "cut.png" in captured.err and "ignored notes.txt" in captured.err
    assert "scored 2 pictures" in captured.out
    assert [r[0] for r in csv.reader(out.open())][1:] == ["benign_0.png", "benign_1.jpg"]


# ----------------------------------------------------------------- export, serve, sample


def encode_png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array.squeeze()).save(buf, format="PNG")
    return buf.getvalue()


def one_picture(fmt, tmp_path):
    """(--data URI, PNG bytes of one of its pictures, the same picture as training reads it)."""
    if fmt == "folder":
        root = picture_folder(tmp_path / "pictures")
        path = root / "test" / "malignant" / "malignant_1.jpg"
        data = str(root)
        read = image_sets.load_image_set(root, image_shape=(8, 8, 3), data_dir=tmp_path / "tfds")
        index = int(np.flatnonzero(read.split == "test")[-5])  # malignant_1.jpg: files sort by label, name
        return data, path.read_bytes(), read.images[index]
    if fmt == "npz":
        path = breastmnist_npz(tmp_path / "breastmnist.npz")
        raw = np.load(path)["test_images"][3]
        read = image_sets.load_image_set(path, image_shape=(8, 8, 3), splits=["test"])
        return str(path), encode_png(raw), read.images[3]
    raw = tfds.data_source("patch_camelyon", split="test")[3]["image"]
    read = image_sets.load_image_set("tfds:patch_camelyon", image_shape=(8, 8, 3), splits=["test"])
    return "tfds:patch_camelyon", encode_png(raw), read.images[3]


@pytest.mark.parametrize("fmt", ["folder", "npz", "patch_camelyon"])
def test_export_then_serve_an_upload_of_one_of_its_pictures(fmt, tmp_path):
    # Catches a bundle trained on other pixels than the server decodes (another resize or
    # channel conversion), or a served probability other than the bundle's own.
    from test_serve import AUTH, TOKEN, running

    from gan_jax.serve import DataPlane, ServeSettings, create_app, from_bundle

    # TFDS's mock replaces every builder, the folder's too: only the catalog test is mocked.
    mock = tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE)
    with mock if fmt == "patch_camelyon" else contextlib.nullcontext():
        data, upload, pixels = one_picture(fmt, tmp_path)
        out = tmp_path / "bundle"
        argv = [
            "export",
            str(out),
            "-e",
            TINY,
            "--quick",
            "--data",
            data,
            "--data-dir",
            str(tmp_path / "tfds"),
        ]
        assert cli.main(argv) == 0
    b = bundle.load(out)
    assert b.kind == "image" and b.image_shape == (8, 8, 3)
    assert set(b.meta["metrics"]) == {"train", "held_out"}  # own split: scored on its test split
    assert "own training split" in b.meta["training"]["training_rows"]
    want = float(b.predict_proba(pixels[None])[0])
    app = create_app(DataPlane(from_bundle(b, max_batch=8), ServeSettings.from_env(token=TOKEN)))
    with running(app) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        r = client.post("/predict", content=upload, headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.json()["malignant_probability"] == pytest.approx(want, abs=1e-6)
    assert r.json()["model_version"] == b.model_version
    assert cli.main(["sample", str(out), "-o", str(tmp_path / "grid.png"), "--n", "4"]) == 0
    assert Image.open(tmp_path / "grid.png").size[0] >= 8
