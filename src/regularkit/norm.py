"""Batch normalization with its backward pass written by hand from the lecture's equations.

Ioffe & Szegedy (2015), "Batch normalization: accelerating deep network
training by reducing internal covariate shift", ICML.  Deck 003 ("Batch
Normalization") gives the forward pass over a mini-batch ``B = {x_1..m}``::

    mu     = 1/m sum_i x_i                       (mini-batch mean)
    var    = 1/m sum_i (x_i - mu)^2              (mini-batch variance, biased)
    xhat_i = (x_i - mu) / sqrt(var + eps)        (normalize)
    y_i    = gamma * xhat_i + beta               (scale and shift)

and the backward pass, which :class:`_BatchNormFunction` implements line by line::

    dl/dxhat_i = dl/dy_i * gamma
    dl/dvar    = sum_i dl/dxhat_i * (x_i - mu) * -1/2 (var + eps)^(-3/2)
    dl/dmu     = (sum_i dl/dxhat_i * -1/sqrt(var + eps)) + dl/dvar * sum_i -2 (x_i - mu) / m
    dl/dx_i    = dl/dxhat_i / sqrt(var + eps) + dl/dvar * 2 (x_i - mu) / m + dl/dmu / m
    dl/dgamma  = sum_i dl/dy_i * xhat_i
    dl/dbeta   = sum_i dl/dy_i

For ``N x D`` input the sums run over the batch (``m = N``); for
``N x C x H x W`` (or any ``N x C x ...``) over every dimension but the
channel, ``m = N * H * W``, as in ``nn.BatchNorm2d``.  This is for
verification and teaching: ``torch.nn.functional.batch_norm`` is faster.
"""
from __future__ import annotations

import torch
from torch import nn

from regularkit._util.checks import check_bool, check_in_range, check_int, check_positive
from regularkit.errors import RegularkitError


def _reduce_dims(x: torch.Tensor) -> list[int]:
    return [0] + list(range(2, x.ndim))  # every dimension except the channel (dim 1)


def _per_channel(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A length-C vector shaped to broadcast against ``x`` (1 x C x 1 x ...)."""
    return t.reshape((1, -1) + (1,) * (x.ndim - 2))


class _BatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm whose ``backward`` is the lecture's six equations."""

    @staticmethod
    def forward(ctx, x, gamma, beta, eps):
        dims = _reduce_dims(x)
        mu = x.mean(dims, keepdim=True)
        var = ((x - mu) ** 2).mean(dims, keepdim=True)
        xhat = (x - mu) / torch.sqrt(var + eps)
        y = xhat
        if gamma is not None:
            y = y * _per_channel(gamma, x)
        if beta is not None:
            y = y + _per_channel(beta, x)
        # Save only the inputs: backward recomputes mu and var from x with differentiable
        # ops, so the hand-written backward can itself be differentiated (double backward).
        ctx.save_for_backward(x, gamma)
        ctx.eps = eps
        ctx.has_beta = beta is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, gamma = ctx.saved_tensors
        eps = ctx.eps
        dims = _reduce_dims(x)
        m = x.numel() // x.shape[1]
        mu = x.mean(dims, keepdim=True)
        xc = x - mu
        var = (xc * xc).mean(dims, keepdim=True)
        inv_std = 1.0 / torch.sqrt(var + eps)
        xhat = xc * inv_std

        dxhat = dy * _per_channel(gamma, x) if gamma is not None else dy
        dvar = (dxhat * xc).sum(dims, keepdim=True) * -0.5 * (var + eps) ** -1.5
        dmu = (dxhat * -inv_std).sum(dims, keepdim=True) + dvar * (-2.0 * xc).sum(dims, keepdim=True) / m
        dx = dxhat * inv_std + dvar * 2.0 * xc / m + dmu / m
        dgamma = (dy * xhat).sum(dims) if gamma is not None and ctx.needs_input_grad[1] else None
        dbeta = dy.sum(dims) if ctx.has_beta and ctx.needs_input_grad[2] else None
        return (dx if ctx.needs_input_grad[0] else None), dgamma, dbeta, None


def _check_inputs(x, gamma, beta, eps) -> float:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise RegularkitError(f"x must be a floating tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim < 2:
        raise RegularkitError(f"batch norm needs input N x C or N x C x ..., got shape {tuple(x.shape)}")
    channels = x.shape[1]
    for name, t in (("gamma", gamma), ("beta", beta)):
        if t is not None and tuple(t.shape) != (channels,):
            raise RegularkitError(f"{name} must have shape ({channels},) for x of shape {tuple(x.shape)}, "
                                  f"got {tuple(t.shape)}")
    if x.numel() // max(channels, 1) <= 1:
        raise RegularkitError(f"batch norm in training needs more than 1 value per channel, got shape {tuple(x.shape)}")
    return check_positive("eps", eps)


def batch_norm_reference(x: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
                         eps: float = 1e-5) -> torch.Tensor:
    """Training-mode batch norm of ``x`` (N x C or N x C x ...) with the hand-written backward.

    ``gamma`` and ``beta`` are length-C vectors, or ``None`` for 1 and 0.
    Matches ``F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps)``.
    """
    eps = _check_inputs(x, gamma, beta, eps)
    return _BatchNormFunction.apply(x, gamma, beta, eps)


class ReferenceBatchNorm(nn.Module):
    """Drop-in for ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` built on :func:`batch_norm_reference`.

    Same parameter and buffer names (``weight``, ``bias``, ``running_mean``,
    ``running_var``, ``num_batches_tracked``), so state dicts move both ways.
    Running statistics follow torch: ``r <- (1 - momentum) r + momentum * batch``
    with the *unbiased* batch variance; ``momentum=None`` is a cumulative average.
    Eval mode normalizes with the running statistics -- the deck's "testing:
    use fixed stats to normalize", the deterministic stand-in for ``E_z``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        self.num_features = check_int("num_features", num_features, minimum=1)
        self.eps = check_positive("eps", eps)
        if momentum is not None:
            momentum = check_in_range("momentum", momentum, 0.0, 1.0)
        self.momentum = momentum
        self.affine = check_bool("affine", affine)
        self.track_running_stats = check_bool("track_running_stats", track_running_stats)
        factory = dict(device=device, dtype=dtype)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(num_features, **factory))
            self.bias = nn.Parameter(torch.zeros(num_features, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise RegularkitError(f"expected input N x {self.num_features} x ..., got shape {tuple(x.shape)}")
        if self.training or not self.track_running_stats:
            if self.training and self.track_running_stats:
                self._update_running_stats(x)
            return batch_norm_reference(x, self.weight, self.bias, self.eps)
        y = (x - _per_channel(self.running_mean, x)) / torch.sqrt(_per_channel(self.running_var, x) + self.eps)
        if self.affine:
            y = y * _per_channel(self.weight, x) + _per_channel(self.bias, x)
        return y

    @torch.no_grad()
    def _update_running_stats(self, x: torch.Tensor) -> None:
        dims = _reduce_dims(x)
        m = x.numel() // x.shape[1]
        mean = x.mean(dims)
        var_unbiased = x.var(dims, unbiased=True) if m > 1 else torch.zeros_like(mean)
        self.num_batches_tracked += 1
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(var_unbiased, alpha=factor)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
