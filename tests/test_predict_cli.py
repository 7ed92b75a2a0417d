"""`gan-jax predict` (batch scoring of a CSV) and `gan-jax export`, through the real CLI."""

import csv

import numpy as np
import pytest

from gan_jax import cli
from gan_jax.artifacts import bundle
from gan_jax.data import FEATURE_NAMES, load_dataset
from gan_jax.serve import BundleModel


def write_cases(path, x, header):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        for i, row in enumerate(x):
            w.writerow([*(([f"P{i:04d}", "M"]) if header else []), *map(repr, map(float, row))])


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_scores_every_row_like_the_model(tiny_bundle_export, tmp_path, capsys):
    path, b = tiny_bundle_export
    data = load_dataset()
    # scikit-learn's spelling of the columns, plus an id (copied) and a diagnosis (ignored).
    from sklearn.datasets import load_breast_cancer

    header = ["id", "diagnosis", *load_breast_cancer().feature_names]
    write_cases(tmp_path / "in.csv", data.x, header)
    assert (
        cli.main(
            [
                "predict",
                str(path),
                str(tmp_path / "in.csv"),
                "-o",
                str(tmp_path / "out.csv"),
                "--batch-size",
                "256",
            ]
        )
        == 0
    )
    assert "scored 569 cases" in capsys.readouterr().out
    rows = read(tmp_path / "out.csv")
    assert [r["id"] for r in rows] == [f"P{i:04d}" for i in range(569)]
    got = np.array([float(r["malignant_probability"]) for r in rows], np.float32)
    expected = BundleModel(b, max_batch=256).predict(data.x)  # the same batches: bit for bit
    np.testing.assert_array_equal(got, expected)
    assert [r["label"] for r in rows] == ["malignant" if p >= 0.5 else "benign" for p in expected]


def test_chunking_does_not_change_the_answers_beyond_float_rounding(tiny_bundle_export, tmp_path):
    path, _ = tiny_bundle_export
    x = load_dataset().x[:50]
    write_cases(tmp_path / "in.csv", x, header=None)
    for bs in ("7", "4096"):
        assert (
            cli.main(
                [
                    "predict",
                    str(path),
                    str(tmp_path / "in.csv"),
                    "-o",
                    str(tmp_path / f"{bs}.csv"),
                    "--no-header",
                    "--batch-size",
                    bs,
                ]
            )
            == 0
        )
    small, large = (
        [float(r["malignant_probability"]) for r in read(tmp_path / f"{bs}.csv")] for bs in ("7", "4096")
    )
    assert list(read(tmp_path / "7.csv")[0]) == ["malignant_probability", "label"]
    np.testing.assert_allclose(small, large, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "radius_mean,texture_mean\n1,2\n",
            "line 1 (header): the header lacks the feature column(s) perimeter_mean",
        ),
        ("", "the file is empty"),
    ],
)
def test_bad_headers(tiny_bundle_export, tmp_path, capsys, content, message):
    (tmp_path / "in.csv").write_text(content)
    assert (
        cli.main(
            ["predict", str(tiny_bundle_export[0]), str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv")]
        )
        == 2
    )
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_bad_values_name_the_line_and_column(tiny_bundle_export, tmp_path, capsys):
    x = load_dataset().x[:3].astype(object)
    x[2, 4] = "n/a"
    write_cases(tmp_path / "in.csv", np.asarray(x[:2], np.float32), header=None)
    with open(tmp_path / "in.csv", "a") as f:
        f.write(",".join(map(str, x[2])) + "\n")
    assert (
        cli.main(
            [
                "predict",
                str(tiny_bundle_export[0]),
                str(tmp_path / "in.csv"),
                "-o",
                str(tmp_path / "o.csv"),
                "--no-header",
            ]
        )
        == 2
    )
    assert "in.csv: line 3, column 5 (smoothness_mean): must be a number, got text" in capsys.readouterr().err


def test_predict_refuses_a_bad_bundle(tmp_path, capsys):
    (tmp_path / "in.csv").write_text("1\n")
    assert cli.main(["predict", str(tmp_path), str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv")]) == 2
    assert "not a gan_jax bundle" in capsys.readouterr().err


def test_export_command_writes_a_loadable_bundle(tmp_path, capsys):
    out = tmp_path / "b"
    argv = [
        "export",
        str(out),
        "--set",
        "schedule.ae_steps=5",
        "--set",
        "schedule.gan_steps=5",
        "--set",
        "schedule.log_every=5",
    ]
    assert cli.main([*argv, "--fold", "0", "--model-version", "2024-test"]) == 0
    printed = capsys.readouterr().out
    assert "model 2024-test" in printed and "held-out fold" in printed
    loaded = bundle.load(out)
    assert loaded.model_version == "2024-test" and loaded.config.schedule.gan_steps == 5
    assert cli.main(argv) == 2  # refuses to overwrite
    assert "already holds a bundle" in capsys.readouterr().err
    assert cli.main([*argv, "--force"]) == 0


# -- one validation path: no output row for an invalid case (issue 11 §2) ---------------------


def overflow_file(path, x, header=FEATURE_NAMES):
    """A headed CSV of `x` whose second case has area_mean = 1e39 (overflows float32)."""
    lines = [",".join(["id", *header])]
    for i, row in enumerate(x):
        cells = [repr(float(v)) for v in row]
        if i == 1:
            cells[3] = "1e39"
        lines.append(",".join([f"P{i}", *cells]))
    path.write_text("\n".join(lines) + "\n")


def predict(bundle_path, tmp_path, *extra):
    return cli.main(
        ["predict", str(bundle_path), str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), *extra]
    )


def test_a_cell_that_overflows_float32_stops_with_file_line_column(tiny_bundle_export, tmp_path, capsys):
    """Bug caught: 1e39 became inf in float32, the model gave NaN, and the patient got
    "nan,benign" with exit 0 — a silent wrong diagnosis."""
    overflow_file(tmp_path / "in.csv", load_dataset().x[:3])
    assert predict(tiny_bundle_export[0], tmp_path) == 2
    err = capsys.readouterr().err
    assert (
        f"{tmp_path / 'in.csv'}: line 3, column 5 (area_mean): must be a finite number within the float32 "
        in err
    )
    assert err.rstrip().endswith("got a number outside it")
    assert not (tmp_path / "out.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]  # no temporary file left behind


def test_skip_invalid_leaves_the_case_out_and_says_which(tiny_bundle_export, tmp_path, capsys):
    path, b = tiny_bundle_export
    x = load_dataset().x[:3]
    overflow_file(tmp_path / "in.csv", x)
    assert predict(path, tmp_path, "--skip-invalid", "--batch-size", "2") == 0
    out, err = capsys.readouterr()
    assert "scored 2 cases" in out and "skipped 1 invalid case(s)" in out
    assert "skipped " + str(tmp_path / "in.csv") + ": line 3, column 5 (area_mean): must be a finite" in err
    rows = read(tmp_path / "out.csv")
    assert [r["id"] for r in rows] == ["P0", "P2"]  # no row at all for P1
    expected = BundleModel(b, max_batch=2).predict(x[[0, 2]])
    np.testing.assert_allclose([float(r["malignant_probability"]) for r in rows], expected, rtol=0, atol=1e-7)


def test_a_non_finite_probability_never_becomes_a_label(tiny_bundle_export, tmp_path, capsys, monkeypatch):
    """Bug caught: `p >= threshold` is False for NaN, so a NaN probability read as "benign"."""
    real_predict = BundleModel.predict

    def nan_for_the_second_row(self, x):
        proba = real_predict(self, x).copy()
        proba[1:2] = np.nan
        return proba

    monkeypatch.setattr(BundleModel, "predict", nan_for_the_second_row)
    write_cases(tmp_path / "in.csv", load_dataset().x[:3], header=None)
    for extra in ([], ["--skip-invalid"]):  # valid input: skipping does not apply, it must stop
        assert predict(tiny_bundle_export[0], tmp_path, "--no-header", *extra) == 2
        err = capsys.readouterr().err
        assert "line(s) 2: the model returned a non-finite probability for 1 case(s)" in err, err
        assert not (tmp_path / "out.csv").exists()


def test_values_the_model_cannot_score_get_the_servers_message(tiny_bundle_export, tmp_path, capsys):
    """Every feature at 3e38 (valid float32, but its scaled value overflows this model to NaN) is
    refused with the same words as the server's, naming the line and column."""
    x = load_dataset().x[:3].copy()
    x[1] = 3e38
    write_cases(tmp_path / "in.csv", x, header=None)
    assert predict(tiny_bundle_export[0], tmp_path, "--no-header") == 2
    err = capsys.readouterr().err
    assert "in.csv: line 2, column 1 (radius_mean): must be within [" in err
    assert "for this model (1e+06 scaler units around its training data; check the units)" in err
    assert not (tmp_path / "out.csv").exists()
