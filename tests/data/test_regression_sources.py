"""Regression sources: tables (one or several targets, auto both ways), .npz files and arrays."""
import numpy as np
import pytest

from regularkit.data.regression_sources import regression_from_arrays, regression_npz, regression_table
from regularkit.errors import RegularkitError


def _table(tmp_path, rows, header="a,b,y,z"):
    path = tmp_path / "t.csv"
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def _rows(n=20):
    return [(i, (i * 7) % 5, f"{1.5 * i + 0.25:.2f}", float(2 * i)) for i in range(n)]


def test_auto_reads_a_fractional_target_as_regression_and_an_integer_one_as_classes(tmp_path):
    path = _table(tmp_path, _rows())
    ds = regression_table(path, target="y", task="auto", seed=1)
    assert ds.task == "regression" and ds.classes == ("y",) and ds.num_classes == 1
    assert len(ds.y_train) + len(ds.y_test) == 20 and len(ds.y_test) == 4
    assert ds.input_shape == (3,)  # a, b and z: every other column is a feature
    assert regression_table(path, target="a", task="auto") is None  # integers: classes, as before
    forced = regression_table(path, target="a", task="regression")
    assert forced.task == "regression"


def test_whole_floats_like_151_0_are_a_measurement_when_many_and_labels_when_few(tmp_path):
    path = _table(tmp_path, [(i, i % 3, f"{float(i * 3)}", 1.0 * i) for i in range(30)])
    assert regression_table(path, target="y", task="auto") is not None  # 30 distinct values
    path = _table(tmp_path, [(i, i % 3, f"{float(i % 3)}", 1.0 * i) for i in range(30)])
    assert regression_table(path, target="y", task="auto") is None  # 0.0, 1.0, 2.0: lost their cast


def test_several_target_columns_make_a_multi_output_dataset(tmp_path):
    ds = regression_table(_table(tmp_path, _rows()), target="y,z", task="regression", seed=0)
    assert ds.num_classes == 2 and ds.classes == ("y", "z") and ds.input_shape == (2,)
    rows = ds.sources["train_rows"]
    np.testing.assert_allclose(ds.y_train[:, 1], [2.0 * (r - 2) for r in rows])  # row 2 holds i = 0


@pytest.mark.parametrize("bad, match", [
    ("x", r"row 5: the target column 'y' holds 'x', not a finite number"),
    ("", r"row 5: the target column 'y' has no value"),
])
def test_a_bad_target_value_is_one_line_naming_its_row(tmp_path, bad, match):
    rows = _rows()
    rows[3] = (3, 1, bad, 6.0)
    with pytest.raises(RegularkitError, match=match):
        regression_table(_table(tmp_path, rows), target="y", task="auto")


def test_a_constant_target_and_one_row_are_refused(tmp_path):
    with pytest.raises(RegularkitError, match=r"y_train column 0 is constant"):
        regression_table(_table(tmp_path, [(i, i, "2.5", 1.0) for i in range(10)]), target="y", task="auto")
    with pytest.raises(RegularkitError, match=r"1 data row\(s\); a regression study needs at least 3"):
        regression_table(_table(tmp_path, [(1, 1, "2.5", 1.0)]), target="y", task="auto")


def test_npz_with_float_targets_and_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=30)
    np.savez(tmp_path / "r.npz", x_train=x[:20], y_train=y[:20], x_test=x[20:], y_test=y[20:])
    ds = regression_npz(tmp_path / "r.npz", task="auto")
    assert ds.task == "regression" and ds.y_test.shape == (10, 1) and ds.classes == ("y",)
    np.savez(tmp_path / "c.npz", x_train=x[:20], y_train=np.arange(20) % 2, x_test=x[20:], y_test=np.arange(10) % 2)
    assert regression_npz(tmp_path / "c.npz", task="auto") is None
    arrays = regression_from_arrays(x, np.stack([y, 2 * y], 1), seed=3)
    assert arrays.classes == ("y0", "y1") and len(arrays.y_test) == 6  # ceil(0.2 * 30)
    assert regression_from_arrays(x, np.arange(30), task="auto") is None
