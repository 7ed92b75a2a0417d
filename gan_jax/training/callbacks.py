"""Per-chunk callbacks of `engine.train_runs`: (state, log entry) -> None after every chunk
(checkpoints, progress bars, TensorBoard); `chain` runs several as one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gan_jax.training import distributed


def progress(total: int, start: int, desc: str) -> Callable[[Any, dict], None]:
    """A per-chunk callback drawing a tqdm bar on the main process (closed at the last step)."""
    if not distributed.is_main_process():
        return lambda state, entry: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, initial=start, desc=desc, unit="step")
    last = [start]

    def update(state, entry: dict) -> None:
        bar.update(entry["step"] - last[0])
        last[0] = entry["step"]
        bar.set_postfix({k: f"{v:.3f}" for k, v in entry.items() if isinstance(v, float)})
        if entry["step"] >= total:
            bar.close()

    return update


def chain(*callbacks: Callable | None) -> Callable[[Any, dict], None] | None:
    """One per-chunk callback calling each of `callbacks` (None ones skipped) in order."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None

    def each(state, entry: dict) -> None:
        for callback in active:
            callback(state, entry)

    return each
