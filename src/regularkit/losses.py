"""Losses: label smoothing in both lecture forms, the confidence penalty, multi-class hinge, stable BCE, MSE, MAE, KL.

Every loss is a pure function ``loss(prediction, target, ...) -> tensor``;
:class:`CrossEntropy` and :class:`MultiClassHinge` are thin modules on top.
``reduction`` is ``"mean"`` (over examples), ``"sum"`` or ``"none"``.

Label smoothing (Szegedy et al. 2016; deck 002 ``(1 - alpha) * y + alpha / K``,
deck 003 ``1 - eps`` on the true class and ``eps / (K - 1)`` elsewhere) is
:func:`regularkit.targets.smooth_targets`, re-exported here.  Müller et al. 2019
("When does label smoothing help?") show its benefit is mostly calibration;
measure it with :func:`expected_calibration_error` (re-exported here).

Confidence penalty (Pereyra, Tucker, Chorowski, Kaiser & Hinton 2017,
"Regularizing neural networks by penalizing confident output distributions"):
``L = CE - beta * H(p(y|x))`` with ``H(p) = -sum_k p_k log p_k`` the entropy of
the predicted distribution, so low-entropy (over-confident) outputs cost more.
Since ``H(p) = log K - D_KL(p || u)`` it is ``D_KL(p || u)`` up to a constant,
the reverse of label smoothing's ``D_KL(u || p)``.  :func:`entropy`,
:func:`confidence_penalty` (the term ``-beta H``) and ``cross_entropy(...,
confidence_penalty=beta)``; neither torch nor Keras has it.  Knowledge
distillation's loss is in :mod:`regularkit.distill`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_choice, check_in_range, check_non_negative
from regularkit.errors import RegularkitError
from regularkit.metrics.calibration import expected_calibration_error
from regularkit.targets import FORMULAS, check_class_indices, smooth_targets

REDUCTIONS = ("mean", "sum", "none")


def _check_tensor(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise RegularkitError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def _check_2d(name: str, x) -> torch.Tensor:
    x = _check_tensor(name, x)
    if x.ndim != 2:
        raise RegularkitError(f"{name} must be N x K (one row per example), got shape {tuple(x.shape)}")
    return x


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    check_choice("reduction", reduction, REDUCTIONS)
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0,
                  formula: str = "uniform", *, reduction: str = "mean",
                  confidence_penalty: float = 0.0) -> torch.Tensor:
    """``-sum_k t_k log softmax(z)_k`` with ``t = smooth_targets(y, K, label_smoothing, formula)``.

    ``logits`` is N x K; ``y`` class indices (N,) or soft targets (N x K), e.g.
    from mixup.  With ``formula="uniform"`` this equals torch's
    ``F.cross_entropy(logits, y, label_smoothing=...)``.  ``confidence_penalty=beta``
    subtracts ``beta * H(softmax(z))`` per example (Pereyra et al. 2017).
    """
    logits = _check_2d("logits", logits)
    _check_tensor("y", y)
    if y.shape[0] != logits.shape[0]:
        raise RegularkitError(f"y has {y.shape[0]} rows but logits has {logits.shape[0]}")
    # checked here too, so the message names the argument the caller wrote
    label_smoothing = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
    beta = check_non_negative("confidence_penalty", confidence_penalty)
    target = smooth_targets(y, logits.shape[1], label_smoothing, formula, dtype=logits.dtype)
    log_p = F.log_softmax(logits, dim=1)
    loss = -(target * log_p).sum(dim=1)
    if beta > 0:
        loss = loss - beta * _entropy(log_p)
    return _reduce(loss, reduction)


def _entropy(log_p: torch.Tensor) -> torch.Tensor:
    """``-sum_k p_k log p_k`` per row from log-probabilities (``0 log 0 = 0``: ``exp(-inf) * -inf`` is avoided)."""
    return -torch.where(torch.isneginf(log_p), 0.0, log_p.exp() * log_p).sum(dim=1)


def entropy(logits: torch.Tensor, *, reduction: str = "none") -> torch.Tensor:
    """Entropy ``H(p) = -sum_k p_k log p_k`` of ``p = softmax(logits)`` per row (nats; ``0 <= H <= log K``)."""
    return _reduce(_entropy(F.log_softmax(_check_2d("logits", logits), dim=1)), reduction)


def confidence_penalty(logits: torch.Tensor, beta: float = 0.1, *, reduction: str = "mean") -> torch.Tensor:
    """Pereyra et al. (2017): the term ``-beta * H(softmax(logits))`` to add to a loss (``beta >= 0``)."""
    beta = check_non_negative("beta", beta)
    return _reduce(-beta * _entropy(F.log_softmax(_check_2d("logits", logits), dim=1)), reduction)


def multiclass_hinge(scores: torch.Tensor, y: torch.Tensor, margin: float = 1.0,
                     reduction: str = "mean") -> torch.Tensor:
    """Multi-class hinge (Weston & Watkins 1999; deck 003): ``J = sum_{i != i*} max(0, f_i - f_{i*} + margin)``.

    ``scores`` is N x K (one row per example), ``y`` the true classes (N,).
    The loss is zero once the true score beats every other one by ``margin``
    (``margin >= 0``; the slides' 0 is allowed, a negative one refused: it
    would call a wrong class that beats the true one "no loss").
    torch's ``F.multi_margin_loss`` is the same sum divided by K; Keras'
    ``categorical_hinge`` keeps only the largest wrong score (Crammer & Singer).
    """
    scores = _check_2d("scores", scores)
    y = _check_tensor("y", y)
    if y.ndim != 1 or y.shape[0] != scores.shape[0]:
        raise RegularkitError(f"y must be class indices of shape ({scores.shape[0]},), got shape {tuple(y.shape)}")
    margin = check_non_negative("margin", margin)  # a negative margin rewards wrong classes for losing
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise RegularkitError(f"class indices must be an integer tensor, got dtype {y.dtype}")
    check_class_indices(y, scores.shape[1])
    true = scores.gather(1, y.long()[:, None])
    terms = (scores - true + margin).clamp(min=0)
    # the true class's own term is max(0, margin): not part of the sum, so zero it
    terms = terms.scatter(1, y.long()[:, None], 0.0)
    return _reduce(terms.sum(dim=1), reduction)


def binary_cross_entropy_with_logits(z: torch.Tensor, y: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """``-(y log sigma(z) + (1 - y) log(1 - sigma(z))) = y * zeta(-z) + (1 - y) * zeta(z)`` (deck 003).

    ``zeta`` is softplus ``log(1 + exp(x))``; writing the loss with it never
    forms ``sigma(z)``, so it stays finite at ``|z| = 1e3`` where ``log(sigmoid)``
    gives ``-inf``.  ``y`` may be soft (in [0, 1]), shape as ``z``.
    """
    z = _check_tensor("z", z)
    y = _check_tensor("y", y)
    if y.shape != z.shape:
        raise RegularkitError(f"y must have the shape of z {tuple(z.shape)}, got {tuple(y.shape)}")
    y = y.to(z.dtype)
    loss = y * F.softplus(-z) + (1.0 - y) * F.softplus(z)
    return _reduce(loss, reduction)


def _check_same_shape(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _check_tensor("pred", pred), _check_tensor("target", target)
    if pred.shape != target.shape:
        raise RegularkitError(f"target must have the shape of pred {tuple(pred.shape)}, got {tuple(target.shape)}")
    return pred, target


def mse(pred: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error ``(pred - target)^2``; ``"mean"`` averages over every element."""
    pred, target = _check_same_shape(pred, target)
    return _reduce((pred - target).square(), reduction)


def mae(pred: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error ``|pred - target|``; ``"mean"`` averages over every element."""
    pred, target = _check_same_shape(pred, target)
    return _reduce((pred - target).abs(), reduction)


def kl_divergence(p: torch.Tensor, q_logits: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """``D_KL(P || Q) = sum_x P(x) (log P(x) - log Q(x))`` per row (deck 003).

    ``p``: probabilities, N x K (rows sum to 1; zeros allowed, ``0 log 0 = 0``).
    ``q_logits``: logits of Q, N x K.  Because ``log_softmax`` leaves
    log-probabilities unchanged, ``log q`` may be passed here as well: both give
    the same result, so there is one argument and no flag.  ``"mean"``
    averages over rows (torch's ``reduction="batchmean"``).  ``D_KL >= 0``,
    with equality iff ``P == Q``; it is asymmetric.
    """
    p, q_logits = _check_2d("p", p), _check_2d("q_logits", q_logits)
    if p.shape != q_logits.shape:
        raise RegularkitError(f"q_logits must have the shape of p {tuple(p.shape)}, got {tuple(q_logits.shape)}")
    log_q = F.log_softmax(q_logits, dim=1)
    # xlogy(p, p) is 0 where p == 0, the limit of p log p
    loss = (torch.xlogy(p, p) - p * log_q).sum(dim=1)
    return _reduce(loss, reduction)


class CrossEntropy(nn.Module):
    """Module form of :func:`cross_entropy`; ``label_smoothing`` as in Keras and torch."""

    def __init__(self, label_smoothing: float = 0.0, formula: str = "uniform", *, reduction: str = "mean",
                 confidence_penalty: float = 0.0):
        super().__init__()
        self.label_smoothing = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
        self.formula = check_choice("formula", formula, FORMULAS)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.confidence_penalty = check_non_negative("confidence_penalty", confidence_penalty)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, y, self.label_smoothing, self.formula, reduction=self.reduction,
                             confidence_penalty=self.confidence_penalty)

    def extra_repr(self) -> str:
        extra = f", confidence_penalty={self.confidence_penalty}" if self.confidence_penalty else ""
        return f"label_smoothing={self.label_smoothing}, formula={self.formula!r}" + extra


class MultiClassHinge(nn.Module):
    """Module form of :func:`multiclass_hinge`."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.margin = check_non_negative("margin", margin)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def forward(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return multiclass_hinge(scores, y, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}"


__all__ = [
    "smooth_targets", "cross_entropy", "multiclass_hinge", "binary_cross_entropy_with_logits",
    "mse", "mae", "kl_divergence", "expected_calibration_error", "CrossEntropy", "MultiClassHinge", "entropy",
    "confidence_penalty",
]
