"""The one entry point for image sets (gan_jax.data.image_sets) and its clear errors: every bad
data set is refused with a message naming the file (or split) and what was expected."""

import numpy as np
import pytest
from PIL import Image

from gan_jax.commands import apply_overrides
from gan_jax.config import IMAGES, DataConfig
from gan_jax.data import DataError, image_folder, image_sets
from gan_jax.data import images as img
from gan_jax.studies import image_data

pytest.importorskip("tensorflow_datasets")


def png(path, array, fmt="PNG", mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = Image.fromarray(array) if mode is None else Image.fromarray(array, mode)
    pil.save(path, format=fmt)
    return path


def two_class_folder(root, splits=("train", "test"), shape=(6, 6, 3), n=3):
    """Dark benign, bright malignant pictures; PNG and JPEG mixed."""
    for split in splits:
        for label, value in (("benign", 30), ("malignant", 220)):
            for i in range(n):
                fmt, ext = ("JPEG", "jpg") if i == 1 else ("PNG", "png")
                png(
                    root / split / label / f"{i}.{ext}" if split else root / label / f"{i}.{ext}",
                    np.full(shape, value, np.uint8),
                    fmt,
                )
    return root


def test_folder_with_split_keeps_its_split_and_own_shape(tmp_path):
    # Catches a split or a label read wrong, or a shape not taken from the files.
    root = two_class_folder(tmp_path / "f")
    s = image_sets.load_image_set(root, data_dir=tmp_path / "tfds")
    assert s.image_shape == (6, 6, 3) and s.label_names == ("benign", "malignant")
    assert sorted(set(s.split.tolist())) == ["test", "train"] and len(s.labels) == 12
    np.testing.assert_array_equal(s.labels, (s.images.mean((1, 2, 3)) > 120).astype(np.int32))


def test_folder_without_split_has_no_split(tmp_path):
    root = two_class_folder(tmp_path / "f", splits=(None,))
    s = image_sets.load_image_set(root, data_dir=tmp_path / "tfds")
    assert s.split is None and len(s.labels) == 6


def test_mixed_sizes_name_both_files_unless_resized(tmp_path):
    root = two_class_folder(tmp_path / "f")
    png(root / "train" / "malignant" / "big.png", np.zeros((9, 6, 3), np.uint8))
    with pytest.raises(DataError, match=r"big\.png: 9×6×3, but .*benign.0\.png is 6×6×3: mixed sizes"):
        image_sets.open_image_set(root, data_dir=tmp_path / "tfds")
    s = image_sets.load_image_set(root, image_shape=(4, 4, 3), data_dir=tmp_path / "tfds")
    assert s.image_shape == (4, 4, 3) and len(s.labels) == 13


def test_mixed_channel_counts_name_the_file(tmp_path):
    root = two_class_folder(tmp_path / "f")
    png(root / "train" / "malignant" / "grey.png", np.zeros((6, 6), np.uint8))
    with pytest.raises(DataError, match=r"grey\.png: 6×6×1, but .* 6×6×3: mixed channel counts"):
        image_sets.open_image_set(root, data_dir=tmp_path / "tfds")


def test_one_class_only(tmp_path):
    root = tmp_path / "f"
    png(root / "train" / "benign" / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="at least two classes"):
        image_sets.open_image_set(root, data_dir=tmp_path / "tfds")
    # Two class folders, but the test split holds benign pictures only.
    root = two_class_folder(tmp_path / "g", splits=("train",))
    png(root / "test" / "benign" / "a.png", np.zeros((6, 6, 3), np.uint8))
    (root / "test" / "malignant").mkdir()
    with pytest.raises(DataError, match=r"split 'test': every one of its 1 images is of class 'benign'"):
        image_sets.load_image_set(root, data_dir=tmp_path / "tfds")


@pytest.mark.parametrize(
    "content, match",
    [
        (b"not a picture at all", r"broken\.png: cannot be read as a PNG or JPEG"),
        ("truncated", r"broken\.png: cannot be read as a PNG or JPEG image \(.*truncated"),
    ],
)
def test_unreadable_or_truncated_file_is_named(tmp_path, content, match):
    root = two_class_folder(tmp_path / "f")
    if content == "truncated":
        whole = png(tmp_path / "whole.png", np.random.default_rng(0).integers(0, 255, (6, 6, 3), np.uint8))
        content = whole.read_bytes()[:-30]  # the header reads, the pixels do not
    (root / "train" / "malignant" / "broken.png").write_bytes(content)
    with pytest.raises(DataError, match=match):
        image_sets.load_image_set(root, data_dir=tmp_path / "tfds")


def test_empty_split_is_named(tmp_path):
    root = two_class_folder(tmp_path / "f", splits=("train",))
    (root / "test" / "benign").mkdir(parents=True)
    with pytest.raises(DataError, match=r"f/test: an empty split"):
        image_sets.open_image_set(root, data_dir=tmp_path / "tfds")


def test_folder_class_names_need_a_mapping(tmp_path):
    # Catches reading "normal" as malignant because it sorts after "cancer": with names that do
    # not say which class is malignant, the loader asks for a mapping instead of guessing.
    root = tmp_path / "f"
    for label, value in (("cancer_free", 30), ("lesion", 220)):
        for i in range(2):
            png(root / label / f"{i}.png", np.full((4, 4, 3), value, np.uint8))
    with pytest.raises(DataError, match=r"which are malignant\? .*--set data.malignant=\('lesion',\)"):
        image_sets.open_image_set(root, data_dir=tmp_path / "tfds")
    s = image_sets.load_image_set(root, data_dir=tmp_path / "tfds", malignant=("lesion",))
    np.testing.assert_array_equal(s.labels, (s.images.mean((1, 2, 3)) > 120).astype(np.int32))
    assert s.label_names == ("cancer_free", "lesion")
    with pytest.raises(DataError, match=r"\['tumour'\] are not among"):
        image_sets.open_image_set(root, data_dir=tmp_path / "tfds", malignant=("tumour",))


def write_npz(path, n=8, shape=(12, 12), labels=None):
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        y = np.arange(n) % 2 if labels is None else labels
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.asarray(y).reshape(-1, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return arrays


def test_npz_labels_outside_0_1_need_a_mapping(tmp_path):
    path = tmp_path / "pathmnist.npz"
    arrays = write_npz(path, labels=np.arange(8) % 4)
    with pytest.raises(DataError, match=r"train_labels has values \[2, 3\] outside \{0, 1\}.*data.malignant"):
        image_sets.open_image_set(path)
    s = image_sets.load_image_set(path, malignant=(2, 3), splits=["train"])
    np.testing.assert_array_equal(s.labels, arrays["train_labels"][:, 0] >= 2)


def test_npz_breastmnist_coding_is_the_default_and_said(tmp_path):
    path = tmp_path / "breastmnist.npz"
    arrays = write_npz(path)
    s = image_sets.load_image_set(path)
    assert s.image_shape == (12, 12, 1) and sorted(set(s.split.tolist())) == ["test", "train", "val"]
    np.testing.assert_array_equal(s.labels[s.split == "val"], 1 - arrays["val_labels"][:, 0])
    assert "0 = malignant" in " ".join(s.notes)


def test_remote_npz_and_folder_through_storage(tmp_path):
    # The same readers on a storage URI (fsspec's memory filesystem stands for s3:// / gs://).
    from gan_jax.artifacts import storage

    write_npz(tmp_path / "b.npz")
    storage.write_bytes("memory://images/b.npz", (tmp_path / "b.npz").read_bytes())
    assert len(image_sets.load_image_set("memory://images/b.npz").labels) == 24
    storage.upload_dir(two_class_folder(tmp_path / "f"), "memory://images/folder")
    s = image_sets.load_image_set("memory://images/folder", data_dir=tmp_path / "tfds")
    assert s.source == "memory://images/folder" and len(s.labels) == 12


def test_max_images_takes_a_subset_per_split(tmp_path):
    write_npz(tmp_path / "b.npz", n=40)
    s = image_sets.load_image_set(tmp_path / "b.npz", splits=["train", "test"], max_images=20, seed=3)
    assert len(s.labels) == 20 and (s.split == "train").sum() == 10
    again = image_sets.load_image_set(tmp_path / "b.npz", splits=["train", "test"], max_images=20, seed=3)
    np.testing.assert_array_equal(s.images, again.images)


def test_palette_png_is_converted_through_its_palette(tmp_path):
    # Palette PNGs are converted (documented in images.py), not read as palette indices.
    pil = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    pil.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pil.save(tmp_path / "p.png")
    out = img.decode_image_file(str(tmp_path / "p.png"), (2, 2, 3))
    np.testing.assert_array_equal(out[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(out[0, 1], [200, 100, 50])
    assert image_folder.data_shape({"x": [(str(tmp_path / "p.png"), 0)]}) == (2, 2, 3)


def test_16_bit_png_counts_as_one_channel(tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(path)
    assert image_folder.data_shape({"x": [(str(path), 0)]}) == (1, 2, 1)


def test_study_needs_train_and_test_splits(tmp_path):
    root = two_class_folder(tmp_path / "f", splits=("fold_a", "fold_b"))
    data = DataConfig(uri=str(root), data_dir=str(tmp_path / "tfds"))
    with pytest.raises(DataError, match=r"splits \['fold_a', 'fold_b'\].*needs 'train' and 'test'"):
        image_data.study_data(
            data, model_shape=(8, 8, 3), n_images=None, data_seed=0, n_folds=2, n_repeats=1, seed=0
        )


def test_model_shape_check_says_how_to_resize():
    with pytest.raises(
        DataError, match=r"x: images of 30×30×1.*divisible by 4.*data.image_shape=\(32,32,1\)"
    ):
        image_data.check_model_shape((30, 30, 1), (8, 16), 2, "x")
    image_data.check_model_shape((28, 28, 1), (8, 16), 2, "x")


def test_set_overrides_reach_nested_sections():
    config = IMAGES
    changed = apply_overrides(
        config,
        [
            "data.image_shape=(32,32,1)",
            "data.malignant=tumour,cancer",
            "schedule.batch_size=16",
            "data.n_images=None",
            "data.uri=s3://b/k=v",
            "model.augment.flip_lr=False",
        ],
    )
    assert changed.data.image_shape == (32, 32, 1) and changed.data.malignant == ("tumour", "cancer")
    assert changed.schedule.batch_size == 16 and changed.data.n_images is None
    assert changed.data.uri == "s3://b/k=v" and not changed.model.augment.flip_lr
    with pytest.raises(ValueError, match="FIELD a config field"):
        apply_overrides(config, ["data.nope=1"])
    with pytest.raises(ValueError, match=r"--set 'schedule.batch_size=big': 'big' is not a valid int"):
        apply_overrides(config, ["schedule.batch_size=big"])


def test_study_trains_on_the_own_train_split_and_scores_on_test(tmp_path):
    # Catches k-fold over a data set that has its own split (test images would be trained on),
    # or the validation split slipping into the scored rows.
    write_npz(tmp_path / "b.npz", n=10)
    data = DataConfig(uri=str(tmp_path / "b.npz"))
    d = image_data.study_data(
        data, model_shape=(8, 8, 3), n_images=None, data_seed=0, n_folds=2, n_repeats=2, seed=0
    )
    assert d.own_split and d.train_masks.shape == (4, 20)  # train + test; val not read
    assert (d.train_masks == (np.arange(20) < 10)[None, :]).all()  # train rows come first
    assert "differ in seed only" in d.evaluation and "['val'] not used" in d.evaluation
