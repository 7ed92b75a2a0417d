"""Wisconsin Diagnostic Breast Cancer (WDBC) data: bundled copy, UCI `wdbc.data`, headed CSV.

Positive class (label 1) is malignant. Every loader validates the whole file and raises
`DataError` naming the file, the line (1-based) and the column; feature values go through the
one case validator (`gan_jax.data.cases`) that the server and `gan-jax predict` also use.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os

import numpy as np

from gan_jax.artifacts import storage
from gan_jax.data.cases import CaseSchema, DataError, canonical_feature_name, file_where

_STATS = ("mean", "se", "worst")
_MEASURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave_points",
    "symmetry",
    "fractal_dimension",
)
# UCI order: the ten means, then the ten standard errors, then the ten "worst" values.
FEATURE_NAMES: tuple[str, ...] = tuple(f"{m}_{s}" for s in _STATS for m in _MEASURES)
LABEL_NAMES: tuple[str, str] = ("benign", "malignant")
_LABELS = {"b": 0, "benign": 0, "0": 0, "m": 1, "malignant": 1, "1": 1}
_ID_COLUMNS = {"id"}
_LABEL_COLUMNS = {"diagnosis", "label", "target"}
# A file written by `gan-jax synth` has a sidecar `<file>.meta.json` with "synthetic": true;
# the loaders refuse such a file unless the caller opts in, so it is never taken for patients.
SIDECAR_SUFFIX = ".meta.json"


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


_SCHEMA = CaseSchema(FEATURE_NAMES)


def _parse_uci(rows: list[tuple[int, list[str]]], path: str) -> Dataset:
    n_cols = 2 + len(FEATURE_NAMES)
    header = ("id", "diagnosis") + FEATURE_NAMES
    columns = list(range(2, n_cols))
    labels, features = [], []
    for line, cells in rows:
        if len(cells) != n_cols:
            raise DataError(
                f"{path}: line {line} has {len(cells)} columns; expected {n_cols} "
                "(ID, diagnosis, then the 30 WDBC features)"
            )
        labels.append(_parse_label(cells[1], path, line, 1, header[1]))
        features.append(_SCHEMA.from_cells(cells, columns, path, line, header))
    return _finish(features, labels, path)


def _parse_headed(rows: list[tuple[int, list[str]]], path: str) -> Dataset:
    header_line, header = rows[0]
    if header and header[-1] == "" and all(c == "" for _, r in rows[1:] for c in r[len(header) - 1 :]):
        header = header[:-1]  # Kaggle's copy ends every line with a comma.
    where = f"{path}: line {header_line} (header)"
    label_cols = [i for i, h in enumerate(header) if h.lower() in _LABEL_COLUMNS]
    if len(label_cols) != 1:
        raise DataError(
            f"{where}: expected exactly one label column named one of "
            f"{sorted(_LABEL_COLUMNS)}, found {len(label_cols)}"
        )
    columns = _SCHEMA.columns(header, where)
    extra = [
        h
        for i, h in enumerate(header)
        if i not in label_cols
        and i not in columns
        and _SCHEMA.feature_index(h) is None
        and h.lower() not in _ID_COLUMNS
    ]
    if extra:
        raise DataError(
            f"{where}: unexpected columns {extra}; expected the 30 WDBC "
            "features, a diagnosis column and optionally an id column"
        )
    labels, features = [], []
    for line, cells in rows[1:]:
        if len(cells) < len(header) or any(cells[len(header) :]):
            raise DataError(f"{path}: line {line} has {len(cells)} columns; the header has {len(header)}")
        label_col = label_cols[0]
        labels.append(_parse_label(cells[label_col], path, line, label_col, header[label_col]))
        features.append(_SCHEMA.from_cells(cells, columns, path, line, header))
    return _finish(features, labels, path)


def _parse_label(cell: str, path: str, line: int, column: int, name: str) -> int:
    label = _LABELS.get(cell.lower())
    if label is None:
        raise DataError(
            f"{file_where(path, line, column, name)}: unknown label {cell!r}; "
            "expected M/B, malignant/benign or 1/0"
        )
    return label


def _finish(features: list[list[float]], labels: list[int], path: str) -> Dataset:
    if not labels:
        raise DataError(f"{path}: no data rows; expected WDBC rows after the header")
    y = np.asarray(labels, np.int32)
    if len(np.unique(y)) < 2:
        raise DataError(f"{path}: every row is {LABEL_NAMES[y[0]]}; a classifier needs both classes")
    return Dataset(x=np.asarray(features, np.float32), y=y, source=path)
