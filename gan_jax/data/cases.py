"""The one validator for "a case": the feature values of one patient, whether they come from a
CSV cell (the loaders, `gan-jax predict`, the server's text/csv), a JSON value (the server) or a
tensor (the gRPC server).

Every refusal is a `CaseError` that reads `<where>: <problem>`: where is a file, line and column
(`cases.csv: line 3, column 4 (area_mean)`) or a JSON field (`instances[1][3]`); the problem says
what is wrong and what was expected. The problem text depends only on the value, so the same bad
cell gets the same words from every entry point. Values are never quoted: they are patient data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

F32_MAX = float(np.finfo(np.float32).max)
_NUMBER = (int, float)  # exact types: bool is an int subclass but not a measurement
# How far outside its training data a model is asked to score: values more than this many scaler
# units (standard deviations for z-score, training ranges for min-max) from the scaler's shift are
# not measurements (wrong units, corrupt data), and far enough out the model's float32 arithmetic
# overflows to NaN. Real WDBC cases lie within about 12 standard deviations.
SCALER_UNITS = 1e6
_RANGE = f"must be a finite number within the float32 range (magnitude at most {F32_MAX:.8g})"


class DataError(ValueError):
    """A data file that cannot be used, with the file, row and column at fault."""


class CaseError(DataError):
    """A case that cannot be scored: `where` (file/line/column or JSON field) and `problem`."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where, self.problem = where, problem


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


def type_name(v) -> str:
    return {str: "a string", bool: "a boolean", list: "a list", dict: "an object", type(None): "null"}.get(
        type(v), type(v).__name__
    )


def value_problem(v) -> str | None:
    """Why `v` (a JSON value or a parsed cell) is not a usable feature value; None if it is."""
    if type(v) not in _NUMBER:
        return f"must be a number, got {type_name(v)}"
    if -F32_MAX <= v <= F32_MAX:  # False for NaN and for infinities
        return None
    if v != v:
        return f"{_RANGE}, got NaN"
    return f"{_RANGE}, got {'an infinity' if abs(v) == float('inf') else 'a number outside it'}"


def number(v, where: str) -> float:
    """`v` as a float, or CaseError naming `where`."""
    if type(v) in _NUMBER and -F32_MAX <= v <= F32_MAX:
        return float(v)
    raise CaseError(where, value_problem(v))


def cell(text: str, where: str) -> float:
    """A CSV cell as a float, or CaseError naming `where`."""
    try:
        v = float(text)
    except ValueError:
        problem = "must be a number, got an empty cell" if not text.strip() else "must be a number, got text"
        raise CaseError(where, problem) from None
    return number(v, where)


def scaler_bounds(shift: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([F] low, [F] high): the values a model with this input scaler (x - shift) / scale is
    asked to score, `SCALER_UNITS` either side of the shift, within float32."""
    shift, scale = np.asarray(shift, np.float64), np.abs(np.asarray(scale, np.float64))
    return np.maximum(shift - SCALER_UNITS * scale, -F32_MAX), np.minimum(
        shift + SCALER_UNITS * scale, F32_MAX
    )


def file_where(path: str, line: int, column: int, name: str) -> str:
    """`path: line 3, column 4 (area_mean)` (line and column 1-based; no path when empty)."""
    place = f"line {line}, column {column + 1} ({name})"
    return f"{path}: {place}" if path else place


def finite_array(x: np.ndarray, where_of: Callable[[int], str]) -> np.ndarray:
    """`x` as float32 when every value is finite and in float32 range; else CaseError naming the
    first bad flat index through `where_of`. For tensors that arrive as arrays (gRPC)."""
    x64 = np.asarray(x, np.float64)
    bad = ~(np.abs(x64) <= F32_MAX)  # NaN compares False
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        raise CaseError(where_of(i), value_problem(float(x64.reshape(-1)[i])))
    return x64.astype(np.float32)


class CaseSchema:
    """The features a model expects, and the checks that turn raw values into one case [F].

    `bounds` ([F] low, [F] high), when given, narrow each feature's range to what a model can
    score (see `scaler_bounds`); without them any float32 value is accepted.
    """

    def __init__(self, feature_names: Sequence[str], bounds: tuple[np.ndarray, np.ndarray] | None = None):
        self.names = tuple(feature_names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.bounds = None
        if bounds is not None:
            self.bounds = tuple(np.asarray(b, np.float64).tolist() for b in bounds)

    def value(self, j: int, v, where: str) -> float:
        """Feature j's value `v` (a JSON value or a parsed cell), checked."""
        v = number(v, where)
        if self.bounds is not None and not self.bounds[0][j] <= v <= self.bounds[1][j]:
            raise CaseError(where, self.bounds_problem(j))
        return v

    def bounds_problem(self, j: int) -> str:
        lo, hi = self.bounds[0][j], self.bounds[1][j]
        return (
            f"must be within [{lo:.7g}, {hi:.7g}] for this model ({SCALER_UNITS:.0e} scaler units around "
            "its training data; check the units), got a number outside it"
        )

    def array(self, x: np.ndarray, where_of: Callable[[int], str]) -> np.ndarray:
        """x [N, F] as float32 when every value passes `value`; else CaseError naming the first
        bad flat index through `where_of`. For tensors that arrive as arrays (gRPC)."""
        x32 = finite_array(x, where_of)
        if self.bounds is not None:
            x64 = np.asarray(x, np.float64)  # compare before float32 rounding, as `value` does
            bad = (x64 < np.asarray(self.bounds[0])) | (x64 > np.asarray(self.bounds[1]))
            if bad.any():
                i = int(np.flatnonzero(bad.reshape(-1))[0])
                raise CaseError(where_of(i), self.bounds_problem(i % len(self.names)))
        return x32

    def feature_index(self, key) -> int | None:
        """The position of feature `key` in any common spelling; None if it is not a feature."""
        i = self.index.get(key)
        if i is None and isinstance(key, str):
            i = self.index.get(canonical_feature_name(key))
        return i

    def count_problem(self, n: int) -> str | None:
        if n == len(self.names):
            return None
        return (
            f"expected {len(self.names)} features in the order {self.names[0]}, {self.names[1]}, ..., got {n}"
        )

    def from_values(self, values: Sequence, where: str) -> list[float]:
        """A case given as values in feature order (a JSON array); items are `where[j]`."""
        problem = self.count_problem(len(values))
        if problem:
            raise CaseError(where, problem)
        return [self.value(j, v, f"{where}[{j}]") for j, v in enumerate(values)]

    def from_mapping(self, case: Mapping, where: str) -> list[float]:
        """A case given as {feature name: value} (a JSON object); values are `where.name`."""
        row = [None] * len(self.names)
        for key, v in case.items():
            i = self.feature_index(key)
            if i is None:
                raise CaseError(where, f"unknown feature {key!r}; expected the names {list(self.names)}")
            if row[i] is not None:
                raise CaseError(where, f"feature {self.names[i]!r} is given twice")
            row[i] = self.value(i, v, f"{where}.{key}")
        missing = [n for n, v in zip(self.names, row) if v is None]
        if missing:
            more = ", ..." if len(missing) > 5 else ""
            raise CaseError(where, f"missing {len(missing)} feature(s): {', '.join(missing[:5])}{more}")
        return row

    def from_json(self, case, where: str) -> list[float]:
        """A JSON case: an object keyed by feature name or an array in feature order."""
        if isinstance(case, list):
            return self.from_values(case, where)
        if isinstance(case, dict):
            return self.from_mapping(case, where)
        raise CaseError(
            where,
            f"a case must be an object keyed by feature name or an array of "
            f"{len(self.names)} numbers, got {type_name(case)}",
        )

    def columns(self, header: Sequence[str], where: str, *, exact: bool = False) -> list[int]:
        """For a CSV header, the column of each feature in feature order. Other columns are
        allowed (id, diagnosis, ...) unless `exact`."""
        found: dict[int, list[int]] = {}
        for j, h in enumerate(header):
            i = self.feature_index(h)
            if i is not None:
                found.setdefault(i, []).append(j)
        missing = [n for i, n in enumerate(self.names) if i not in found]
        if missing:
            more = " ..." if len(missing) > 5 else ""
            problem = (
                f"the header lacks the feature column(s) {', '.join(missing[:5])}{more}; expected "
                f"the {len(self.names)} features named (any common spelling)"
            )
            raise CaseError(where, problem)
        twice = [self.names[i] for i, js in found.items() if len(js) > 1]
        if twice:
            raise CaseError(where, f"the header names feature(s) {', '.join(twice)} more than once")
        if exact and len(header) != len(self.names):
            raise CaseError(
                where, f"the header has {len(header)} columns; expected only the {len(self.names)} features"
            )
        return [found[i][0] for i in range(len(self.names))]

    def from_cells(
        self,
        cells: Sequence[str],
        columns: Sequence[int],
        path: str,
        line: int,
        header: Sequence[str] | None = None,
    ) -> list[float]:
        """A case from one CSV row: feature i is in column `columns[i]`. Errors name the file,
        line and column (with the header's spelling of the column, if any)."""
        if len(cells) <= max(columns):
            where = f"{path}: line {line}" if path else f"line {line}"
            raise CaseError(where, f"has {len(cells)} columns; expected at least {max(columns) + 1}")
        names = header or {c: n for c, n in zip(columns, self.names)}
        return [
            self.value(j, cell(cells[c], where := file_where(path, line, c, names[c])), where)
            for j, c in enumerate(columns)
        ]
