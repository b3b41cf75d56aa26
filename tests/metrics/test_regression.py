"""metrics/regression.py against scikit-learn's metrics, single and multi-output."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from regularkit.errors import RegularkitError
from regularkit.metrics.regression import mae, r2, regression_metrics, rmse


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), k=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_against_scikit_learn(n, k, seed):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, k)) * rng.uniform(0.5, 10, size=k)
    p = t + rng.normal(size=(n, k))
    if k == 1:
        t, p = t[:, 0], p[:, 0]
    assert rmse(p, t) == pytest.approx(skm.root_mean_squared_error(t, p), rel=1e-12)
    assert mae(p, t) == pytest.approx(skm.mean_absolute_error(t, p), rel=1e-12)
    assert r2(p, t) == pytest.approx(skm.r2_score(t, p), rel=1e-10, abs=1e-12)


def test_tensors_perfect_predictions_and_a_constant_target():
    y = torch.tensor([1.0, 2.0, 4.0])
    assert regression_metrics(y, y) == {"rmse": 0.0, "mae": 0.0, "r2": 1.0}
    assert rmse(torch.tensor([0.0, 0.0]), torch.tensor([3.0, -4.0])) == pytest.approx(math.sqrt(12.5))
    assert math.isnan(r2([1.0, 2.0], [3.0, 3.0]))   # undefined, never a silent number


def test_shapes_must_match():
    with pytest.raises(RegularkitError, match=r"same \(n,\) or \(n, k\) shape with n > 0, got \(3,\) and \(2,\)"):
        rmse([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(RegularkitError, match="got \\(0,\\) and \\(0,\\)"):
        mae([], [])
