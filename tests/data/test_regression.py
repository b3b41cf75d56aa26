"""Regression data: the target checks, the auto rule, the dataset, and standardization on training rows."""
import numpy as np
import pytest
import torch

from regularkit.data.regression import RegressionDataset, as_targets, is_continuous, standardize
from regularkit.data.splits import make_splits_from_indices
from regularkit.errors import RegularkitError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(20, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5]) + 3.0).astype(np.float32)


@pytest.mark.parametrize("y, expected", [
    (np.array([1.5, 2.0]), True), (np.arange(21.0) * 3, True),  # a fraction, or 21 distinct whole values
    (np.array([0.0, 1.0, 2.0, 1.0]), False),  # a few whole floats: labels that lost their cast
    (np.array([1, 2, 3]), False), (np.array(["a", "b"]), False), (np.array([True, False]), False),
    (np.zeros(0), False),
])
def test_the_auto_rule_reads_the_dtype(y, expected):
    assert is_continuous(y) is expected


def test_targets_become_float32_n_by_k():
    out = as_targets("y", np.arange(4, dtype=np.float64), 4, source="s")
    assert out.dtype == np.float32 and out.shape == (4, 1)
    assert as_targets("y", np.ones((4, 2)) * np.arange(4)[:, None], 4, source="s").shape == (4, 2)


@pytest.mark.parametrize("y, n, match", [
    (np.array([1.0, np.nan, 2.0]), 3, r"^s: y holds 1 non-finite target values \(NaN or inf\)$"),
    (np.array([5.0, 5.0, 5.0]), 3, r"^s: y column 0 is constant \(5\); there is nothing to learn$"),
    (np.array(["1.5", "x"]), 2, r"^s: y must hold real numbers for regression, got dtype <U3$"),
    (np.array([1.0]), 1, r"^s: y has 1 row; a regression needs at least 2$"),
    (np.array([1.0, 2.0]), 3, r"^s: y must have shape \(3,\) or \(3, k\) to match x, got \(2, 1\)$"),
])
def test_bad_targets_are_one_line_naming_the_value(y, n, match):
    with pytest.raises(RegularkitError, match=match):
        as_targets("y", y, n, source="s")


def test_a_regression_dataset_carries_k_outputs_in_num_classes():
    ds = RegressionDataset("r", X[:15], Y[:15, None], X[15:], Y[15:, None], num_classes=1, classes=("y",))
    assert ds.task == "regression" and ds.num_outputs == 1 and ds.kind == "vectors"
    assert not ds.y_train.flags.writeable
    with pytest.raises(RegularkitError, match=r"num_classes must be the number of outputs 1, got 2"):
        RegressionDataset("r", X[:15], Y[:15, None], X[15:], Y[15:, None], num_classes=2, classes=("y",))


def test_standardization_uses_the_training_rows_only():
    ds = RegressionDataset("r", X[:15], Y[:15, None], X[15:], Y[15:, None], num_classes=1, classes=("y",))
    splits = standardize(make_splits_from_indices(ds, np.arange(10), np.arange(10, 15)), ("y",), "mae")
    mean, std = Y[:10].astype(np.float64).mean(), Y[:10].astype(np.float64).std()  # ddof 0, training rows
    assert splits.regression.mean[0] == pytest.approx(mean) and splits.regression.std[0] == pytest.approx(std)
    assert splits.task == "regression" and splits.regression.loss == "mae"
    np.testing.assert_allclose(splits.y_test.numpy()[:, 0], (Y[15:] - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(splits.regression.to_units(splits.y_val).numpy()[:, 0], Y[10:15], rtol=1e-5)
    assert float(splits.y_train.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(splits.y_train.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(splits.x_train, torch.from_numpy(X[:10]))
