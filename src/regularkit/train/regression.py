"""Regression: the training losses and the measurement ``evaluate`` makes of continuous outputs.

A regression model is trained on standardized targets ``z = (y - mean) / std`` (per output,
the training rows' mean and std: :mod:`regularkit.data.regression`) and has k linear outputs.
Deck 003's losses, each the mean over every element of the batch:

* ``"mse"``   ``(z_hat - z)^2``                                     (``F.mse_loss``)
* ``"mae"``   ``|z_hat - z|``                                       (``F.l1_loss``)
* ``"huber"`` ``0.5 d^2`` for ``|d| <= 1``, ``|d| - 0.5`` beyond     (``F.huber_loss``, delta 1: one
  standard deviation of the target; equal to ``F.smooth_l1_loss`` with beta 1)

:func:`measure` is what :func:`regularkit.train.loop.evaluate` does for a regression model (its
``target_scale`` given): the *loss* is the mean squared error on the standardized targets
(whatever the training loss, as classification measures plain cross-entropy), the *error* is
the RMSE in the target's own units, per output then averaged with equal weight::

    RMSE = (1/k) sum_j std_j * sqrt(mean_i (z_hat_ij - z_ij)^2)

(scikit-learn's ``root_mean_squared_error`` with ``multioutput="uniform_average"``, checked in
the tests against :func:`regularkit.metrics.regression.rmse`).
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_choice
from regularkit.data.streaming import Streamed
from regularkit.errors import RegularkitError

__all__ = ["REGRESSION_LOSSES", "regression_loss", "measure", "predict"]

REGRESSION_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": F.mse_loss,
    "mae": F.l1_loss,
    "huber": lambda pred, z: F.huber_loss(pred, z, delta=1.0),
}


def regression_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss ``name`` (see the module docstring), on outputs and targets of the same shape."""
    check_choice("loss", name, tuple(REGRESSION_LOSSES))
    return REGRESSION_LOSSES[name]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024, device=None, precision=None) -> torch.Tensor:
    """The model's outputs (float32, on the CPU) in eval mode, batch by batch."""
    was = model.training
    model.eval()
    autocast = precision.autocast() if precision is not None else contextlib.nullcontext()
    out = []
    try:
        if isinstance(x, Streamed):  # decoded per batch, at most EVAL_BATCH_BYTES each; same outputs
            chunks = x.split(x.eval_batch(batch_size))
        else:
            chunks = (x[i:i + batch_size] for i in range(0, x.shape[0], batch_size))
        for xb in chunks:
            xb = xb if device is None else xb.to(device)
            with autocast:
                out.append(model(xb).float().cpu())
        return torch.cat(out) if out else torch.zeros(0)
    finally:
        model.train(was)


def measure(model: nn.Module, x: torch.Tensor, z: torch.Tensor, target_scale: torch.Tensor, *,
            batch_size: int = 1024, device=None, precision=None) -> tuple[float, float]:
    """``(MSE on standardized targets, RMSE in the target's units)`` of ``model`` (see the module docstring)."""
    if z.dim() != 2:
        raise RegularkitError(f"regression targets must be N x k, got shape {tuple(z.shape)}")
    scale = torch.as_tensor(target_scale, dtype=torch.float64).reshape(-1)
    if scale.numel() != z.shape[1]:
        raise RegularkitError(f"target_scale has {scale.numel()} values for {z.shape[1]} outputs")
    pred = predict(model, x, batch_size=batch_size, device=device, precision=precision).double()
    if pred.shape != z.shape:
        raise RegularkitError(f"the model gives outputs of shape {tuple(pred.shape)} for targets {tuple(z.shape)}")
    sq = (pred - z.detach().cpu().double()).square()
    if sq.shape[0] == 0:
        return float("nan"), float("nan")
    return float(sq.mean()), float((scale * sq.mean(0).sqrt()).mean())
