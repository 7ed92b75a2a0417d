import numpy as np
import pytest

from gan_jax.data import (
    FEATURE_NAMES,
    CaseError,
    DataError,
    cases,
    load_bundled,
    load_csv,
    load_dataset,
    load_uci,
)
from gan_jax.data.wdbc import canonical_feature_name


@pytest.fixture(scope="module")
def bundled():
    return load_bundled()


ROWS = [0, 1, 19, 20, 2, 21]  # malignant and benign cases


def _uci_lines(ds):
    rows = []
    for i in ROWS:
        label = "M" if ds.y[i] else "B"
        rows.append(",".join([str(842300 + i), label] + [repr(float(v)) for v in ds.x[i]]))
    return rows


def _write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_bundled_shape_labels_and_names(bundled):
    assert bundled.x.shape == (569, 30) and bundled.x.dtype == np.float32
    assert bundled.y.sum() == 212 and (bundled.y == 0).sum() == 357  # 212 malignant = 1
    assert bundled.feature_names == FEATURE_NAMES and len(set(FEATURE_NAMES)) == 30
    assert bundled.label_names == ("benign", "malignant")
    # The first WDBC case (ID 842302) is malignant with mean radius 17.99.
    assert bundled.y[0] == 1 and bundled.x[0, 0] == pytest.approx(17.99)


@pytest.mark.parametrize(
    "spelling",
    [
        "mean radius",
        "radius_mean",
        "Radius Mean",
        "radius error",
        "worst radius",
        "concave points_mean",
        "fractal_dimension_worst",
    ],
)
def test_canonical_feature_names(spelling):
    assert canonical_feature_name(spelling) in FEATURE_NAMES


def test_uci_file_roundtrip(tmp_path, bundled):
    ds = load_uci(_write(tmp_path, "wdbc.data", _uci_lines(bundled)))
    np.testing.assert_allclose(ds.x, bundled.x[ROWS], rtol=1e-6)
    np.testing.assert_array_equal(ds.y, bundled.y[ROWS])
    # load_dataset recognises the format by the missing header.
    assert load_dataset(str(tmp_path / "wdbc.data")).x.shape == (6, 30)


def test_headed_csv_any_column_order_and_spelling(tmp_path, bundled):
    header = ["id", "diagnosis"] + [f"{m.replace('_', ' ')}" for m in FEATURE_NAMES]
    names = list(reversed(header[2:]))  # reversed columns, Kaggle-style spaces
    order = [FEATURE_NAMES.index(canonical_feature_name(n)) for n in names]
    lines = [",".join(["diagnosis", "id"] + names)]
    for i in ROWS:
        cells = ["M" if bundled.y[i] else "B", str(i)] + [repr(float(bundled.x[i, j])) for j in order]
        lines.append(",".join(cells))
    ds = load_csv(_write(tmp_path, "cases.csv", lines))
    np.testing.assert_allclose(ds.x, bundled.x[ROWS], rtol=1e-6)
    np.testing.assert_array_equal(ds.y, bundled.y[ROWS])
    assert load_dataset(str(tmp_path / "cases.csv")).x.shape == (6, 30)


def _headed(bundled):
    lines = [",".join(["diagnosis", *FEATURE_NAMES])]
    for i in ROWS[:4]:
        lines.append(",".join([str(bundled.y[i])] + [repr(float(v)) for v in bundled.x[i]]))
    return lines


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ls: ls[:1] + [ls[1].replace(",", ";", 3)] + ls[2:], r"line 2 has .* columns"),
        (
            lambda ls: ls[:2] + [ls[2].replace(",B,", ",X,", 1)] + ls[3:],
            r"line 3, column 2 \(diagnosis\): unknown label 'X'",
        ),
        (
            lambda ls: ls[:1] + [ls[1][: ls[1].rfind(",")] + ",abc"] + ls[2:],
            r"line 2, column 32 \(fractal_dimension_worst\): must be a number, got text$",
        ),
        (
            lambda ls: ls[:1] + [ls[1][: ls[1].rfind(",")] + ",nan"] + ls[2:],
            r"line 2, column 32 \(fractal_dimension_worst\): must be a finite number .*, got NaN$",
        ),
        (lambda ls: [line.replace("M", "B") for line in ls], r"every row is benign"),
        (lambda ls: [], r"empty"),
    ],
    ids=["column-count", "label", "non-numeric", "non-finite", "single-class", "empty"],
)
def test_uci_bad_files(tmp_path, bundled, mutate, message):
    path = _write(tmp_path, "bad.data", mutate(_uci_lines(bundled)))
    with pytest.raises(DataError, match=message) as e:
        load_uci(path)
    assert "bad.data" in str(e.value)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda ls: (
                [ls[0].replace(",radius_mean", "")]
                + [l.split(",", 1)[0] + "," + l.split(",", 2)[2] for l in ls[1:]]
            ),
            r"line 1 \(header\): the header lacks the feature column\(s\) radius_mean;",
        ),
        (
            lambda ls: [ls[0] + ",age"] + [l + ",50" for l in ls[1:]],
            r"line 1 \(header\): unexpected columns \['age'\]",
        ),
        (
            lambda ls: [ls[0].replace("diagnosis", "outcome")] + ls[1:],
            r"line 1 \(header\): expected exactly one label column",
        ),
        (lambda ls: ls[:1], r"no data rows"),
        (lambda ls: ls[:2] + [ls[2] + ",1"], r"line 3 has 32 columns; the header has 31"),
        (
            lambda ls: ls[:3] + [ls[3].replace(",", ",inf,", 1).rsplit(",", 1)[0]],
            r"line 4, column 2 \(radius_mean\): must be a finite number .*, got an infinity$",
        ),
    ],
    ids=["missing-column", "extra-column", "no-label-column", "header-only", "ragged-row", "inf"],
)
def test_headed_bad_files(tmp_path, bundled, mutate, message):
    path = _write(tmp_path, "bad.csv", mutate(_headed(bundled)))
    with pytest.raises(DataError, match=message):
        load_csv(path)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_dataset(str(tmp_path / "nope.csv"))
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        load_dataset(str(tmp_path / "blob.bin"))


# -- the one case validator (gan_jax.data.cases), shared by loaders, server and predict ---------


def test_loader_refuses_a_value_that_overflows_float32(tmp_path, bundled):
    """Bug caught: 1e39 is finite as a Python float but becomes inf in the float32 array."""
    lines = _headed(bundled)
    cells = lines[2].split(",")
    cells[4] = "1e39"  # area_mean of the second case
    lines[2] = ",".join(cells)
    with pytest.raises(
        CaseError,
        match=r"bad.csv: line 3, column 5 \(area_mean\): must be a finite number "
        r"within the float32 range .*, got a number outside it$",
    ):
        load_csv(_write(tmp_path, "bad.csv", lines))


def test_duplicated_feature_columns_are_refused(tmp_path, bundled):
    lines = _headed(bundled)
    lines = [lines[0] + ",mean radius"] + [line + ",1.0" for line in lines[1:]]
    with pytest.raises(
        DataError, match=r"line 1 \(header\): the header names feature\(s\) radius_mean more than once"
    ):
        load_csv(_write(tmp_path, "bad.csv", lines))


F32_MAX = float(np.finfo(np.float32).max)


@pytest.mark.parametrize(
    "value, problem",
    [
        (F32_MAX, None),
        (-F32_MAX, None),
        (0, None),
        (1e-45, None),
        (float(np.nextafter(F32_MAX, np.inf)), "got a number outside it"),
        (1e39, "got a number outside it"),
        pytest.param(10**400, "got a number outside it", id="int-1e400"),  # a JSON integer beyond any float
        (float("nan"), "got NaN"),
        (float("-inf"), "got an infinity"),
        (True, "must be a number, got a boolean"),
        ("1.0", "must be a number, got a string"),
        (None, "must be a number, got null"),
        ([1.0], "must be a number, got a list"),
    ],
)
def test_value_problem(value, problem):
    if problem is None:
        assert cases.value_problem(value) is None and cases.number(value, "x") == float(value)
    else:
        assert cases.value_problem(value).endswith(problem)
        with pytest.raises(CaseError) as e:
            cases.number(value, "instances[0][3]")
        assert str(e.value) == f"instances[0][3]: {cases.value_problem(value)}"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("abc", "got text"),
        ("", "got an empty cell"),
        ("1e39", "outside it"),
        ("nan", "got NaN"),
        ("-inf", "got an infinity"),
    ],
)
def test_cell_problems(text, problem):
    with pytest.raises(CaseError, match=problem):
        cases.cell(text, "f.csv: line 2, column 1 (radius_mean)")
    assert cases.cell(" 17.99 ", "w") == 17.99


def test_finite_array_names_the_first_bad_element():
    x = np.ones((2, 30))
    x[1, 4], x[1, 7] = 1e39, np.nan
    with pytest.raises(CaseError) as e:
        cases.finite_array(x, lambda i: f"inputs[0].contents[{i}]")
    assert e.value.where == "inputs[0].contents[34]" and e.value.problem == cases.value_problem(1e39)
    assert cases.finite_array(np.ones(3), str).dtype == np.float32


def test_schema_cases_by_order_and_by_name():
    schema = cases.CaseSchema(FEATURE_NAMES)
    values = [float(i) for i in range(30)]
    assert schema.from_json(values, "features") == values
    by_name = {f"mean {n[:-5]}" if n.endswith("_mean") else n: v for n, v in zip(FEATURE_NAMES, values)}
    assert schema.from_json(by_name, "features") == values
    for bad, message in [
        (values[:29], "features: expected 30 features in the order radius_mean, texture_mean, ..., got 29"),
        ({**by_name, "age": 1.0}, "features: unknown feature 'age'"),
        ({"radius_mean": 1.0}, "features: missing 29 feature(s): texture_mean"),
        ({"radius_mean": 1.0, "mean radius": 2.0}, "features: feature 'radius_mean' is given twice"),
        (7, "features: a case must be an object keyed by feature name or an array of 30 numbers, got int"),
        ([*values[:3], "x", *values[4:]], "features[3]: must be a number, got a string"),
    ]:
        with pytest.raises(CaseError) as e:
            schema.from_json(bad, "features")
        assert str(e.value).startswith(message), str(e.value)


def test_model_bounds_come_from_the_scaler_and_are_checked_before_float32_rounding():
    """Bug caught (by schemathesis): a tensor value just below a model's lower bound was accepted
    because it was compared after rounding to float32."""
    shift, scale = np.zeros(30), np.full(30, 4068.8)
    low, high = cases.scaler_bounds(shift, scale)
    assert high[0] == cases.SCALER_UNITS * 4068.8 and low[0] == -high[0]
    schema = cases.CaseSchema(FEATURE_NAMES, (low, high))
    x = np.zeros((1, 30))
    x[0, 23] = low[23] - 1.0  # rounds to inside the bound in float32
    with pytest.raises(
        CaseError, match=r"must be within \[-4\.0688e\+09, 4\.0688e\+09\] for this model"
    ) as e:
        schema.array(x, lambda i: f"inputs[0].data[{i}]")
    assert e.value.where == "inputs[0].data[23]"
    with pytest.raises(CaseError, match="for this model"):
        schema.from_json([0.0] * 23 + [float(low[23]) - 1.0] + [0.0] * 6, "features")
    assert schema.from_json([0.0] * 23 + [float(low[23])] + [0.0] * 6, "features")[23] == low[23]
