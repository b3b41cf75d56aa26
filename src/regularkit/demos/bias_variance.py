"""Teaching figure: the bias-variance trade-off (lecture 003, "Example: Model Capacity").

Polynomials of increasing degree fitted by least squares to noisy samples of
sin(2 pi x).  Training error falls with the degree (nested models); test error
falls, then rises: under-fitting (high bias) on the left, over-fitting (high
variance) on the right.  The data function is pure and seeded with
``numpy.random.default_rng(seed)`` (same seed, same numbers); the plot is
written atomically.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from regularkit._util.checks import check_int, check_positive
from regularkit._util.io import atomic_savefig, figure

__all__ = ["BiasVariance", "bias_variance_curve", "bias_variance_demo"]


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


def bias_variance_demo(out_dir: str | os.PathLike, seed: int = 0) -> list[Path]:
    """Write ``bias_variance_error.png`` (error vs degree) and ``bias_variance_fits.png`` (three fits)."""
    out = Path(out_dir)
    res = bias_variance_curve(seed)
    fig = figure(6, 4)
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

    fig = figure(12, 3.6)
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
