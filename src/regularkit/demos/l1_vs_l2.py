"""Teaching figure: why L1 gives exact zeros where L2 does not (Goodfellow et al. 2016, fig. 7.1, sec. 7.1.2).

The loss contours first touch the L2 disc at a point with both coordinates
non-zero, but the L1 diamond at a corner, where one coordinate is exactly 0.
Along a regularization path, lasso coefficients hit exactly 0 one after
another (Tibshirani 1996); ridge coefficients only shrink.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from sklearn.linear_model import lasso_path

from regularkit._util.checks import check_int
from regularkit._util.io import atomic_savefig, figure
from regularkit.analysis import norm_ball_optimum, ridge

__all__ = ["L1_L2_GEOMETRY", "Paths", "regularization_paths", "l1_vs_l2_demo"]


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
    fig = figure(10, 4.8)
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
    fig = figure(11, 4.2)
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
