"""Image loaders: folder (TFDS array_record), MedMNIST .npz, TFDS catalog (mock data)."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from gan_jax.data import DataError, image_folder, image_sets
from gan_jax.data import images as img

tfds = pytest.importorskip("tensorflow_datasets")


def write_image(path, array, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/{benign,malignant} and test/{benign,malignant}, mixed sizes and formats."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for label, value in (("benign", 40), ("malignant", 200)):
            for i in range(n):
                h, w = (10 + 3 * i, 14) if i % 2 else (16, 9)
                arr = np.full((h, w, 3), value, np.uint8) + rng.integers(0, 3, (h, w, 3), dtype=np.uint8)
                fmt, ext = ("JPEG", "jpg") if i == 1 else ("PNG", "png")
                write_image(str(root / split / label / f"{i}.{ext}"), arr, fmt)
    (root / "train" / "benign" / ".DS_Store").write_bytes(b"\0junk")  # OS litter is skipped
    return root


def test_folder_loads_every_split_resized_with_labels(folder, tmp_path):
    # Catches: a split or label read wrong, images not resized, label order not alphabetical.
    src = image_folder.load_folder(folder, "train", (8, 8, 3), data_dir=tmp_path)
    assert len(src) == 6 and src.label_names == ("benign", "malignant")
    x, y = src.read(np.arange(6))
    assert x.shape == (6, 8, 8, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    # Benign files are dark (~40), malignant bright (~200): each image's label matches its pixels.
    np.testing.assert_array_equal(y, (x.mean(axis=(1, 2, 3)) > 120).astype(np.int32))
    assert sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(src.labels(), y)  # the label-only (no image decoding) path
    test = image_folder.load_folder(folder, "test", (8, 8, 3), data_dir=tmp_path)
    assert len(test) == 4
    grey = image_folder.load_folder(folder, "test", (5, 7, 1), data_dir=tmp_path)
    assert grey.read(np.array([0]))[0].shape == (1, 5, 7, 1)


def test_folder_random_access_matches_sequential(folder, tmp_path):
    src = image_folder.load_folder(folder, "train", (8, 8, 3), data_dir=tmp_path)
    x, y = src.read(np.arange(6))
    xr, yr = src.read(np.array([4, 0, 4]))
    np.testing.assert_array_equal(xr, x[[4, 0, 4]])
    np.testing.assert_array_equal(yr, y[[4, 0, 4]])


def test_folder_rebuilds_when_files_change(folder, tmp_path):
    # Catches a stale cache: the written dataset must follow the folder's content.
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(folder, root)
    assert len(image_folder.load_folder(root, "train", (8, 8, 3), data_dir=tmp_path / "d")) == 6
    write_image(str(root / "train" / "malignant" / "new.png"), np.zeros((4, 4, 3), np.uint8), "PNG")
    assert len(image_folder.load_folder(root, "train", (8, 8, 3), data_dir=tmp_path / "d")) == 7


def test_folder_bad_image_names_the_file(tmp_path):
    root = tmp_path / "bad"
    write_image(str(root / "train" / "benign" / "ok.png"), np.zeros((4, 4, 3), np.uint8), "PNG")
    (root / "train" / "malignant").mkdir(parents=True)
    (root / "train" / "malignant" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"broken\.png.*PNG or JPEG"):
        image_folder.load_folder(root, "train", (8, 8, 3), data_dir=tmp_path / "d")


def test_folder_layout_errors(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        image_folder.load_folder(tmp_path / "missing", "train", data_dir=tmp_path)
    root = tmp_path / "one_class"
    write_image(str(root / "train" / "benign" / "a.png"), np.zeros((4, 4, 3), np.uint8), "PNG")
    with pytest.raises(DataError, match="at least two classes"):
        image_folder.load_folder(root, "train", (8, 8, 3), data_dir=tmp_path)


def test_decompression_bomb_is_a_data_error(tmp_path, monkeypatch):
    # PIL refuses images above 2 × MAX_IMAGE_PIXELS; that must surface as a DataError.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    path = tmp_path / "bomb.png"
    write_image(str(path), np.zeros((20, 20, 3), np.uint8), "PNG")
    with pytest.raises(DataError, match="bomb.png"):
        img.decode_image_file(str(path), (8, 8, 3))


def test_16_bit_grey_png_is_scaled_not_clipped(tmp_path):
    # Catches 16-bit mammograms turned all-white by clipping at 255.
    path = tmp_path / "mammo.png"
    Image.fromarray(np.array([[0, 32768], [65535, 1000]], np.uint16)).save(path)
    out = img.decode_image_file(str(path), (2, 2, 1))
    np.testing.assert_array_equal(out[..., 0], [[0, 128], [255, 4]])


def test_non_png_jpeg_image_is_rejected(tmp_path):
    path = tmp_path / "x.png"
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="BMP")
    path.write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="BMP image; expected PNG or JPEG"):
        img.decode_image_file(str(path), (4, 4, 3))


# ------------------------------------------------------------------------------------ npz


def write_npz(path, n=6, shape=(28, 28), **overrides):
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1).astype(np.uint8)
    arrays.update(overrides)
    np.savez(path, **arrays)
    return arrays


def test_npz_breastmnist_labels_are_flipped_to_malignant_1(tmp_path):
    # Catches reading BreastMNIST's 0 (= malignant) as benign: the positive class would invert.
    path = tmp_path / "breastmnist.npz"
    arrays = write_npz(path)
    src = img.load_npz(path, "val")
    x, y = src.read(np.arange(6))
    assert x.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(x[..., 0], arrays["val_images"])
    np.testing.assert_array_equal(y, 1 - arrays["val_labels"][:, 0])
    resized = img.load_npz(path, "test", image_shape=(8, 8, 3))
    assert resized.read(np.arange(2))[0].shape == (2, 8, 8, 3)


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"train_labels": np.full((6, 1), 3)}, r"train_labels has values \[3\]"),
        ({"train_images": np.zeros((6, 28, 28), np.float32)}, "dtype float32; expected uint8"),
        ({"train_labels": np.zeros((5, 1), np.int64)}, r"shape \(5, 1\)"),
    ],
)
def test_npz_bad_arrays_are_named(tmp_path, overrides, match):
    path = tmp_path / "bad.npz"
    write_npz(path, **overrides)
    with pytest.raises(DataError, match=match):
        img.load_npz(path, "train")


def test_npz_missing_file_and_keys(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        img.load_npz(tmp_path / "nope.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="'train_images'.*MedMNIST"):
        img.load_npz(tmp_path / "other.npz")


# -------------------------------------------------------------------------------- catalog


def test_catalog_patch_camelyon_through_data_source_mock():
    # The real data_source path with TFDS's mock records (no files, no TensorFlow).
    with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
        src = img.load_catalog("patch_camelyon", "train", image_shape=(32, 32, 3))
        assert len(src) == 5
        x, y = src.read(np.arange(5))
    assert x.shape == (5, 32, 32, 3) and x.dtype == np.uint8
    assert set(y.tolist()) <= {0, 1}


def test_catalog_cbis_ddsm_labels_map_to_binary():
    # CBIS-DDSM patches have 5 classes; malignant calcification/mass (3, 4) must become 1.
    with tfds.testing.mock_data(num_examples=20, policy=tfds.testing.MockPolicy.USE_CODE):
        src = img.load_catalog("curated_breast_imaging_ddsm", "test", image_shape=(16, 16, 1))
        raw = [int(src._data[i]["label"]) for i in range(20)]
        x, y = src.read(np.arange(20))
        # (src.labels() is not called here: TFDS's mock re-encodes images for SkipDecoding,
        # which needs TensorFlow. The label-only path is tested on real array_record files.)
    assert x.shape == (20, 16, 16, 1)
    np.testing.assert_array_equal(y, (np.asarray(raw) >= 3).astype(np.int32))


def test_catalog_not_prepared_says_how(tmp_path):
    with pytest.raises(DataError, match="array_record.*TensorFlow"):
        img.load_catalog("patch_camelyon", "train", data_dir=tmp_path)
    with pytest.raises(DataError, match="unknown catalog dataset"):
        img.load_catalog("mnist")


def test_open_image_set_dispatches(tmp_path, folder):
    write_npz(tmp_path / "b.npz")
    npz = image_sets.open_image_set(tmp_path / "b.npz")
    assert sorted(npz.sources) == ["test", "train", "val"]
    assert npz.sources["train"].source.endswith("b.npz:train")
    opened = image_sets.open_image_set(folder, image_shape=(8, 8, 3), data_dir=tmp_path)
    assert sorted(opened.sources) == ["test", "train"] and len(opened.sources["test"]) == 4
