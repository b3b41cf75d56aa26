"""Closed forms of parameter regularization: ridge, L2 eigen-shrinkage, L1 soft threshold.

Goodfellow, Bengio & Courville (2016), *Deep Learning*, sec. 7.1; lectures 000 and 003.
Near a minimum w* of J, J(w) ~ J(w*) + 1/2 (w - w*)^T H (w - w*).

* L2, J~ = J + alpha/2 ||w||^2: the new minimum solves alpha w~ + H (w~ - w*) = 0, so
  w~ = (H + alpha I)^-1 H w* = Q (Lambda + alpha I)^-1 Lambda Q^T w*  with H = Q Lambda Q^T:
  the component along eigenvector i is scaled by lambda_i / (lambda_i + alpha) -- kept
  where the loss is curved (lambda_i >> alpha), removed where it is flat.
* Linear regression, J = ||X w - y||^2 + alpha ||w||^2:  w = (X^T X + alpha I)^-1 X^T y
  (ridge; Hoerl & Kennard 1970).  The slides write the penalty as 1/2 alpha w^T w yet give
  this solution; it belongs to the objective without the 1/2, which is also
  scikit-learn's ``Ridge(fit_intercept=False)``.
* L1 with a diagonal Hessian, J~ = J + lambda ||w||_1:
  w~_i = sign(w*_i) max(0, |w*_i| - lambda / H_ii) -- shifted towards 0 by lambda / H_ii and
  clipped: exact zeros, i.e. sparsity (soft thresholding, Donoho & Johnstone 1994).

Every function accepts NumPy arrays or torch tensors and returns the same kind; the
computation runs in torch (float64 for NumPy input) and uses ``solve``, never ``inv``.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch
from torch import Tensor

from regularkit._util.checks import check_choice, check_non_negative, check_positive
from regularkit.errors import RegularkitError

__all__ = ["ridge", "RidgeFit", "ridge_on_validation", "RIDGE_ALPHAS", "Shrinkage", "l2_shrinkage_factors", "l2_regularized_optimum", "l1_soft_threshold",
           "norm_ball_optimum"]


def _torch(x: Any, name: str) -> tuple[Tensor, bool]:
    """``(tensor, came_from_numpy)``; integer input becomes float64."""
    if isinstance(x, Tensor):
        return (x if x.is_floating_point() else x.double()), False
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise RegularkitError(f"{name} must be a numeric array or tensor, got {x!r}") from None
    return torch.from_numpy(arr), True


def _out(t: Tensor, numpy: bool):
    return t.detach().cpu().numpy() if numpy else t


def ridge(X, y, alpha: float):
    """Ridge regression w = (X^T X + alpha I)^-1 X^T y, minimiser of ||X w - y||^2 + alpha ||w||^2.

    ``y`` may be (n,) or (n, k); no intercept (centre the data first if you need one).
    """
    alpha = check_non_negative("alpha", alpha)
    Xt, numpy = _torch(X, "X")
    yt, _ = _torch(y, "y")
    yt = yt.to(dtype=Xt.dtype, device=Xt.device)
    if Xt.dim() != 2:
        raise RegularkitError(f"X must be 2-D (n_samples, n_features), got shape {tuple(Xt.shape)}")
    if yt.dim() not in (1, 2) or yt.shape[0] != Xt.shape[0]:
        raise RegularkitError(f"y must have {Xt.shape[0]} rows like X, got shape {tuple(yt.shape)}")
    A = Xt.T @ Xt + alpha * torch.eye(Xt.shape[1], dtype=Xt.dtype, device=Xt.device)
    try:
        w = torch.linalg.solve(A, Xt.T @ yt)
    except torch.linalg.LinAlgError:
        raise RegularkitError(f"X^T X + alpha I is singular with alpha={alpha}; use alpha > 0") from None
    return _out(w, numpy)


#: The log grid the study's ``ridge (linear)`` row searches: 1e-4 .. 1e4, 33 values.
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-4, 4, 33))


@dataclasses.dataclass(frozen=True)
class RidgeFit:
    """A ridge model with an intercept: ``predict(X) = X @ coef + intercept``, alpha chosen on validation."""

    alpha: float
    coef: np.ndarray          # (n_features,) or (n_features, n_outputs)
    intercept: np.ndarray     # () or (n_outputs,)
    val_mse: float            # mean squared error on the validation split at ``alpha``

    def predict(self, X) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.coef + self.intercept


def ridge_on_validation(X_train, y_train, X_val, y_val, alphas=RIDGE_ALPHAS) -> RidgeFit:
    """Ridge regression with an intercept, alpha chosen by the mean squared error on a validation split.

    For each alpha of the grid: centre X and y on the *training* means (the intercept is not
    penalised), solve :func:`ridge`, measure the validation MSE; the alpha with the lowest MSE wins
    (the smallest such alpha on a tie).  This is scikit-learn's ``RidgeCV(alphas,
    cv=PredefinedSplit(...))`` choice, except that the returned model is fitted on the training rows
    only (RidgeCV refits on training and validation together): a network trained on the training rows
    is compared with a linear model that saw the same rows.  Multi-output ``y`` shares one alpha.
    """
    Xt = np.asarray(X_train, dtype=np.float64)
    yt = np.asarray(y_train, dtype=np.float64)
    Xv = np.asarray(X_val, dtype=np.float64)
    yv = np.asarray(y_val, dtype=np.float64)
    if Xt.ndim != 2 or Xv.ndim != 2 or Xt.shape[1] != Xv.shape[1]:
        raise RegularkitError(f"X_train and X_val must be 2-D with the same columns, got shapes {Xt.shape} and "
                              f"{Xv.shape}")
    if yt.shape[0] != Xt.shape[0] or yv.shape[0] != Xv.shape[0] or yt.ndim != yv.ndim:
        raise RegularkitError(f"y_train and y_val must match X's rows, got shapes {yt.shape} and {yv.shape}")
    grid = [check_non_negative("alpha", a) for a in alphas]
    if not grid:
        raise RegularkitError("alphas must hold at least one value, got none")
    x_mean, y_mean = Xt.mean(axis=0), yt.mean(axis=0)
    best: RidgeFit | None = None
    for alpha in grid:
        coef = ridge(Xt - x_mean, yt - y_mean, alpha)
        intercept = y_mean - x_mean @ coef
        mse = float(np.mean((Xv @ coef + intercept - yv) ** 2))
        if best is None or mse < best.val_mse:
            best = RidgeFit(alpha=alpha, coef=coef, intercept=np.asarray(intercept), val_mse=mse)
    return best


@dataclasses.dataclass(frozen=True)
class Shrinkage:
    """Eigen-decomposition H = Q diag(eigenvalues) Q^T and the L2 factors lambda_i / (lambda_i + alpha)."""

    eigenvalues: Any
    eigenvectors: Any
    factors: Any

    def apply(self, w_star):
        """w~ = Q diag(factors) Q^T w*: each eigen-component of ``w_star`` scaled by its factor."""
        Q, numpy = _torch(self.eigenvectors, "eigenvectors")
        f, _ = _torch(self.factors, "factors")
        w, _ = _torch(w_star, "w_star")
        w = w.to(dtype=Q.dtype, device=Q.device)
        if w.shape[0] != Q.shape[0]:
            raise RegularkitError(f"w_star must have length {Q.shape[0]}, got shape {tuple(w.shape)}")
        coef = Q.T @ w
        coef = coef * (f if coef.dim() == 1 else f[:, None])
        return _out(Q @ coef, numpy)


def l2_shrinkage_factors(H, alpha: float) -> Shrinkage:
    """Eigenvalues lambda_i, eigenvectors Q and factors lambda_i / (lambda_i + alpha) of a symmetric PSD ``H``.

    With ``alpha = 0`` every factor is 1 (no penalty, w~ = w*), also along flat directions.
    """
    alpha = check_non_negative("alpha", alpha)
    Ht, numpy = _torch(H, "H")
    if Ht.dim() != 2 or Ht.shape[0] != Ht.shape[1]:
        raise RegularkitError(f"H must be a square matrix, got shape {tuple(Ht.shape)}")
    scale = float(Ht.abs().max()) if Ht.numel() else 0.0
    if not torch.allclose(Ht, Ht.T, rtol=0.0, atol=1e-10 * max(scale, 1.0)):
        raise RegularkitError("H must be symmetric (a Hessian), got max |H - H^T| = "
                              f"{float((Ht - Ht.T).abs().max()):.3g}")
    lam, Q = torch.linalg.eigh(Ht)
    if lam.numel() and float(lam.min()) < -1e-9 * max(scale, 1.0):
        raise RegularkitError(f"H must be positive semi-definite (a minimum), got smallest eigenvalue {float(lam.min()):.6g}")
    lam = lam.clamp(min=0.0)  # round-off negatives of a PSD matrix
    factors = torch.ones_like(lam) if alpha == 0 else lam / (lam + alpha)
    return Shrinkage(_out(lam, numpy), _out(Q, numpy), _out(factors, numpy))


def l2_regularized_optimum(H, w_star, alpha: float):
    """w~ = Q (Lambda + alpha I)^-1 Lambda Q^T w*, the minimum of 1/2 (w-w*)^T H (w-w*) + alpha/2 ||w||^2."""
    return l2_shrinkage_factors(H, alpha).apply(w_star)


def l1_soft_threshold(w_star, lam: float, h_diag=1.0):
    """w~_i = sign(w*_i) max(0, |w*_i| - lam / H_ii): the L1 optimum for a diagonal Hessian (H_ii > 0)."""
    lam = check_non_negative("lam", lam)
    w, numpy = _torch(w_star, "w_star")
    h, _ = _torch(h_diag, "h_diag")
    h = h.to(dtype=w.dtype, device=w.device)
    if h.numel() == 0 or not bool((h > 0).all()):
        raise RegularkitError(f"h_diag must be > 0 (a minimum has positive curvature), got {h_diag!r}")
    try:
        shift = torch.broadcast_to(lam / h, w.shape)
    except RuntimeError:
        raise RegularkitError(f"h_diag of shape {tuple(h.shape)} does not match w_star of shape {tuple(w.shape)}") from None
    return _out(torch.sign(w) * (w.abs() - shift).clamp(min=0.0), numpy)


def norm_ball_optimum(w_star, h_diag, radius: float, norm: str = "l2"):
    """Minimiser of 1/2 (w-w*)^T diag(h) (w-w*) subject to ||w||_p <= radius, p from ``norm``.

    The constrained and the penalised problems share their solutions (Lagrange): the
    penalty strength is found by bisection so that the penalised optimum -- eigen
    shrinkage for "l2", soft threshold for "l1" -- lies on the ball's surface.  The L1
    solution sits on a corner (exact zeros) whenever the loss contours first touch one.
    """
    radius = check_positive("radius", radius)
    check_choice("norm", norm, ("l1", "l2"))
    w, numpy = _torch(w_star, "w_star")
    h, _ = _torch(h_diag, "h_diag")
    h = torch.broadcast_to(h.to(dtype=torch.float64), w.shape)
    w = w.to(torch.float64)
    if w.dim() != 1 or not bool((h > 0).all()):
        raise RegularkitError(f"w_star must be 1-D and h_diag > 0, got shapes {tuple(w.shape)}, h_diag={h_diag!r}")
    p = 1 if norm == "l1" else 2

    def solution(lam: float) -> Tensor:
        return l1_soft_threshold(w, lam, h) if norm == "l1" else (h / (h + lam)) * w

    if float(torch.linalg.vector_norm(w, p)) <= radius:
        return _out(w, numpy)
    lo, hi = 0.0, 1.0
    while float(torch.linalg.vector_norm(solution(hi), p)) > radius:
        hi *= 2.0
    for _ in range(200):  # the norm decreases monotonically in lam: bisection to machine precision
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if float(torch.linalg.vector_norm(solution(mid), p)) > radius else (lo, mid)
    return _out(solution(hi), numpy)
