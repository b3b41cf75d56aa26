"""Closed forms against scikit-learn and NumPy: ridge, eigen-shrinkage, soft threshold, norm-ball optima."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Lasso, Ridge

from regularkit import analysis as A
from regularkit.errors import RegularkitError


def data(n=50, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 3.0, 100.0])
def test_ridge_matches_sklearn(alpha):
    X, y = data()
    expected = Ridge(alpha=alpha, fit_intercept=False, solver="cholesky").fit(X, y).coef_
    np.testing.assert_allclose(A.ridge(X, y, alpha), expected, rtol=1e-10, atol=1e-12)
    Y = np.stack([y, 2 * y + 1], axis=1)
    expected2 = Ridge(alpha=alpha, fit_intercept=False, solver="cholesky").fit(X, Y).coef_.T
    np.testing.assert_allclose(A.ridge(X, Y, alpha), expected2, rtol=1e-10, atol=1e-12)


def test_ridge_worked_example_types_and_lstsq():
    np.testing.assert_allclose(A.ridge(np.eye(2), [2.0, 4.0], 1.0), [1.0, 2.0])  # (I + I)^-1 y = y / 2
    X, y = data()
    np.testing.assert_allclose(A.ridge(X, y, 0.0), np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-10)
    out = A.ridge(torch.from_numpy(X), torch.from_numpy(y), 0.5)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    assert isinstance(A.ridge(X, y, 0.5), np.ndarray)
    np.testing.assert_allclose(out.numpy(), A.ridge(X, y, 0.5), rtol=1e-12)


@pytest.mark.parametrize("args, match", [
    ((np.ones((3, 2)), np.ones(3), -1.0), r"alpha must be >= 0, got -1.0"),
    ((np.ones(3), np.ones(3), 1.0), r"X must be 2-D \(n_samples, n_features\), got shape \(3,\)"),
    ((np.ones((3, 2)), np.ones(4), 1.0), r"y must have 3 rows like X, got shape \(4,\)"),
    ((np.ones((3, 2)), np.ones(3), 0.0), r"X\^T X \+ alpha I is singular with alpha=0.0; use alpha > 0"),
    (([["a"]], [1.0], 1.0), r"X must be a numeric array or tensor, got \[\['a'\]\]"),
])
def test_ridge_errors(args, match):
    with pytest.raises(RegularkitError, match=match):
        A.ridge(*args)


def random_psd(d, seed, rank=None):
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((d, rank or d))
    return B @ B.T


def test_shrinkage_factors_worked_example():
    s = A.l2_shrinkage_factors(np.diag([3.0, 1.0]), 1.0)
    np.testing.assert_allclose(sorted(s.eigenvalues), [1.0, 3.0])
    np.testing.assert_allclose(sorted(s.factors), [0.5, 0.75])  # lambda / (lambda + alpha)
    np.testing.assert_allclose(A.l2_regularized_optimum(np.diag([3.0, 1.0]), [4.0, 4.0], 1.0), [3.0, 2.0])


@pytest.mark.parametrize("seed", range(3))
def test_shrinkage_matches_direct_solve(seed):
    H = random_psd(5, seed, rank=3 if seed == 2 else None)  # also a singular (flat-direction) Hessian
    w_star = np.random.default_rng(seed + 10).standard_normal(5)
    alpha = 0.7
    s = A.l2_shrinkage_factors(H, alpha)
    np.testing.assert_allclose(s.eigenvalues, np.clip(np.linalg.eigvalsh(H), 0, None), atol=1e-10)
    np.testing.assert_allclose(s.factors, s.eigenvalues / (s.eigenvalues + alpha))
    direct = np.linalg.solve(H + alpha * np.eye(5), H @ w_star)  # (H + alpha I)^-1 H w*
    np.testing.assert_allclose(A.l2_regularized_optimum(H, w_star, alpha), direct, atol=1e-10)
    # the optimum satisfies the slide's stationarity condition alpha w~ + H (w~ - w*) = 0
    w = s.apply(w_star)
    np.testing.assert_allclose(alpha * w + H @ (w - w_star), 0.0, atol=1e-10)
    torch_out = A.l2_regularized_optimum(torch.from_numpy(H), torch.from_numpy(w_star), alpha)
    assert isinstance(torch_out, torch.Tensor)
    np.testing.assert_allclose(torch_out.numpy(), direct, atol=1e-10)
    np.testing.assert_allclose(A.l2_regularized_optimum(H, w_star, 0.0), w_star)  # alpha = 0: no shrinkage


def test_linear_regression_slide_shrunk_ols_is_ridge():
    # Slide: w~ = (X^T X + alpha I)^-1 X^T X (X^T X)^-1 X^T y  -- the shrunk OLS solution is ridge.
    X, y = data(seed=4)
    w_ols = np.linalg.solve(X.T @ X, X.T @ y)
    np.testing.assert_allclose(A.l2_regularized_optimum(X.T @ X, w_ols, 5.0), A.ridge(X, y, 5.0), rtol=1e-9)


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 6), seed=st.integers(0, 10_000), alpha=st.floats(1e-3, 1e3))
def test_shrinkage_factors_are_in_0_1_and_shrink_the_norm(d, seed, alpha):
    H = random_psd(d, seed)
    w_star = np.random.default_rng(seed).standard_normal(d)
    s = A.l2_shrinkage_factors(H, alpha)
    assert np.all((s.factors >= 0) & (s.factors < 1))
    assert np.linalg.norm(s.apply(w_star)) <= np.linalg.norm(w_star) + 1e-12


@pytest.mark.parametrize("H, alpha, match", [
    (np.ones((2, 3)), 1.0, r"H must be a square matrix, got shape \(2, 3\)"),
    (np.array([[1.0, 2.0], [0.0, 1.0]]), 1.0, r"H must be symmetric \(a Hessian\), got max \|H - H\^T\| = 2"),
    (np.diag([1.0, -3.0]), 1.0, r"H must be positive semi-definite \(a minimum\), got smallest eigenvalue -3"),
    (np.eye(2), -0.5, r"alpha must be >= 0, got -0.5"),
])
def test_shrinkage_errors(H, alpha, match):
    with pytest.raises(RegularkitError, match=match):
        A.l2_shrinkage_factors(H, alpha)
    with pytest.raises(RegularkitError, match=r"w_star must have length 2, got shape \(3,\)"):
        A.l2_regularized_optimum(np.eye(2), np.ones(3), 1.0)


def test_soft_threshold_worked_example_and_numpy():
    w = np.array([3.0, -0.5, 0.2, -4.0, 0.0])
    np.testing.assert_allclose(A.l1_soft_threshold(w, 1.0), [2.0, 0.0, 0.0, -3.0, 0.0])
    h = np.array([1.0, 0.25, 10.0, 2.0, 1.0])
    np.testing.assert_allclose(A.l1_soft_threshold(w, 1.0, h), [2.0, -0.0, 0.1, -3.5, 0.0])  # shift lam / H_ii
    rng = np.random.default_rng(0)
    w, h = rng.standard_normal(100), rng.uniform(0.1, 3.0, 100)
    np.testing.assert_allclose(A.l1_soft_threshold(w, 0.4, h), np.sign(w) * np.maximum(0, np.abs(w) - 0.4 / h))
    out = A.l1_soft_threshold(torch.from_numpy(w), 0.4, torch.from_numpy(h))
    assert isinstance(out, torch.Tensor) and np.array_equal(out.numpy() == 0, np.abs(w) <= 0.4 / h)


def orthogonal_design(n, d, h_diag, seed):
    """X with X^T X = n diag(h): the Hessian of 1/(2n) ||y - X w||^2 is exactly diag(h)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, d)))
    return q * np.sqrt(n * np.asarray(h_diag))


@pytest.mark.parametrize("h_diag", [np.ones(6), np.array([0.5, 1.0, 2.0, 4.0, 1.5, 0.8])])
@pytest.mark.parametrize("alpha", [0.05, 0.3])
def test_soft_threshold_is_sklearn_lasso_on_orthogonal_design(h_diag, alpha):
    # sklearn's Lasso: 1/(2n) ||y - Xw||^2 + alpha ||w||_1.  With X^T X = n diag(h) its exact solution is
    # the slide's soft threshold of the least-squares w* with lambda = alpha and H_ii = h_i.
    n, d = 200, 6
    X = orthogonal_design(n, d, h_diag, seed=1)
    rng = np.random.default_rng(2)
    y = X @ np.array([1.0, -0.5, 0.2, 0.05, -0.02, 0.0]) + 0.05 * rng.standard_normal(n)
    w_star = np.linalg.solve(X.T @ X, X.T @ y)
    lasso = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y)
    expected = A.l1_soft_threshold(w_star, alpha, h_diag)
    np.testing.assert_allclose(lasso.coef_, expected, atol=1e-8)
    assert np.array_equal(lasso.coef_ == 0, expected == 0) and (expected == 0).any()


@pytest.mark.parametrize("args, match", [
    ((np.ones(3), -1.0), r"lam must be >= 0, got -1.0"),
    ((np.ones(3), 1.0, 0.0), r"h_diag must be > 0 \(a minimum has positive curvature\), got 0.0"),
    ((np.ones(3), 1.0, np.ones(2)), r"h_diag of shape \(2,\) does not match w_star of shape \(3,\)"),
])
def test_soft_threshold_errors(args, match):
    with pytest.raises(RegularkitError, match=match):
        A.l1_soft_threshold(*args)


@pytest.mark.parametrize("norm, p", [("l1", 1), ("l2", 2)])
def test_norm_ball_optimum(norm, p):
    w_star, h = np.array([2.0, 0.4, -1.0]), np.array([1.0, 2.0, 0.5])
    w = A.norm_ball_optimum(w_star, h, 1.0, norm)
    assert np.linalg.norm(w, p) == pytest.approx(1.0, abs=1e-12)  # on the surface
    grad = h * (w - w_star)  # KKT: the loss gradient is -lam times a (sub)gradient of the norm, lam > 0
    if norm == "l2":
        lam = -grad @ w / (w @ w)
        assert lam > 0
        np.testing.assert_allclose(grad, -lam * w, atol=1e-9)
        assert np.all(w != 0)
    else:
        nz = w != 0
        lam = -grad[nz][0] / np.sign(w[nz][0])
        np.testing.assert_allclose(grad[nz], -lam * np.sign(w[nz]), atol=1e-9)
        assert np.all(np.abs(grad[~nz]) <= lam + 1e-9) and (~nz).any()  # exact zeros: sparsity
    # a brute-force check: no feasible point on a fine boundary sample does better
    rng = np.random.default_rng(0)
    cand = rng.standard_normal((20000, 3))
    cand /= np.linalg.norm(cand, p, axis=1, keepdims=True)
    loss = lambda v: 0.5 * np.sum(h * (v - w_star) ** 2, axis=-1)  # noqa: E731
    assert loss(w) <= loss(cand).min() + 1e-12
    np.testing.assert_allclose(A.norm_ball_optimum(w_star, h, 10.0, norm), w_star)  # inside: unconstrained
    with pytest.raises(RegularkitError, match=r"radius must be > 0, got 0"):
        A.norm_ball_optimum(w_star, h, 0, norm)


def test_ridge_on_validation_chooses_the_alpha_of_ridgecv_with_a_predefined_split_and_fits_the_training_rows():
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge, RidgeCV
    from sklearn.model_selection import PredefinedSplit

    from regularkit.analysis import RIDGE_ALPHAS, ridge_on_validation
    X, y = load_diabetes(return_X_y=True)
    X = (X - X[:300].mean(0)) / X[:300].std(0)
    fit = ridge_on_validation(X[:300], y[:300], X[300:], y[300:])
    fold = np.r_[-np.ones(300, dtype=int), np.zeros(len(y) - 300, dtype=int)]  # -1: always training
    ref = RidgeCV(alphas=RIDGE_ALPHAS, cv=PredefinedSplit(fold), scoring="neg_mean_squared_error").fit(X, y)
    assert fit.alpha == pytest.approx(ref.alpha_)
    on_train = Ridge(alpha=fit.alpha).fit(X[:300], y[:300])   # RidgeCV refits on all rows; we keep training only
    np.testing.assert_allclose(fit.coef, on_train.coef_, rtol=1e-8, atol=1e-8)
    assert float(fit.intercept) == pytest.approx(on_train.intercept_)
    assert fit.val_mse == pytest.approx(np.mean((on_train.predict(X[300:]) - y[300:]) ** 2))
    np.testing.assert_allclose(fit.predict(X[300:]), on_train.predict(X[300:]), rtol=1e-9)


def test_ridge_on_validation_multi_output_and_bad_input():
    from regularkit.analysis import ridge_on_validation
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    Y = X @ rng.normal(size=(3, 2)) + 0.1 * rng.normal(size=(60, 2)) + 5.0
    fit = ridge_on_validation(X[:40], Y[:40], X[40:], Y[40:])
    assert fit.coef.shape == (3, 2) and fit.intercept.shape == (2,) and fit.val_mse < 0.05
    with pytest.raises(RegularkitError, match="same columns"):
        ridge_on_validation(X[:40], Y[:40], X[40:, :2], Y[40:])
    with pytest.raises(RegularkitError, match="at least one value"):
        ridge_on_validation(X[:40], Y[:40], X[40:], Y[40:], alphas=())
