"""Demos: the numbers behind the figures (seeded, with the properties they illustrate) and atomic PNGs."""

import numpy as np
import pytest

from regularkit import demos as D
from regularkit.analysis import norm_ball_optimum

PNG = b"\x89PNG\r\n\x1a\n"

@pytest.fixture(scope="module")
def curve():
    return D.bias_variance_curve(0)


def test_regularization_paths_show_exact_lasso_zeros():
    res = D.regularization_paths(0)
    again = D.regularization_paths(0)
    np.testing.assert_array_equal(res.lasso_coefs, again.lasso_coefs)
    np.testing.assert_array_equal(res.ridge_coefs, again.ridge_coefs)
    assert np.all(res.ridge_coefs != 0)  # ridge only shrinks
    norms = np.linalg.norm(res.ridge_coefs, axis=1)
    assert np.all(np.diff(norms) < 0)  # ... monotonically in alpha
    assert np.all(res.lasso_coefs[0] != 0) and np.all(res.lasso_coefs[-1] == 0)  # lasso: exact zeros
    zeros = (res.lasso_coefs == 0).sum(axis=1)
    assert len(set(zeros.tolist())) > 3  # coefficients drop out one after another
    # the weak half of the features is dropped before the strong half
    first_zero = [np.argmax(res.lasso_coefs[:, j] == 0) for j in range(res.lasso_coefs.shape[1])]
    half = len(first_zero) // 2
    assert max(first_zero[half:]) < min(first_zero[:half])


def test_geometry_config_gives_a_corner_for_l1_only():
    g = D.L1_L2_GEOMETRY
    l1 = norm_ball_optimum(np.array(g["w_star"]), np.array(g["h_diag"]), g["radius"], "l1")
    l2 = norm_ball_optimum(np.array(g["w_star"]), np.array(g["h_diag"]), g["radius"], "l2")
    assert (l1 == 0).sum() == 1 and np.all(l2 != 0)
