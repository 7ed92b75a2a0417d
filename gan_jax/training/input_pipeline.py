"""Input pipeline for image sets: shuffled batches read in background threads and put on the
device(s) ahead of the step that needs them.

Batch p (the p-th batch from the start of training) is a pure function of (seed, p): epoch
e = p // batches_per_epoch is a permutation drawn from `default_rng([seed, e])`, and batch p is
its slice. So the pipeline is deterministic per seed whatever the thread timing, and resuming
from a checkpointed position p gives exactly the batches an uninterrupted run would have seen.
Each epoch drops its last partial batch, so every batch has the same shape (no recompiles).

Reads run in a thread pool (PNG decoding in PIL releases the GIL); `prefetch` batches are in
flight at once, each already transferred with `jax.device_put` (asynchronous) onto `sharding`,
e.g. the batch axis split over a "data" mesh axis. Images stay uint8 up to the device: a
quarter of the bytes of float32; convert inside the step (`augment.to_float`).
"""

from __future__ import annotations

import collections
import concurrent.futures
from collections.abc import Iterator

import jax
import numpy as np

from gan_jax.data.images import DataError, ImageSource
from gan_jax.training import distributed

Batch = dict[str, np.ndarray]  # {"image": [B, H, W, C] uint8, "label": [B] int32, "index": [B]}


def batches_per_epoch(n: int, batch_size: int) -> int:
    return n // batch_size


def batch_indices(n: int, batch_size: int, seed: int, position: int, shuffle: bool = True) -> np.ndarray:
    """Positions [B] (into 0..n-1) of batch number `position`; a pure function of its arguments."""
    per_epoch = batches_per_epoch(n, batch_size)
    epoch, step = divmod(position, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    return order[step * batch_size : (step + 1) * batch_size]


class ImageBatches(Iterator[Batch]):
    """Endless iterator of batches of `source`, optionally restricted to `indices`.

    Args:
      source: the image set.
      batch_size: images per batch (global, over all devices of `sharding`).
      seed: fixes the shuffling.
      start: the position (number of batches already consumed) to resume from.
      indices: the rows to draw from (e.g. a fold's training rows); default all.
      shuffle: reshuffle every epoch; False reads in order (evaluation).
      prefetch: batches read and transferred ahead of the consumer.
      num_threads: reader threads.
      sharding: where `jax.device_put` puts each batch; None = numpy batches, no transfer.

    `position` is the number of batches handed out so far: checkpoint it, and pass it back as
    `start` to continue exactly where training stopped.
    """

    def __init__(
        self,
        source: ImageSource,
        batch_size: int,
        seed: int = 0,
        start: int = 0,
        indices: np.ndarray | None = None,
        shuffle: bool = True,
        prefetch: int = 4,
        num_threads: int = 4,
        sharding: jax.sharding.Sharding | None = None,
    ):
        self._rows = np.arange(len(source)) if indices is None else np.asarray(indices, np.int64)
        if batches_per_epoch(len(self._rows), batch_size) < 1:
            raise DataError(
                f"{source.source}: {len(self._rows)} images; expected at least one batch of {batch_size}"
            )
        self.source, self.batch_size, self.seed, self.shuffle = source, batch_size, seed, shuffle
        self.sharding = sharding
        self.position = start
        self._next_submit = start
        self._prefetch = max(1, prefetch)
        self._pool = concurrent.futures.ThreadPoolExecutor(num_threads, thread_name_prefix="images")
        self._in_flight: collections.deque[concurrent.futures.Future] = collections.deque()

    def host_batch(self, position: int) -> Batch:
        """Batch number `position` as numpy arrays, read now in this thread."""
        where = batch_indices(len(self._rows), self.batch_size, self.seed, position, self.shuffle)
        rows = self._rows[where]
        images, labels = self.source.read(rows)
        return {"image": images, "label": labels, "index": rows}

    def _load(self, position: int) -> Batch:
        batch = self.host_batch(position)
        if self.sharding is None:
            return batch
        # A global array: with several processes (gan_jax.training.distributed) each one places only the
        # rows its own devices hold.
        return jax.tree.map(lambda a: distributed.global_array(a, self.sharding), batch)

    def __next__(self) -> Batch:
        while len(self._in_flight) < self._prefetch:
            self._in_flight.append(self._pool.submit(self._load, self._next_submit))
            self._next_submit += 1
        batch = self._in_flight.popleft().result()
        self.position += 1
        return batch

    def close(self) -> None:
        """Stops the reader threads (pending reads are dropped)."""
        for f in self._in_flight:
            f.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ImageBatches:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_all(source: ImageSource, indices: np.ndarray | None = None, chunk: int = 1024) -> Batch:
    """Every image and label at `indices` (default all), in order: for evaluation sets."""
    rows = np.arange(len(source)) if indices is None else np.asarray(indices, np.int64)
    parts = [source.read(rows[i : i + chunk]) for i in range(0, len(rows), chunk)]
    return {
        "image": np.concatenate([p[0] for p in parts]),
        "label": np.concatenate([p[1] for p in parts]),
        "index": rows,
    }
