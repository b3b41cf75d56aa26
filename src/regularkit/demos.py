"""Teaching figures: the bias-variance trade-off, and why L1 gives exact zeros where L2 does not.

Each demo has a pure data function (seeded with ``numpy.random.default_rng(seed)``:
same seed, same numbers) and a plotting function that writes PNGs atomically (temp
file in the same folder, then ``os.replace``) with matplotlib's Agg canvas -- no
pyplot, so no global backend state -- and returns their paths.

* Bias-variance (lecture 003, "Example: Model Capacity"): polynomials of increasing
  degree fitted by least squares to noisy samples of sin(2 pi x).  Training error
  falls with the degree (nested models); test error falls, then rises: under-fitting
  (high bias) on the left, over-fitting (high variance) on the right.
* L1 vs L2 (Goodfellow et al. 2016, fig. 7.1 and sec. 7.1.2): the loss contours first
  touch the L2 disc at a point with both coordinates non-zero, but the L1 diamond at a
  corner, where one coordinate is exactly 0.  Along a regularization path, lasso
  coefficients hit exactly 0 one after another (Tibshirani 1996); ridge coefficients
  only shrink.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from regularkit._io import atomic_savefig
from regularkit.analysis import norm_ball_optimum, ridge
from regularkit.errors import check_int, check_positive

__all__ = ["BiasVariance", "bias_variance_curve", "bias_variance_demo",
           "Paths", "regularization_paths", "l1_vs_l2_demo", "L1_L2_GEOMETRY"]


def _truth(x: np.ndarray) -> np.ndarray:
    return np.sin(2.0 * np.pi * x)


@dataclasses.dataclass(frozen=True)
class BiasVariance:
    """Errors per degree, averaged over ``n_repeats`` training sets, and the first set's fits."""

    degrees: np.ndarray
    train_mse: np.ndarray  # mean over training sets
    test_mse: np.ndarray   # mean over training sets, against noisy test targets
    bias2: np.ndarray      # mean over x of (E_D[f_D(x)] - f(x))^2
    variance: np.ndarray   # mean over x of Var_D[f_D(x)]
    noise: float
    x_train: np.ndarray    # the first training set ...
    y_train: np.ndarray
    fits: tuple            # ... and its numpy.polynomial.Polynomial per degree

    @property
    def best_degree(self) -> int:
        return int(self.degrees[np.argmin(self.test_mse)])


def bias_variance_curve(seed: int = 0, *, max_degree: int = 12, n_train: int = 15, n_test: int = 500,
                        noise: float = 0.3, n_repeats: int = 30) -> BiasVariance:
    """Least-squares polynomials of degree 0..max_degree on y = sin(2 pi x) + N(0, noise^2), x in [0, 1].

    Repeating over ``n_repeats`` training sets D gives the lecture's decomposition at the
    test points: E_D[(f_D(x) - f(x))^2] = bias^2 + variance (+ noise^2 against noisy targets).
    """
    max_degree = check_int("max_degree", max_degree, minimum=1)
    n_train = check_int("n_train", n_train, minimum=2)
    n_test = check_int("n_test", n_test, minimum=1)
    n_repeats = check_int("n_repeats", n_repeats, minimum=1)
    noise = check_positive("noise", noise)
    rng = np.random.default_rng(seed)
    x_test = rng.uniform(0.0, 1.0, n_test)
    y_test = _truth(x_test) + noise * rng.standard_normal(n_test)
    degrees = np.arange(0, min(max_degree, n_train - 1) + 1)
    # A fixed design, fresh noise per set (the textbook set-up): random x would let a rare
    # gap near an edge dominate the high-degree variance by orders of magnitude.
    x = np.linspace(0.0, 1.0, n_train)
    train = np.empty((n_repeats, degrees.size))
    preds = np.empty((n_repeats, degrees.size, n_test))
    for r in range(n_repeats):
        y = _truth(x) + noise * rng.standard_normal(n_train)
        # Polynomial.fit maps x to [-1, 1] first: far better conditioned than a raw Vandermonde.
        fits = tuple(np.polynomial.Polynomial.fit(x, y, int(d)) for d in degrees)
        train[r] = [np.mean((f(x) - y) ** 2) for f in fits]
        preds[r] = [f(x_test) for f in fits]
        if r == 0:
            first = (x, y, fits)
    test = np.mean((preds - y_test) ** 2, axis=(0, 2))
    bias2 = np.mean((preds.mean(axis=0) - _truth(x_test)) ** 2, axis=1)
    variance = np.mean(preds.var(axis=0), axis=1)
    return BiasVariance(degrees, train.mean(axis=0), test, bias2, variance, noise, *first)


def _canvas_figure(**kwargs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)  # attaches itself: savefig renders with Agg, whatever pyplot's backend is
    return fig


def bias_variance_demo(out_dir: str | os.PathLike, seed: int = 0) -> list[Path]:
    """Write ``bias_variance_error.png`` (error vs degree) and ``bias_variance_fits.png`` (three fits)."""
    out = Path(out_dir)
    res = bias_variance_curve(seed)
    fig = _canvas_figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.semilogy(res.degrees, res.train_mse, "o-", label="training error")
    ax.semilogy(res.degrees, res.test_mse, "s-", label="test error")
    ax.semilogy(res.degrees, res.bias2, "--", label="bias$^2$")
    ax.semilogy(res.degrees, res.variance, ":", label="variance")
    ax.axvline(res.best_degree, color="gray", ls=":", label=f"best degree = {res.best_degree}")
    ax.set(xlabel="polynomial degree (capacity)", ylabel="mean squared error",
           title="Under-fitting (bias) vs over-fitting (variance)")
    ax.legend()
    paths = [atomic_savefig(fig, out / "bias_variance_error.png", dpi=100)]

    fig = _canvas_figure(figsize=(12, 3.6), layout="constrained")
    grid = np.linspace(0.0, 1.0, 400)
    for i, (label, deg) in enumerate((("under-fit", 1), ("good fit", res.best_degree),
                                      ("over-fit", int(res.degrees[-1])))):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.plot(grid, _truth(grid), "k--", lw=1, label="sin(2 pi x)")
        ax.plot(res.x_train, res.y_train, "o", ms=4, label="training samples")
        ax.plot(grid, res.fits[deg](grid), lw=2, label=f"degree {deg}")
        ax.set(ylim=(-2, 2), title=f"{label}: degree {deg}", xlabel="x")
        ax.legend(fontsize=7, loc="lower left")
    paths.append(atomic_savefig(fig, out / "bias_variance_fits.png", dpi=100))
    return paths


#: The 2-D quadratic loss 1/2 (w - w*)^T diag(h) (w - w*) and the ball radius of the L1/L2 figure.
L1_L2_GEOMETRY = {"w_star": (2.0, 0.4), "h_diag": (1.0, 2.0), "radius": 1.0}


@dataclasses.dataclass(frozen=True)
class Paths:
    ridge_alphas: np.ndarray
    ridge_coefs: np.ndarray  # (n_alphas, n_features)
    lasso_alphas: np.ndarray
    lasso_coefs: np.ndarray  # (n_alphas, n_features)
    true_coef: np.ndarray


def regularization_paths(seed: int = 0, *, n_samples: int = 100, n_features: int = 8,
                         n_alphas: int = 60) -> Paths:
    """Ridge (closed form) and lasso (coordinate descent) coefficients over a log grid of strengths.

    Strengths follow each objective's own scale: ridge ||y - Xw||^2 + alpha ||w||^2,
    scikit-learn's lasso 1/(2n) ||y - Xw||^2 + alpha ||w||_1; the lasso grid ends just past
    alpha_max = max |X^T y| / n, from where on every coefficient is 0.
    """
    from sklearn.linear_model import lasso_path

    n_samples = check_int("n_samples", n_samples, minimum=2)
    n_features = check_int("n_features", n_features, minimum=1)
    n_alphas = check_int("n_alphas", n_alphas, minimum=2)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    true = rng.uniform(0.5, 3.0, n_features) * rng.choice([-1.0, 1.0], n_features)
    true[n_features // 2:] *= 0.2  # weak features: the first ones lasso drops
    y = X @ true + rng.standard_normal(n_samples)
    ridge_alphas = np.logspace(-2, 5, n_alphas)
    ridge_coefs = np.stack([ridge(X, y, a) for a in ridge_alphas])
    alpha_max = np.abs(X.T @ y).max() / n_samples
    # 1.05 * alpha_max: exactly at alpha_max the last coefficient is 0 only up to round-off.
    lasso_alphas = np.logspace(np.log10(alpha_max) - 3, np.log10(1.05 * alpha_max), n_alphas)
    _, coefs, _ = lasso_path(X, y, alphas=lasso_alphas[::-1], tol=1e-10, max_iter=100_000)
    return Paths(ridge_alphas, ridge_coefs, lasso_alphas, coefs[:, ::-1].T, true)


def l1_vs_l2_demo(out_dir: str | os.PathLike, seed: int = 0) -> list[Path]:
    """Write ``l1_vs_l2_geometry.png`` (disc vs diamond, contours, optima) and ``l1_vs_l2_paths.png``."""
    out = Path(out_dir)
    g = L1_L2_GEOMETRY
    w_star, h, r = np.array(g["w_star"]), np.array(g["h_diag"]), g["radius"]
    fig = _canvas_figure(figsize=(10, 4.8), layout="constrained")
    grid = np.linspace(-1.6, 2.6, 300)
    W1, W2 = np.meshgrid(grid, grid)
    loss = 0.5 * (h[0] * (W1 - w_star[0]) ** 2 + h[1] * (W2 - w_star[1]) ** 2)
    t = np.linspace(0.0, 2.0 * np.pi, 400)
    balls = {"l2": (r * np.cos(t), r * np.sin(t)), "l1": (r * np.array([1, 0, -1, 0, 1]), r * np.array([0, 1, 0, -1, 0]))}
    for i, norm in enumerate(("l2", "l1")):
        opt = norm_ball_optimum(w_star, h, r, norm)
        level = 0.5 * float(np.sum(h * (opt - w_star) ** 2))
        ax = fig.add_subplot(1, 2, i + 1)
        ax.contour(W1, W2, loss, levels=np.geomspace(level / 8, level * 6, 7), colors="tab:blue", linewidths=0.6)
        ax.contour(W1, W2, loss, levels=[level], colors="tab:red", linewidths=1.5)
        ax.fill(*balls[norm], alpha=0.25, color="tab:green")
        ax.plot(*w_star, "k*", ms=12, label="w* (unregularized)")
        ax.plot(*opt, "ro", ms=8, label=f"constrained optimum ({opt[0]:.3f}, {opt[1]:.3f})")
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.set(aspect="equal", xlabel="w1", ylabel="w2",
               title=("L2: ||w||_2 <= 1, both weights shrink" if norm == "l2" else "L1: ||w||_1 <= 1, w2 = 0 exactly"))
        ax.legend(fontsize=8, loc="upper left")
    paths = [atomic_savefig(fig, out / "l1_vs_l2_geometry.png", dpi=100)]

    res = regularization_paths(seed)
    fig = _canvas_figure(figsize=(11, 4.2), layout="constrained")
    for i, (name, alphas, coefs) in enumerate((("ridge (L2)", res.ridge_alphas, res.ridge_coefs),
                                               ("lasso (L1)", res.lasso_alphas, res.lasso_coefs))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.semilogx(alphas, coefs)
        ax.axhline(0, color="k", lw=0.5)
        zeros = int((coefs == 0).sum())
        ax.set(xlabel="alpha", ylabel="coefficient",
               title=f"{name}: {zeros} exact zeros over the path")
    paths.append(atomic_savefig(fig, out / "l1_vs_l2_paths.png", dpi=100))
    return paths
