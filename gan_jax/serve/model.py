"""What the server scores with: a bundle's jitted predict function, padded to a few fixed batch
sizes (compiled and warmed up once), an echo model for measuring the server alone, and a
micro-batcher that merges concurrent requests into one call. Kind-agnostic: the bundle says
what one case is (`Bundle.input_shape`, `input_dtype`, `input_bounds`)."""

from __future__ import annotations

import asyncio
import bisect
import time

import numpy as np

from gan_jax.data.wdbc import FEATURE_NAMES


class NonFiniteProbability(FloatingPointError):
    """The model gave NaN or an infinity for some cases (`rows`, 0-based in the batch)."""

    def __init__(self, rows: np.ndarray):
        super().__init__(
            f"the model returned a non-finite probability for {len(rows)} case(s); "
            "no label can be given for them"
        )
        self.rows = rows


def malignant(proba: np.ndarray, threshold: float) -> np.ndarray:
    """bool [N]: probability >= threshold. Refuses non-finite probabilities, which a comparison
    would otherwise turn into "benign" without a word (NaN >= t is False)."""
    bad = ~np.isfinite(proba)
    if bad.any():
        raise NonFiniteProbability(np.flatnonzero(bad))
    return proba >= threshold


def batch_buckets(max_batch: int) -> tuple[int, ...]:
    """1, 4, 16, ... up to `max_batch`: each is one compiled program, and a batch is padded
    to the next one (at most 4x the rows, which costs microseconds for this model)."""
    sizes, b = [], 1
    while b < max_batch:
        sizes.append(b)
        b *= 4
    return (*sizes, max_batch)


class BundleModel:
    """A bundle's model behind fixed batch sizes: never recompiles after `warmup`. Scores a batch
    [N, *bundle.input_shape] of `bundle.input_dtype` (float32 feature rows or uint8 images)."""

    def __init__(self, bundle, max_batch: int = 1024):
        self.bundle = bundle
        self.version = bundle.model_version
        self.input_shape, self.input_dtype = tuple(bundle.input_shape), bundle.input_dtype
        self.bounds = bundle.input_bounds()  # what a table model can score; None: any value
        self.buckets = batch_buckets(max_batch)
        self._fn = bundle.predict_fn()

    def warmup(self) -> float:
        """Compiles and runs every batch size once; returns the seconds it took."""
        t0 = time.perf_counter()
        for b in self.buckets:
            np.asarray(self._fn(np.zeros((b, *self.input_shape), self.input_dtype)))
        return time.perf_counter() - t0

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Malignant probability [N] for a batch x [N, ...], in chunks of at most the largest bucket."""
        top = self.buckets[-1]
        if len(x) > top:
            return np.concatenate([self.predict(x[i : i + top]) for i in range(0, len(x), top)])
        size = self.buckets[bisect.bisect_left(self.buckets, len(x))]
        padded = (
            x if size == len(x) else np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), x.dtype)])
        )
        return np.asarray(self._fn(padded))[: len(x)]


class EchoModel:
    """A do-nothing model (probability 0 for every row) of WDBC feature rows, so a load test can
    measure the server without the model."""

    def __init__(self, max_batch: int = 1024):
        self.version = "echo"
        self.input_shape, self.input_dtype = (len(FEATURE_NAMES),), np.dtype(np.float32)
        self.bounds = None  # any float32 value
        self.buckets = batch_buckets(max_batch)

    def warmup(self) -> float:
        return 0.0

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.zeros(len(x), np.float32)


class MicroBatcher:
    """Merges the requests that arrive in one event-loop tick into one model call.

    Requests read in the same tick (several connections ready at once) each append their rows
    and await a future; one callback scheduled with `call_soon` runs after all of them, so a
    lone request waits for nothing and a burst shares one jitted call. The call runs on the
    loop thread: it takes ~50 µs, less than a thread hand-off would cost.
    """

    def __init__(self, model, max_rows: int, on_call=None):
        self.model = model
        self.max_rows = max_rows
        self.on_call = on_call  # called with the rows of every model call (metrics)
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self.calls = 0  # model calls so far

    async def predict(self, x: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((x, future))
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        group, rows = [], 0
        for item in pending:
            if group and rows + len(item[0]) > self.max_rows:
                self._run(group)
                group, rows = [], 0
            group.append(item)
            rows += len(item[0])
        self._run(group)

    def _run(self, group: list[tuple[np.ndarray, asyncio.Future]]) -> None:
        self.calls += 1
        try:
            x = group[0][0] if len(group) == 1 else np.concatenate([g[0] for g in group])
            if self.on_call is not None:
                self.on_call(len(x))
            proba = self.model.predict(x)
        except Exception as e:  # noqa: BLE001 - handed to every waiting request
            for _, future in group:
                if not future.done():
                    future.set_exception(e)
            return
        start = 0
        for rows, future in group:
            if not future.done():  # a client that went away cancelled its future
                future.set_result(proba[start : start + len(rows)])
            start += len(rows)
