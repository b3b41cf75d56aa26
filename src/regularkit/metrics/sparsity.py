"""Sparsity: how many weights and hidden activations are (nearly) zero.

Weight sparsity is what L1 does to the parameters (Tibshirani 1996; deck 003,
"L1 regularization leads to sparse weights"): the fraction of selected weights
with ``|w| < threshold``, over the weights the penalties select (every
``ndim >= 2`` weight, :mod:`regularkit._util.params`), frozen ones included: a
measurement describes the model, and an EMA or SWA copy is frozen.
Activation sparsity is what an activity penalty does to the representation
(deck 003 "Representational Sparsity"): the fraction of hidden activations with
``|h| <= threshold`` over a batch, in eval mode (the representation the model
uses at test time).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from regularkit._util.checks import check_non_negative
from regularkit._util.params import select_parameters
from regularkit.errors import RegularkitError

__all__ = ["ACTIVATION_TYPES", "activation_modules", "activation_sparsity", "weight_sparsity"]

ACTIVATION_TYPES = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.Softplus, nn.PReLU)


def activation_modules(model: nn.Module) -> list[nn.Module]:
    """The nonlinearity modules of ``model``: their outputs are the hidden representations."""
    return [m for m in model.modules() if isinstance(m, ACTIVATION_TYPES)]


@torch.no_grad()
def activation_sparsity(model: nn.Module, x: torch.Tensor, modules: Sequence[nn.Module] | None = None, *,
                        threshold: float = 1e-3, batch_size: int = 1024) -> float:
    """Fraction of outputs of ``modules`` (default: every activation) with ``|h| <= threshold`` on ``x``."""
    threshold = check_non_negative("threshold", threshold)
    modules = list(modules) if modules is not None else activation_modules(model)
    if not modules:
        raise RegularkitError(f"{type(model).__name__} has no activation modules to measure")
    counts = torch.zeros(2, dtype=torch.float64)

    def hook(module, inputs, output):
        counts[0] += (output.abs() <= threshold).sum().item()
        counts[1] += output.numel()

    handles = [m.register_forward_hook(hook) for m in modules]
    was_training = model.training
    model.eval()
    try:
        for i in range(0, x.shape[0], batch_size):
            model(x[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return float(counts[0] / counts[1]) if counts[1] else float("nan")


def weight_sparsity(model: nn.Module, threshold: float = 1e-3, *, modules=None,
                    pattern: str | None = None) -> float:
    """Fraction of the selected weights with ``|w| < threshold`` (how much L1 has zeroed).

    ``modules`` / ``pattern`` as for the penalties (default: every ``ndim >= 2`` weight;
    ``modules=DEFAULT_MODULES``: Linear/Conv weights only), frozen weights counted.
    """
    threshold = check_non_negative("threshold", threshold)
    params = [p for _, p in select_parameters(model, modules, pattern, trainable_only=False)]
    total = sum(p.numel() for p in params)
    if total == 0:
        raise RegularkitError(f"weight_sparsity: no parameter selected by modules={modules!r}, pattern={pattern!r}")
    with torch.no_grad():
        small = sum(int((p.abs() < threshold).sum()) for p in params)
    return small / total
