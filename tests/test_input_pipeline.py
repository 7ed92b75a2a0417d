import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from gan_jax.data import DataError
from gan_jax.data.images import ArraySource
from gan_jax.training.input_pipeline import ImageBatches, batch_indices, read_all


def source(n=23):
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 1), np.uint8)
    return ArraySource(images, (np.arange(n) % 2).astype(np.int32))


def take(it, k):
    return [jax.device_get(next(it)) for _ in range(k)]


def test_same_seed_same_batches_other_seed_other_batches():
    # Catches thread timing leaking into the order, or a seed that is ignored.
    with ImageBatches(source(), 5, seed=3, num_threads=3) as a, ImageBatches(source(), 5, seed=3) as b:
        for x, y in zip(take(a, 9), take(b, 9)):
            np.testing.assert_array_equal(x["image"], y["image"])
            np.testing.assert_array_equal(x["label"], y["label"])
    with ImageBatches(source(), 5, seed=4) as c, ImageBatches(source(), 5, seed=3) as d:
        assert not all(np.array_equal(x["index"], y["index"]) for x, y in zip(take(c, 4), take(d, 4)))


def test_resume_from_position_gives_the_remaining_batches():
    # Catches a resume that restarts the epoch or reshuffles: batches k.. must be identical.
    with ImageBatches(source(), 5, seed=1) as full:
        everything = take(full, 12)
    with ImageBatches(source(), 5, seed=1) as first:
        take(first, 7)
        k = first.position
    assert k == 7
    with ImageBatches(source(), 5, seed=1, start=k) as resumed:
        for x, y in zip(take(resumed, 5), everything[7:]):
            np.testing.assert_array_equal(x["image"], y["image"])


def test_each_epoch_is_a_permutation_without_repeats():
    # 23 rows, batch 5 → 4 batches an epoch (3 rows dropped): no row twice within an epoch,
    # images match their labels/indices, and epochs are shuffled differently.
    with ImageBatches(source(), 5, seed=0) as it:
        batches = take(it, 8)
    for epoch in (batches[:4], batches[4:]):
        rows = np.concatenate([b["index"] for b in epoch])
        assert len(np.unique(rows)) == 20
    for b in batches:
        np.testing.assert_array_equal(b["image"][:, 0, 0, 0], b["index"])
        np.testing.assert_array_equal(b["label"], b["index"] % 2)
    assert not np.array_equal(batches[0]["index"], batches[4]["index"])


def test_indices_restrict_the_rows():
    # Catches a sampler that sees rows outside the fold (e.g. test rows).
    train = np.array([1, 4, 6, 9, 12, 15, 20])
    with ImageBatches(source(), 3, seed=0, indices=train) as it:
        rows = np.concatenate([b["index"] for b in take(it, 10)])
    assert set(rows.tolist()) <= set(train.tolist())
    assert batch_indices(7, 3, 0, 0).max() < 7


def test_batches_land_on_the_requested_sharding():
    mesh = jax.make_mesh((1,), ("data",))
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    with ImageBatches(source(), 4, sharding=sharding) as it:
        batch = next(it)
    assert isinstance(batch["image"], jax.Array) and batch["image"].sharding == sharding
    assert batch["image"].dtype == np.uint8 and batch["image"].shape == (4, 2, 2, 1)


def test_too_few_rows_for_a_batch():
    with pytest.raises(DataError, match="at least one batch of 30"):
        ImageBatches(source(), 30)


def test_read_all_in_order():
    out = read_all(source(), np.array([5, 2, 7]), chunk=2)
    np.testing.assert_array_equal(out["image"][:, 0, 0, 0], [5, 2, 7])


def test_tfds_source_read_from_many_threads_matches_memory(tmp_path):
    # Catches a TFDS/array_record reader that is not safe to share between reader threads.
    pytest.importorskip("tensorflow_datasets")
    from gan_jax.data import nuclei

    sizes = {"train": 40, "test": 8}
    tfds_src = nuclei.load("train", data_dir=tmp_path, size=16, split_sizes=sizes)
    images, labels = nuclei.generate(40, nuclei._split_seed(0, "train"), 16)
    memory = ArraySource(images, labels)
    with (
        ImageBatches(tfds_src, 8, seed=2, num_threads=4, prefetch=6) as a,
        ImageBatches(memory, 8, seed=2) as b,
    ):
        for x, y in zip(take(a, 10), take(b, 10)):
            np.testing.assert_array_equal(x["image"], y["image"])
            np.testing.assert_array_equal(x["label"], y["label"])
