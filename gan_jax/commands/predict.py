"""`gan-jax predict BUNDLE INPUT -o OUT`: score a CSV of cases with a bundle, for files too large
to post. Reads and writes in chunks, so memory stays flat whatever the file size.

INPUT has a header naming the 30 features (any common spelling: radius_mean, "mean radius",
...); an `id` column is copied to the output so rows can be matched, other columns (e.g. a
diagnosis) are ignored. With --no-header the first 30 columns are the features in order. OUT
gets one row per case: [id,] malignant_probability, label. Any storage URI works for both.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import os

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="bundle folder URI (written by gan-jax export)")
    parser.add_argument("input", help="CSV of cases (local path, s3:// or gs://)")
    parser.add_argument("-o", "--out", required=True, help="output CSV URI")
    parser.add_argument("--no-header", action="store_true", help="INPUT has no header: 30 features in order")
    parser.add_argument("--batch-size", type=int, default=4096, help="rows per model call (default 4096)")
    parser.add_argument("--threshold", type=float, default=0.5, help="malignant if probability >= this")


def run(args: argparse.Namespace) -> int:
    from gan_jax import bundle, storage

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    b = bundle.load(args.bundle)
    n = score_csv(b, args.input, args.out, batch_size=args.batch_size, header=not args.no_header,
                  threshold=args.threshold)  # fmt: skip
    print(f"scored {n} cases with model {b.model_version}; wrote {storage.redact(args.out)}")
    return 0


def score_csv(b, in_uri: str, out_uri: str, *, batch_size: int = 4096, header: bool = True,
              threshold: float = 0.5) -> int:  # fmt: skip
    """Scores every row of the CSV `in_uri` with bundle `b` into `out_uri`; returns the row count.
    Raises ValueError naming the file, line and column of a bad value."""
    from gan_jax import storage
    from gan_jax.serve.model import BundleModel

    model = BundleModel(b, max_batch=min(batch_size, 4096))
    tmp = None if storage.is_remote(out_uri) else f"{out_uri}.tmp-{os.getpid()}"
    n = 0
    with (
        storage.open_uri(in_uri, "r", newline="") as fin,
        storage.open_uri(tmp or out_uri, "w", newline="") as fout,
    ):
        reader = csv.reader(fin)
        rows = ((reader.line_num, cells) for cells in reader if any(c.strip() for c in cells))
        first = next(rows, None)
        columns, id_col = _columns(first and first[1], b.feature_names, header, in_uri)
        if not header:
            rows = itertools.chain([first], rows)  # the first row is a case
        writer = csv.writer(fout)
        writer.writerow((["id"] if id_col is not None else []) + ["malignant_probability", "label"])
        for chunk in _batched(rows, batch_size):
            x = np.empty((len(chunk), len(columns)), np.float32)
            for i, (line, cells) in enumerate(chunk):
                x[i] = _row(cells, columns, in_uri, line, b.feature_names)
            proba = model.predict(x)
            for (_, cells), p in zip(chunk, proba):
                out = [cells[id_col]] if id_col is not None else []
                writer.writerow([*out, repr(float(p)), b.label_names[int(p >= threshold)]])
            n += len(chunk)
    if tmp is not None:
        os.replace(tmp, out_uri)
    return n


def _columns(first, names, header: bool, uri: str) -> tuple[list[int], int | None]:
    from gan_jax.data.wdbc import canonical_feature_name

    if first is None:
        raise ValueError(f"{uri}: the file is empty")
    if not header:
        return list(range(len(names))), None
    canon = {canonical_feature_name(c): j for j, c in enumerate(first)}
    missing = [n for n in names if n not in canon]
    if missing:
        raise ValueError(f"{uri}: line 1 (header) lacks the feature column(s) {', '.join(missing[:5])}"
                         f"{' ...' if len(missing) > 5 else ''}; use --no-header for files without "
                         "one")  # fmt: skip
    id_col = next((j for j, c in enumerate(first) if c.strip().lower() == "id"), None)
    return [canon[n] for n in names], id_col


def _batched(rows, size: int):
    """Lists of up to `size` items (itertools.batched is Python >= 3.12)."""
    while chunk := list(itertools.islice(rows, size)):
        yield chunk


def _row(cells: list[str], columns: list[int], uri: str, line: int, names) -> list[float]:
    if len(cells) <= max(columns):
        raise ValueError(f"{uri}: line {line} has {len(cells)} columns, expected at least {max(columns) + 1}")
    values = []
    for name, j in zip(names, columns):
        try:
            v = float(cells[j])
        except ValueError:
            raise ValueError(f"{uri}: line {line}, column {name}: not a number") from None
        if not math.isfinite(v):
            raise ValueError(f"{uri}: line {line}, column {name}: must be finite")
        values.append(v)
    return values
