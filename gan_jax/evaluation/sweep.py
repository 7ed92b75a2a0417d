"""Hyperparameter sweeps in one compiled call: settings × folds as one batch of runs.

A *setting* is a dict of the numeric hyperparameters that are per-run data in the trainer
(`SWEEPABLE`: learning rates, loss weights, labelled fraction, seed). A sweep expands
settings × training masks into one `engine.RunSpec`, config-major: run `s * M + m` is setting
`s` on mask `m`. Every setting sees the same masks under the same run ids, so settings compare
paired: with equal seeds they share initial parameters and labelled rows and differ only in
their hyperparameters. All runs train in one `table.train_runs` call (one compiled program
per phase, whatever the number of settings), are scored in one `predict_runs` call, and are
summarised per setting with `evaluate.summarize`.

Search spaces come from strings, one per hyperparameter (the `gan-jax sweep` flags):
  "1e-4,3e-4,1e-3"  choices (grid axis, or drawn uniformly in a random search)
  "0.1:1.0"         uniform on [0.1, 1.0]   (random search only)
  "1e-4:1e-2:log"   log-uniform             (random search only)
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any, NamedTuple

import jax
import numpy as np

from gan_jax.config import Config
from gan_jax.evaluation import evaluate
from gan_jax.training import engine, table

SWEEPABLE = (*table.HParams._fields, "labeled_fraction", "seed")
# Where each sweepable hyperparameter lives in a `Config`.
PATHS = {name: f"{'cv' if name in ('labeled_fraction', 'seed') else 'schedule'}.{name}" for name in SWEEPABLE}
# Hyperparameters that must be >= 0 (`check_settings`); ema_decay must also be < 1.
NON_NEGATIVE = tuple(f for f in table.HParams._fields if f != "ema_decay")
Setting = dict[str, float | int]


class Range(NamedTuple):
    low: float
    high: float
    log: bool = False


def parse_space(items: list[str]) -> dict[str, list | Range]:
    """{name: [choices] | Range} from "NAME=SPEC" strings (see the module docstring).

    Raises:
      ValueError: unknown name, repeated name, or a spec that does not parse.
    """
    space: dict[str, list | Range] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        if not sep or name not in SWEEPABLE:
            raise ValueError(f"{item!r}: expected NAME=SPEC with NAME one of {SWEEPABLE}")
        if name in space:
            raise ValueError(f"{item!r}: {name} is given twice")
        space[name] = _parse_spec(name, spec)
    return space


def _parse_spec(name: str, spec: str) -> list | Range:
    cast = int if name == "seed" else float
    if name == "seed" and ":" in spec:
        raise ValueError(f"seed={spec!r}: seeds are a list of integers, e.g. seed=0,1,2")
    try:
        if ":" in spec:
            parts = spec.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
                raise ValueError
            low, high = float(parts[0]), float(parts[1])
            if not low < high or (len(parts) == 3 and low <= 0):
                raise ValueError
            return Range(low, high, len(parts) == 3)
        return [cast(v) for v in spec.split(",")]
    except ValueError:
        raise ValueError(
            f"{name}={spec!r}: expected comma-separated values, LOW:HIGH or LOW:HIGH:log "
            "(0 < LOW < HIGH for log)"
        ) from None


def _with_defaults(config: Config, values: dict[str, Any]) -> Setting:
    setting = {k: getattr(getattr(config, section), k) for k, section in _sections().items()}
    setting.update(values)
    return setting


def _sections() -> dict[str, str]:
    return {k: path.split(".")[0] for k, path in PATHS.items()}


def with_setting(config: Config, setting: Setting) -> Config:
    """`config` with a setting's hyperparameters (names of `SWEEPABLE`) in their sections."""
    return config.replace(**{PATHS[k]: v for k, v in setting.items()})


def grid(config: Config, space: dict[str, list | Range]) -> list[Setting]:
    """Every combination of the choices (the config's value for a hyperparameter not in
    `space`), in row-major order of `space`'s keys."""
    ranges = [k for k, v in space.items() if isinstance(v, Range)]
    if ranges:
        raise ValueError(f"a grid needs lists of values, not ranges, for {ranges}; use --random N")
    names = list(space)
    return [_with_defaults(config, dict(zip(names, combo))) for combo in itertools.product(*space.values())]


def random_search(config: Config, space: dict[str, list | Range], n: int, seed: int) -> list[Setting]:
    """`n` settings, each hyperparameter drawn independently (choices uniformly, ranges as
    declared) from a generator seeded by `seed` alone, so a search is reproducible."""
    if n < 1:
        raise ValueError(f"a random search needs n >= 1, got {n}")
    rng = np.random.default_rng([seed, 0x5EE9])
    settings = []
    for _ in range(n):
        values = {}
        for name, spec in space.items():
            if isinstance(spec, Range):
                lo, hi = (math.log(spec.low), math.log(spec.high)) if spec.log else spec[:2]
                v = float(rng.uniform(lo, hi))
                values[name] = math.exp(v) if spec.log else v
            else:
                values[name] = spec[int(rng.integers(len(spec)))]
        settings.append(_with_defaults(config, values))
    return settings


def check_settings(settings: list[Setting]) -> None:
    """Raises ValueError naming the first setting the trainer cannot run."""
    if not settings:
        raise ValueError("a sweep needs at least one setting")
    for i, s in enumerate(settings):
        bad = [k for k in NON_NEGATIVE if not s[k] >= 0]
        if bad or not 0.0 < s["labeled_fraction"] <= 1.0 or not 0.0 <= s["ema_decay"] < 1.0:
            raise ValueError(
                f"setting {i} {s}: need {', '.join(NON_NEGATIVE)} >= 0, ema_decay in [0, 1) and "
                "labeled_fraction in (0, 1]"
            )


def sweep_runs(
    y: np.ndarray,
    settings: list[Setting],
    train_masks: np.ndarray,
    run_ids: np.ndarray | None = None,
    labeled_masks: np.ndarray | None = None,
) -> engine.RunSpec:
    """Host-side RunSpec of len(settings) × M runs: run s * M + m is setting s on mask m.

    Args:
      y: [N] labels (only the training rows' are read, to draw labelled rows per class).
      settings: hyperparameters per setting (all of `SWEEPABLE`).
      train_masks: [M, N] bool training rows shared by every setting.
      run_ids: [M] ids that seed mask m's runs (default 0..M-1), the same for every setting.
      labeled_masks: [M, N] the labelled rows of mask m's runs, given (e.g. nested CV inside a
        labelled subset); default: drawn at each setting's labelled fraction.
    Returns:
      RunSpec with leaves [S * M, ...].
    """
    check_settings(settings)
    train_masks = np.asarray(train_masks, bool)
    run_ids = np.arange(len(train_masks)) if run_ids is None else np.asarray(run_ids)
    keys, labeled = {}, {}  # cached: many settings share a seed / labelled fraction
    for s in settings:
        seed, frac = int(s["seed"]), float(s["labeled_fraction"])
        if seed not in keys:
            keys[seed] = np.asarray(engine.run_keys(seed, run_ids))
        if labeled_masks is not None:
            labeled[seed, frac] = np.asarray(labeled_masks, bool)
        elif (seed, frac) not in labeled:
            labeled[seed, frac] = evaluate.labeled_masks(y, train_masks, frac, seed, run_ids)
    m = len(train_masks)
    hp = {f: np.repeat(np.asarray([s[f] for s in settings], np.float32), m) for f in table.HParams._fields}
    return engine.RunSpec(
        key=np.concatenate([keys[int(s["seed"])] for s in settings]),
        train_mask=np.tile(train_masks, (len(settings), 1)),
        labeled_mask=np.concatenate(
            [labeled[int(s["seed"]), float(s["labeled_fraction"])] for s in settings]
        ),
        hparams=table.HParams(**hp),
    )


def score_runs(
    y: np.ndarray, proba: np.ndarray, eval_masks: np.ndarray, n_settings: int
) -> dict[str, np.ndarray]:
    """Metrics {name: [S, M]} of S × M runs (config-major) on their evaluation rows."""
    m = evaluate.classification_metrics(y, proba, eval_masks)
    return {k: np.asarray(v).reshape(n_settings, -1) for k, v in m.items()}


def train_and_score(
    config: Config,
    x: np.ndarray,
    y: np.ndarray,
    runs: engine.RunSpec,
    eval_masks: np.ndarray,
    n_settings: int,
    **train_kwargs: Any,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Trains every run of `runs` in one `train_runs` call and scores run r on eval_masks[r].

    Returns:
      ({metric: [S, M]}, timing {"train_s", "predict_s", "n_runs"}).
    """
    t0 = time.perf_counter()
    result = table.train_runs(config, x, y, runs, **train_kwargs)
    jax.block_until_ready(result.state)
    t1 = time.perf_counter()
    proba = table.predict_runs(config, table.model_params(result.state), x)
    metrics = score_runs(y, proba, eval_masks, n_settings)
    timing = {"train_s": t1 - t0, "predict_s": time.perf_counter() - t1, "n_runs": len(runs.train_mask)}
    return metrics, timing


def run_sweep(
    config: Config,
    x: np.ndarray,
    y: np.ndarray,
    settings: list[Setting],
    train_masks: np.ndarray,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Cross-validates every setting on the same folds in one fused call.

    Args:
      train_masks: [M, N] CV training masks (test rows = the complement).
      train_kwargs: passed to `table.train_runs` (mesh, progress).
    Returns:
      {"settings": [{"setting", "summary": {metric: mean/std/CI}}], "metrics_per_run":
      {metric: [S][M]}, "timing"}. These are test-fold scores: picking the best setting by
      them and quoting its score is *not* a tuned result (use `gan_jax.evaluation.nested` for that).
    """
    train_masks = np.asarray(train_masks, bool)
    runs = sweep_runs(y, settings, train_masks)
    test_masks = np.tile(~train_masks, (len(settings), 1))
    metrics, timing = train_and_score(config, x, y, runs, test_masks, len(settings), **train_kwargs)
    ratio = float((~train_masks).sum() / train_masks.sum())
    per_setting = [
        {"setting": s, "summary": {k: evaluate.summarize(metrics[k][i], ratio) for k in evaluate.METRICS}}
        for i, s in enumerate(settings)
    ]
    return {
        "settings": per_setting,
        "metrics_per_run": {k: metrics[k].tolist() for k in evaluate.METRICS},
        "timing": timing,
    }
