"""One gap definition, one spread definition (sample std, ddof = 1), checked against NumPy."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from regularkit.metrics.summary import gap, mean_std


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=30))
def test_mean_std_is_numpy_with_ddof_1(values):
    m, s = mean_std(values)
    assert m == pytest.approx(np.mean(values), abs=1e-6)
    assert s == pytest.approx(np.std(values, ddof=1), rel=1e-9, abs=1e-6)


def test_edge_cases_and_gap():
    assert mean_std([0.25]) == (0.25, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))
    assert gap(0.01, 0.07) == pytest.approx(0.06)
