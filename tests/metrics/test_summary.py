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


def test_t_interval_matches_a_hand_computation():
    from regularkit.metrics.summary import paired_interval
    a, b = [0.050, 0.060, 0.055], [0.070, 0.075, 0.080]
    d = np.array(a) - np.array(b)              # -0.020, -0.015, -0.025
    half = 4.302652729749464 * d.std(ddof=1) / np.sqrt(3)  # t(2, 0.975) from a table
    iv = paired_interval(a, b)
    assert iv.method == "t" and iv.n == 3
    assert iv.mean == pytest.approx(-0.02) and iv.low == pytest.approx(-0.02 - half) and iv.high == pytest.approx(
        -0.02 + half)
    assert iv.excludes_zero


def test_bootstrap_from_five_pairs_is_seeded_and_covers_the_mean():
    from regularkit.metrics.summary import paired_interval
    rng = np.random.default_rng(0)
    a = rng.normal(0.10, 0.01, 8)
    noise = rng.normal(0.0, 0.01, 8)
    b = a + noise - noise.mean()              # differences of mean exactly 0
    iv = paired_interval(a, b)
    assert iv.method == "bootstrap" and iv == paired_interval(a, b)
    assert iv.low < iv.mean < iv.high and not iv.excludes_zero
    # percentile bootstrap by hand: resample the differences, take the 2.5 / 97.5 percentiles
    d = a - b
    boot = np.array([rng2.choice(d, 8).mean() for rng2 in [np.random.default_rng(1)] for _ in range(4000)])
    assert iv.low == pytest.approx(np.percentile(boot, 2.5), abs=0.003)
    assert iv.high == pytest.approx(np.percentile(boot, 97.5), abs=0.003)


def test_one_pair_has_no_interval_and_lengths_must_match():
    from regularkit.errors import RegularkitError
    from regularkit.metrics.summary import paired_interval
    iv = paired_interval([0.1], [0.2])
    assert iv.method == "none" and math.isnan(iv.low) and not iv.excludes_zero
    with pytest.raises(RegularkitError, match="same length, got 2 and 3"):
        paired_interval([0.1, 0.2], [0.1, 0.2, 0.3])
