"""`gan-jax predict BUNDLE INPUT -o OUT`: score a CSV of cases (a table bundle) or a folder of
pictures (an image bundle) with a bundle, for inputs too large to post. Reads and writes in
chunks, so memory stays flat whatever the input size.

INPUT has a header naming the 30 features (any common spelling: radius_mean, "mean radius",
...); an `id` column is copied to the output so rows can be matched, other columns (e.g. a
diagnosis) are ignored. With --no-header the first 30 columns are the features in order. OUT
gets one row per case: [id,] malignant_probability, label. Any storage URI works for both.

Pictures: every .png/.jpg/.jpeg file under INPUT (a folder, searched recursively, or one file)
is decoded, converted and resized to the bundle's image shape as the server decodes an upload
(`images.pil_to_model_input`); other files are listed as ignored. OUT gets one row per picture,
sorted by path: file (relative to INPUT), malignant_probability, label. A picture that cannot be
read stops the run naming the file (or, with --skip-invalid, is left out and reported).
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import os
import posixpath
import sys

import numpy as np

from gan_jax.artifacts import storage
from gan_jax.data.images import IMAGE_SUFFIXES, DataError, decode_image_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="bundle folder URI (written by gan-jax export)")
    parser.add_argument(
        "input", help="CSV of cases, or a folder of pictures for an image bundle (local path, s3:// or gs://)"
    )
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
    from gan_jax.artifacts import bundle

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    b = bundle.load(args.bundle)
    score = score_pictures if b.kind == "image" else score_csv
    options = {} if b.kind == "image" else {"header": not args.no_header}
    n, skipped = score(
        b,
        args.input,
        args.out,
        batch_size=args.batch_size,
        threshold=args.threshold,
        skip_invalid=args.skip_invalid,
        **options,
    )
    for error in skipped:
        print(f"gan-jax predict: skipped {error}", file=sys.stderr)
    noun = "picture" if b.kind == "image" else "case"
    note = f"; skipped {len(skipped)} invalid {noun}(s), listed above" if skipped else ""
    print(f"scored {n} {noun}s with model {b.model_version}; wrote {storage.redact(args.out)}{note}")
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

    def write(fout):
        with storage.open_uri(in_uri, "r", newline="") as fin:
            return _score(
                b, csv.reader(fin), csv.writer(fout), in_uri, batch_size, header, threshold, skip_invalid
            )

    return _write_whole(out_uri, write)


def _write_whole(out_uri: str, write):
    """`write(open output file)`'s result; the output appears whole or not at all (a failed run
    never leaves a partial file that looks like a result)."""
    tmp = None if storage.is_remote(out_uri) else f"{out_uri}.tmp-{os.getpid()}"
    try:
        with storage.open_uri(tmp or out_uri, "w", newline="") as fout:
            result = write(fout)
    except BaseException:
        storage.remove(tmp or out_uri)
        raise
    if tmp is not None:
        os.replace(tmp, out_uri)
    return result


def score_pictures(
    b,
    in_uri: str,
    out_uri: str,
    *,
    batch_size: int = 4096,
    threshold: float = 0.5,
    skip_invalid: bool = False,
) -> tuple[int, list[str]]:
    """Scores every picture under `in_uri` (a folder or one file) with image bundle `b` into the
    CSV `out_uri`: file, malignant_probability, label.

    Returns:
      (pictures scored, one error message per skipped picture).
    Raises:
      DataError: no pictures, or (without `skip_invalid`) a picture that cannot be read, named.
    """
    files, ignored = picture_files(in_uri)
    for name in ignored:
        print(f"gan-jax predict: ignored {name} (not a .png/.jpg/.jpeg file)", file=sys.stderr)
    chunk = min(batch_size, 256)  # decoded pictures held at once

    def write(fout):
        writer = csv.writer(fout)
        writer.writerow(["file", "malignant_probability", "label"])
        n, skipped = 0, []
        for lo in range(0, len(files), chunk):
            names, pixels = [], []
            for name, read in files[lo : lo + chunk]:
                try:
                    pixels.append(decode_image_bytes(read(), b.image_shape, f"{in_uri}: {name}"))
                except DataError as e:
                    if not skip_invalid:
                        raise
                    skipped.append(str(e))
                    continue
                names.append(name)
            if names:
                for row in _label_pictures(b, names, np.stack(pixels), threshold, in_uri):
                    writer.writerow(row)
            n += len(names)
        return n, skipped

    return _write_whole(out_uri, write)


def _label_pictures(b, names, pixels, threshold, in_uri):
    from gan_jax.serve.model import NonFiniteProbability, malignant

    proba = b.predict_proba(pixels)
    try:
        positive = malignant(proba, threshold)
    except NonFiniteProbability as e:
        bad = ", ".join(names[i] for i in e.rows[:10]) + (" ..." if len(e.rows) > 10 else "")
        raise FloatingPointError(f"{in_uri}: {bad}: {e}; stopped without writing an output file") from None
    return [[name, repr(p), b.label_names[m]] for name, p, m in zip(names, proba.tolist(), positive.tolist())]


def picture_files(in_uri: str):
    """([(name relative to `in_uri`, a function reading its bytes)] of every .png/.jpg/.jpeg file
    under the folder (recursively) or the one file `in_uri`, sorted; [names of other files]).

    Raises:
      DataError: `in_uri` does not exist or holds no picture.
    """
    fs, root = storage.filesystem(in_uri)
    if not fs.exists(root):
        raise DataError(f"{storage.redact(in_uri)}: no such folder or file")
    paths = [root] if fs.isfile(root) else sorted(fs.find(root))
    base = posixpath.dirname(root.rstrip("/")) if fs.isfile(root) else root.rstrip("/")
    pictures, ignored = [], []
    for path in paths:
        name = path[len(base) :].lstrip("/")
        if any(part.startswith(".") for part in name.split("/")):
            continue  # hidden files and OS litter (.DS_Store)
        if name.lower().endswith(IMAGE_SUFFIXES):
            pictures.append((name, functools.partial(fs.cat_file, path)))
        else:
            ignored.append(name)
    if not pictures:
        raise DataError(f"{storage.redact(in_uri)}: no .png/.jpg/.jpeg files; expected pictures to score")
    return pictures, ignored


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
