import numpy as np
import pytest

from gan_jax.data import FEATURE_NAMES, DataError, load_bundled, load_csv, load_dataset, load_uci
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
    "spelling", ["mean radius", "radius_mean", "Radius Mean", "radius error", "worst radius",
                 "concave points_mean", "fractal_dimension_worst"],
)  # fmt: skip
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
        (lambda ls: ls[:1] + [ls[1].replace(",", ";", 3)] + ls[2:], r"row 2 has .* columns"),
        (lambda ls: ls[:2] + [ls[2].replace(",B,", ",X,", 1)] + ls[3:], r"row 3, column 'diagnosis': unknown label 'X'"),
        (lambda ls: ls[:1] + [ls[1][: ls[1].rfind(",")] + ",abc"] + ls[2:], r"row 2, column 'fractal_dimension_worst': 'abc' is not a number"),
        (lambda ls: ls[:1] + [ls[1][: ls[1].rfind(",")] + ",nan"] + ls[2:], r"row 2, column 'fractal_dimension_worst': 'nan' is not finite"),
        (lambda ls: [line.replace("M", "B") for line in ls], r"every row is benign"),
        (lambda ls: [], r"empty"),
    ],
    ids=["column-count", "label", "non-numeric", "non-finite", "single-class", "empty"],
)  # fmt: skip
def test_uci_bad_files(tmp_path, bundled, mutate, message):
    path = _write(tmp_path, "bad.data", mutate(_uci_lines(bundled)))
    with pytest.raises(DataError, match=message) as e:
        load_uci(path)
    assert "bad.data" in str(e.value)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ls: [ls[0].replace(",radius_mean", "")] + [l.split(",", 1)[0] + "," + l.split(",", 2)[2] for l in ls[1:]], r"row 1: missing feature columns \['radius_mean'\]"),
        (lambda ls: [ls[0] + ",age"] + [l + ",50" for l in ls[1:]], r"row 1: unexpected columns \['age'\]"),
        (lambda ls: [ls[0].replace("diagnosis", "outcome")] + ls[1:], r"row 1: expected exactly one label column"),
        (lambda ls: ls[:1], r"no data rows"),
        (lambda ls: ls[:2] + [ls[2] + ",1"], r"row 3 has 32 columns; the header has 31"),
        (lambda ls: ls[:3] + [ls[3].replace(",", ",inf,", 1).rsplit(",", 1)[0]], r"row 4, column 'radius_mean': 'inf' is not finite"),
    ],
    ids=["missing-column", "extra-column", "no-label-column", "header-only", "ragged-row", "inf"],
)  # fmt: skip
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
