"""The synthetic nuclei demo set: deterministic, labelled synthetic, TFDS round trip."""

import numpy as np
import pytest

from gan_jax.data import nuclei


def test_deterministic_per_seed_and_balanced():
    a_x, a_y = nuclei.generate(40, seed=3, size=32)
    b_x, b_y = nuclei.generate(40, seed=3, size=32)
    np.testing.assert_array_equal(a_x, b_x)
    np.testing.assert_array_equal(a_y, b_y)
    c_x, _ = nuclei.generate(40, seed=4, size=32)
    assert not np.array_equal(a_x, c_x)
    assert a_x.shape == (40, 32, 32, 3) and a_x.dtype == np.uint8 and a_y.sum() == 20


def test_malignant_images_are_darker_with_more_nucleus():
    # Catches inverted labels: malignant (1) must carry more dark (haematoxylin) pixels.
    x, y = nuclei.generate(200, seed=0, size=32)
    dark = (x.mean(-1) < 180).mean((1, 2))
    assert dark[y == 1].mean() > 2 * dark[y == 0].mean()
    # ...but the classes overlap (not separable by this one trait).
    assert dark[y == 1].min() < np.median(dark[y == 0])


def test_splits_are_independent_draws():
    train = nuclei.arrays("train", seed=0, size=16, n=20)
    test = nuclei.arrays("test", seed=0, size=16, n=20)
    assert not np.array_equal(train.images, test.images)
    assert train.metadata["synthetic"] is True


def test_tfds_round_trip_equals_arrays_and_says_synthetic(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    sizes = {"train": 12, "test": 6}
    src = nuclei.load("train", data_dir=tmp_path, size=16, split_sizes=sizes)
    x, y = src.read(np.arange(12))
    ref_x, ref_y = nuclei.generate(12, nuclei._split_seed(0, "train"), 16)
    np.testing.assert_array_equal(x, ref_x)
    np.testing.assert_array_equal(y, ref_y)
    assert src.metadata["synthetic"] is True
    np.testing.assert_array_equal(src.labels(), ref_y)
    builder = nuclei.build(tmp_path, size=16, split_sizes=sizes)  # reused, not rewritten
    assert "SYNTHETIC" in builder.info.description
    assert len(nuclei.load("test", data_dir=tmp_path, size=16, split_sizes=sizes)) == 6
