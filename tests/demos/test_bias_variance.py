"""Demos: the numbers behind the figures (seeded, with the properties they illustrate) and atomic PNGs."""

import numpy as np
import pytest

from regularkit import demos as D
from regularkit.errors import RegularkitError

PNG = b"\x89PNG\r\n\x1a\n"

@pytest.fixture(scope="module")
def curve():
    return D.bias_variance_curve(0)


def test_bias_variance_curve_is_seeded(curve):
    again, other = D.bias_variance_curve(0), D.bias_variance_curve(1)
    np.testing.assert_array_equal(curve.test_mse, again.test_mse)
    np.testing.assert_array_equal(curve.y_train, again.y_train)
    assert not np.array_equal(curve.test_mse, other.test_mse)


def test_bias_variance_shapes_the_lecture_describes(curve):
    # nested least-squares models: training error never goes up with the degree
    assert np.all(np.diff(curve.train_mse) <= 1e-12)
    # test error is U-shaped: both ends are far worse than the best, interior, degree
    best = curve.best_degree
    assert 1 < best < curve.degrees[-1]
    assert curve.test_mse[0] > 3 * curve.test_mse.min() and curve.test_mse[-1] > 3 * curve.test_mse.min()
    # bias falls and variance rises with capacity
    assert curve.bias2[0] > 10 * curve.bias2[best] and curve.variance[-1] > 10 * curve.variance[0]
    # expected test error = bias^2 + variance + noise^2 (up to the finite test sample's cross term)
    np.testing.assert_allclose(curve.test_mse, curve.bias2 + curve.variance + curve.noise ** 2, rtol=0.1)


def test_bias_variance_errors():
    with pytest.raises(RegularkitError, match=r"n_train must be >= 2, got 1"):
        D.bias_variance_curve(0, n_train=1)
    with pytest.raises(RegularkitError, match=r"noise must be > 0, got 0"):
        D.bias_variance_curve(0, noise=0)


@pytest.mark.parametrize("demo, names", [
    (D.bias_variance_demo, ["bias_variance_error.png", "bias_variance_fits.png"]),
    (D.l1_vs_l2_demo, ["l1_vs_l2_geometry.png", "l1_vs_l2_paths.png"]),
])
def test_demos_write_pngs_atomically(tmp_path, demo, names):
    out = tmp_path / "figs"  # created on demand
    paths = demo(out, seed=0)
    assert [p.name for p in paths] == names and all(p.parent == out for p in paths)
    for p in paths:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000
    # overwriting leaves exactly the named files: no temp file behind
    demo(out, seed=1)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
