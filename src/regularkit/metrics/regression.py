"""Errors of continuous predictions: RMSE, MAE and R², in the target's own units.

Deck 003 trains linear outputs with MSE or MAE; a study on a regression task reports

* RMSE = sqrt(mean((y_hat - y)^2)),
* MAE  = mean(|y_hat - y|),
* R²   = 1 - sum((y - y_hat)^2) / sum((y - mean(y))^2)   (coefficient of determination),

each over every row and, for several outputs, averaged over the outputs with equal weight
(scikit-learn's ``multioutput="uniform_average"``; RMSE and MAE as the mean of the per-output
values, like ``root_mean_squared_error`` and ``mean_absolute_error``).  R² of a constant target
is undefined: NaN, never a silent 0 or 1.  Inputs are NumPy arrays or tensors, (n,) or (n, k).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from regularkit.errors import RegularkitError

__all__ = ["rmse", "mae", "r2", "regression_metrics"]


def _pair(y_pred: Any, y_true: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(y_pred.detach().cpu() if hasattr(y_pred, "detach") else y_pred, dtype=np.float64)
    t = np.asarray(y_true.detach().cpu() if hasattr(y_true, "detach") else y_true, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if t.ndim == 1:
        t = t[:, None]
    if p.shape != t.shape or p.ndim != 2 or p.shape[0] == 0:
        raise RegularkitError(f"predictions and targets must have the same (n,) or (n, k) shape with n > 0, "
                              f"got {tuple(np.shape(y_pred))} and {tuple(np.shape(y_true))}")
    return p, t


def rmse(y_pred, y_true) -> float:
    """Root mean squared error (per output, then averaged over outputs)."""
    p, t = _pair(y_pred, y_true)
    return float(np.mean(np.sqrt(np.mean((p - t) ** 2, axis=0))))


def mae(y_pred, y_true) -> float:
    """Mean absolute error (per output, then averaged over outputs)."""
    p, t = _pair(y_pred, y_true)
    return float(np.mean(np.mean(np.abs(p - t), axis=0)))


def r2(y_pred, y_true) -> float:
    """Coefficient of determination, averaged over outputs; NaN when a target column is constant."""
    p, t = _pair(y_pred, y_true)
    total = np.sum((t - t.mean(axis=0)) ** 2, axis=0)
    if np.any(total == 0):
        return float("nan")
    return float(np.mean(1.0 - np.sum((t - p) ** 2, axis=0) / total))


def regression_metrics(y_pred, y_true) -> dict[str, float]:
    """``{"rmse", "mae", "r2"}`` of one split."""
    return {"rmse": rmse(y_pred, y_true), "mae": mae(y_pred, y_true), "r2": r2(y_pred, y_true)}
