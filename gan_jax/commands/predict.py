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
import os
import sys

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="bundle folder URI (written by gan-jax export)")
    parser.add_argument("input", help="CSV of cases (local path, s3:// or gs://)")
    parser.add_argument("-o", "--out", required=True, help="output CSV URI")
    parser.add_argument("--no-header", action="store_true", help="INPUT has no header: 30 features in order")
    parser.add_argument("--batch-size", type=int, default=4096, help="rows per model call (default 4096)")
    parser.add_argument("--threshold", type=float, default=0.5, help="malignant if probability >= this")
    skip_help = (
        "leave out cases that fail validation (reported on stderr) instead of stopping at the "
        "first one; no output row is ever written for an invalid case"
    )
    parser.add_argument("--skip-invalid", action="store_true", help=skip_help)


def run(args: argparse.Namespace) -> int:
    from gan_jax.artifacts import bundle, storage

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    b = bundle.load(args.bundle)
    b.require("table", "gan-jax predict (a CSV of cases)")  # image bundles: gan-jax serve's upload routes
    n, skipped = score_csv(
        b,
        args.input,
        args.out,
        batch_size=args.batch_size,
        header=not args.no_header,
        threshold=args.threshold,
        skip_invalid=args.skip_invalid,
    )
    for error in skipped:
        print(f"gan-jax predict: skipped {error}", file=sys.stderr)
    note = f"; skipped {len(skipped)} invalid case(s), listed above" if skipped else ""
    print(f"scored {n} cases with model {b.model_version}; wrote {storage.redact(args.out)}{note}")
    return 0


def score_csv(
    b,
    in_uri: str,
    out_uri: str,
    *,
    batch_size: int = 4096,
    header: bool = True,
    threshold: float = 0.5,
    skip_invalid: bool = False,
) -> tuple[int, list[str]]:
    """Scores every row of the CSV `in_uri` with bundle `b` into `out_uri`.

    Every row goes through the shared case validator (gan_jax.data.cases). An invalid row stops
    the run with a CaseError naming the file, line and column, and no output file is left
    behind; with `skip_invalid` it is left out of the output instead.

    Returns:
      (rows scored, one error message per skipped row).
    """
    from gan_jax.artifacts import storage

    tmp = None if storage.is_remote(out_uri) else f"{out_uri}.tmp-{os.getpid()}"
    try:
        with (
            storage.open_uri(in_uri, "r", newline="") as fin,
            storage.open_uri(tmp or out_uri, "w", newline="") as fout,
        ):
            result = _score(
                b, csv.reader(fin), csv.writer(fout), in_uri, batch_size, header, threshold, skip_invalid
            )
    except BaseException:
        storage.remove(tmp or out_uri)  # never leave a partial file that looks like a result
        raise
    if tmp is not None:
        os.replace(tmp, out_uri)
    return result


def _score(b, reader, writer, in_uri, batch_size, header, threshold, skip_invalid):
    from gan_jax.data.cases import CaseError, CaseSchema
    from gan_jax.serve.model import BundleModel, NonFiniteProbability, malignant

    model = BundleModel(b, max_batch=min(batch_size, 4096))
    schema = CaseSchema(b.feature_names, model.bounds)  # the same rules as the server
    rows = ((reader.line_num, cells) for cells in reader if any(c.strip() for c in cells))
    first = next(rows, None)
    if first is None:
        raise CaseError(in_uri, "the file is empty; expected cases, one per line")
    names, columns, id_col = None, list(range(len(schema.names))), None
    if header:
        names = first[1]
        columns = schema.columns(names, f"{in_uri}: line {first[0]} (header)")
        id_col = next((j for j, c in enumerate(names) if c.strip().lower() == "id"), None)
    else:
        rows = itertools.chain([first], rows)  # the first row is a case
    writer.writerow((["id"] if id_col is not None else []) + ["malignant_probability", "label"])
    n, skipped = 0, []
    for chunk in _batched(rows, batch_size):
        valid, x = [], []
        for line, cells in chunk:
            try:
                x.append(schema.from_cells(cells, columns, in_uri, line, names))
            except CaseError as e:
                if not skip_invalid:
                    raise
                skipped.append(str(e))
                continue
            valid.append((line, cells))
        if not valid:
            continue
        proba = model.predict(np.asarray(x, np.float32))
        try:
            positive = malignant(proba, threshold)
        except NonFiniteProbability as e:
            lines = ", ".join(str(valid[i][0]) for i in e.rows[:10]) + (" ..." if len(e.rows) > 10 else "")
            raise FloatingPointError(
                f"{in_uri}: line(s) {lines}: {e}; stopped without writing an output file"
            ) from None
        for (_, cells), p, m in zip(valid, proba.tolist(), positive.tolist()):
            out = [cells[id_col]] if id_col is not None else []
            writer.writerow([*out, repr(p), b.label_names[m]])
        n += len(valid)
    return n, skipped


def _batched(rows, size: int):
    """Lists of up to `size` items (itertools.batched is Python >= 3.12)."""
    while chunk := list(itertools.islice(rows, size)):
        yield chunk
