"""Wisconsin Diagnostic Breast Cancer (WDBC) data: bundled copy, UCI `wdbc.data`, headed CSV.

Positive class (label 1) is malignant. Every loader validates the whole file and raises
`DataError` naming the file, the row (1-based line number in the file) and the column.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os

import numpy as np

from gan_jax import storage

_STATS = ("mean", "se", "worst")
_MEASURES = (
    "radius", "texture", "perimeter", "area", "smoothness", "compactness",
    "concavity", "concave_points", "symmetry", "fractal_dimension",
)  # fmt: skip
# UCI order: the ten means, then the ten standard errors, then the ten "worst" values.
FEATURE_NAMES: tuple[str, ...] = tuple(f"{m}_{s}" for s in _STATS for m in _MEASURES)
LABEL_NAMES: tuple[str, str] = ("benign", "malignant")
_LABELS = {"b": 0, "benign": 0, "0": 0, "m": 1, "malignant": 1, "1": 1}
_ID_COLUMNS = {"id"}
_LABEL_COLUMNS = {"diagnosis", "label", "target"}
# A file written by `gan-jax synth` has a sidecar `<file>.meta.json` with "synthetic": true;
# the loaders refuse such a file unless the caller opts in, so it is never taken for patients.
SIDECAR_SUFFIX = ".meta.json"


class DataError(ValueError):
    """A data file that cannot be used, with the file, row and column at fault."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # [N, 30] float32
    y: np.ndarray  # [N] int32, 1 = malignant
    source: str
    feature_names: tuple[str, ...] = FEATURE_NAMES
    label_names: tuple[str, str] = LABEL_NAMES
    synthetic: bool = False  # rows made by a generator (`gan-jax synth`), not patients

    @property
    def n_features(self) -> int:
        return self.x.shape[1]


def canonical_feature_name(name: str) -> str:
    """Maps scikit-learn ("mean radius", "radius error", "worst radius") and Kaggle
    ("radius_mean", "concave points_mean") spellings onto `FEATURE_NAMES`."""
    words = name.strip().lower().replace("_", " ").split()
    stat = "mean"
    if words and words[0] in ("mean", "worst"):
        stat, words = words[0], words[1:]
    elif words and words[-1] in ("mean", "worst", "se", "error"):
        stat, words = words[-1], words[:-1]
    stat = "se" if stat == "error" else stat
    return "_".join(words + [stat])


def load_bundled() -> Dataset:
    """The 569-row WDBC copy that scikit-learn ships (no network needed)."""
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer()
    names = tuple(canonical_feature_name(n) for n in raw.feature_names)
    assert names == FEATURE_NAMES, names
    # scikit-learn codes malignant as 0; we use malignant = 1.
    y = (raw.target == 0).astype(np.int32)
    return Dataset(x=raw.data.astype(np.float32), y=y, source="bundled:sklearn-wdbc")


def load_dataset(uri: str | os.PathLike | None = None, *, allow_synthetic: bool = False) -> Dataset:
    """Loads the bundled data (`None` or "bundled"), or a file at `uri` (any storage scheme).

    A file whose first row names the columns is read as a headed CSV; otherwise as UCI's
    `wdbc.data` (ID, diagnosis, 30 features, no header). A synthetic file (its sidecar says
    so) raises DataError unless `allow_synthetic`; then the Dataset says `synthetic=True`.
    """
    if uri is None or str(uri) == "bundled":
        return load_bundled()
    synthetic = check_not_synthetic(uri, allow_synthetic)
    rows = _read_rows(uri)
    if _looks_like_header(rows[0][1]):
        return dataclasses.replace(_parse_headed(rows, str(uri)), synthetic=synthetic)
    return dataclasses.replace(_parse_uci(rows, str(uri)), synthetic=synthetic)


def load_uci(uri: str | os.PathLike, *, allow_synthetic: bool = False) -> Dataset:
    """UCI's raw `wdbc.data`: no header; columns ID, diagnosis (M/B), then the 30 features."""
    synthetic = check_not_synthetic(uri, allow_synthetic)
    return dataclasses.replace(_parse_uci(_read_rows(uri), str(uri)), synthetic=synthetic)


def load_csv(uri: str | os.PathLike, *, allow_synthetic: bool = False) -> Dataset:
    """A CSV with a header naming the 30 features (any common spelling) and a diagnosis column."""
    synthetic = check_not_synthetic(uri, allow_synthetic)
    return dataclasses.replace(_parse_headed(_read_rows(uri), str(uri)), synthetic=synthetic)


def check_not_synthetic(uri: str | os.PathLike, allow_synthetic: bool = False) -> bool:
    """True if `uri` has a sidecar marking it synthetic. Raises DataError for such a file
    unless `allow_synthetic`, and for a sidecar that cannot be read (fail closed)."""
    import json

    sidecar = f"{os.fspath(uri)}{SIDECAR_SUFFIX}"
    try:
        if not storage.exists(sidecar):
            return False
        synthetic = json.loads(storage.read_text(sidecar)).get("synthetic") is not False
    except (ValueError, AttributeError) as e:
        raise DataError(f"{uri}: its sidecar {sidecar} is unreadable ({e}); refusing the file") from e
    if synthetic and not allow_synthetic:
        raise DataError(
            f"{uri}: SYNTHETIC — not patient data (its sidecar {sidecar} says synthetic: true); "
            "it was made by a generator. Load it only on purpose (allow_synthetic=True)"
        )
    return synthetic


def _read_rows(uri: str | os.PathLike) -> list[tuple[int, list[str]]]:
    """Non-blank rows of a CSV file as (1-based line number, cells)."""
    try:
        text = storage.read_text(uri)
    except FileNotFoundError as e:
        raise DataError(f"{uri}: file not found") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{uri}: not a UTF-8 text file ({e.reason} at byte {e.start})") from e
    rows = [
        (reader.line_num, [c.strip() for c in cells])
        for reader in [csv.reader(io.StringIO(text))]
        for cells in reader
        if any(c.strip() for c in cells)
    ]
    if not rows:
        raise DataError(f"{uri}: the file is empty; expected WDBC rows")
    return rows


def _looks_like_header(cells: list[str]) -> bool:
    return any(canonical_feature_name(c) in FEATURE_NAMES for c in cells)


def _parse_uci(rows: list[tuple[int, list[str]]], path: str) -> Dataset:
    n_cols = 2 + len(FEATURE_NAMES)
    columns = ("id", "diagnosis") + FEATURE_NAMES
    labels, features = [], []
    for line, cells in rows:
        if len(cells) != n_cols:
            raise DataError(
                f"{path}: row {line} has {len(cells)} columns; expected {n_cols} "
                "(ID, diagnosis, then the 30 WDBC features)"
            )
        labels.append(_parse_label(cells[1], path, line, columns[1]))
        features.append([_parse_number(c, path, line, n) for c, n in zip(cells[2:], columns[2:])])
    return _finish(features, labels, path)


def _parse_headed(rows: list[tuple[int, list[str]]], path: str) -> Dataset:
    header_line, header = rows[0]
    if header and header[-1] == "" and all(c == "" for _, r in rows[1:] for c in r[len(header) - 1 :]):
        header = header[:-1]  # Kaggle's copy ends every line with a comma.
    names = [canonical_feature_name(h) for h in header]
    label_cols = [i for i, h in enumerate(header) if h.lower() in _LABEL_COLUMNS]
    if len(label_cols) != 1:
        raise DataError(
            f"{path}: row {header_line}: expected exactly one label column named one of "
            f"{sorted(_LABEL_COLUMNS)}, found {len(label_cols)}"
        )
    missing = [f for f in FEATURE_NAMES if f not in names]
    if missing:
        raise DataError(f"{path}: row {header_line}: missing feature columns {missing}")
    extra = [
        h for i, (h, n) in enumerate(zip(header, names))
        if i not in label_cols and n not in FEATURE_NAMES and h.lower() not in _ID_COLUMNS
    ]  # fmt: skip
    if extra:
        raise DataError(
            f"{path}: row {header_line}: unexpected columns {extra}; expected the 30 WDBC "
            "features, a diagnosis column and optionally an id column"
        )
    duplicated = sorted({n for n in names if n in FEATURE_NAMES and names.count(n) > 1})
    if duplicated:
        raise DataError(f"{path}: row {header_line}: duplicated feature columns {duplicated}")
    order = [names.index(f) for f in FEATURE_NAMES]
    labels, features = [], []
    for line, cells in rows[1:]:
        if len(cells) < len(header) or any(cells[len(header) :]):
            raise DataError(f"{path}: row {line} has {len(cells)} columns; the header has {len(header)}")
        labels.append(_parse_label(cells[label_cols[0]], path, line, header[label_cols[0]]))
        features.append([_parse_number(cells[i], path, line, header[i]) for i in order])
    return _finish(features, labels, path)


def _parse_label(cell: str, path: str, line: int, column: str) -> int:
    label = _LABELS.get(cell.lower())
    if label is None:
        raise DataError(
            f"{path}: row {line}, column {column!r}: unknown label {cell!r}; "
            "expected M/B, malignant/benign or 1/0"
        )
    return label


def _parse_number(cell: str, path: str, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{path}: row {line}, column {column!r}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{path}: row {line}, column {column!r}: {cell!r} is not finite")
    return value


def _finish(features: list[list[float]], labels: list[int], path: str) -> Dataset:
    if not labels:
        raise DataError(f"{path}: no data rows; expected WDBC rows after the header")
    y = np.asarray(labels, np.int32)
    if len(np.unique(y)) < 2:
        raise DataError(f"{path}: every row is {LABEL_NAMES[y[0]]}; a classifier needs both classes")
    return Dataset(x=np.asarray(features, np.float32), y=y, source=path)
