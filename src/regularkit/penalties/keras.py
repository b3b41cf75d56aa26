"""Keras vocabulary: ``l1``, ``l2``, ``l1_l2`` regularizers called on a tensor, attached per layer.

Keras (and deck 000's "Ejemplo en Keras") attach regularizers to layers:
``Dense(64, kernel_regularizer=l2(0.01), activity_regularizer=l1(0.01))``.
Here ``regularize(module, kernel_regularizer=..., bias_regularizer=..., activity_regularizer=...)``
attaches them to any torch module and ``regularization_loss(model)`` sums everything attached,
to be added to the loss.  Formulas are Keras': ``l1 * sum|x| + l2 * sum x^2`` (no 1/2).
An activity term is divided by the batch size (dim 0 of the output), as Keras 3's
``Layer.__call__`` does since 3.14 (keras/src/layers/layer.py; see
:func:`~regularkit.penalties.functional.per_example`): ``regularize(dense,
activity_regularizer=l1(0.01))`` adds ``0.01 * sum|h| / B``.
The model-level penalties (``L1``, ``L2``, ...) are in :mod:`regularkit.penalties.weight`;
:mod:`regularkit.penalties` exports both vocabularies.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from regularkit._util.checks import check_non_negative
from regularkit.errors import RegularkitError
from regularkit.penalties.functional import elastic_net_penalty, per_example

__all__ = ["WeightRegularizer", "l1", "l2", "l1_l2", "regularize", "regularization_loss"]


class WeightRegularizer:
    """Keras' ``L1L2``: ``regularizer(x) = l1 * sum|x| + l2 * sum x^2`` for a tensor ``x``.

    The old-Keras name on the lecture slide (``keras.regularizers.WeightRegularizer(l1=0., l2=0.)``);
    usable as ``kernel_regularizer``, ``bias_regularizer`` or ``activity_regularizer``.
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1 = check_non_negative("l1", l1)
        self.l2 = check_non_negative("l2", l2)

    def __call__(self, x: Tensor) -> Tensor:
        return elastic_net_penalty([x], l1=self.l1, l2=self.l2)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls, config: dict) -> "WeightRegularizer":
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __repr__(self) -> str:
        return f"WeightRegularizer(l1={self.l1}, l2={self.l2})"


def l1(l1: float = 0.01) -> WeightRegularizer:
    """Keras ``l1(0.01)``: ``l1 * sum|x|`` (lasso)."""
    return WeightRegularizer(l1=l1)


def l2(l2: float = 0.01) -> WeightRegularizer:
    """Keras ``l2(0.01)``: ``l2 * sum x^2`` (no 1/2: Keras' "weight decay" l2 is twice torch's)."""
    return WeightRegularizer(l2=l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> WeightRegularizer:
    """Keras 2 ``l1_l2(l1=0.01, l2=0.01)``: ``l1 * sum|x| + l2 * sum x^2`` (elastic net)."""
    return WeightRegularizer(l1=l1, l2=l2)


class _Attached:
    """What :func:`regularize` stores on a module; it is also the activity forward hook."""

    def __init__(self, kernel, bias, activity):
        self.kernel, self.bias, self.activity = kernel, bias, activity
        self.terms: list[Tensor] = []
        self.handle = None

    def __call__(self, module, inputs, output):
        if module.training:  # as ActivityPenalty: evaluation forwards add nothing
            outs = output if isinstance(output, (tuple, list)) else (output,)
            self.terms.extend(per_example(self.activity(h), h) for h in outs if isinstance(h, Tensor))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["terms"] = []  # autograd graphs cannot be pickled
        return state


_ATTR = "_regularkit_regularizers"


def regularize(module: nn.Module, *, kernel_regularizer: Callable[[Tensor], Tensor] | None = None,
               bias_regularizer: Callable[[Tensor], Tensor] | None = None,
               activity_regularizer: Callable[[Tensor], Tensor] | None = None) -> nn.Module:
    """Attach Keras-style regularizers to ``module`` (kernel = ``module.weight``) and return it.

    Calling it again replaces what was attached (all ``None`` removes it).  Activity
    terms, ``activity_regularizer(h) / B`` as in Keras 3, are recorded by a forward hook in
    training mode and consumed, with the kernel and bias terms, by :func:`regularization_loss`
    -- Keras' ``model.losses``.
    """
    if not isinstance(module, nn.Module):
        raise RegularkitError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    for name, reg, attr in (("kernel_regularizer", kernel_regularizer, "weight"),
                            ("bias_regularizer", bias_regularizer, "bias"),
                            ("activity_regularizer", activity_regularizer, None)):
        if reg is not None and not callable(reg):
            raise RegularkitError(f"{name} must be callable (tensor -> scalar), got {reg!r}")
        if reg is not None and attr and not isinstance(getattr(module, attr, None), Tensor):
            raise RegularkitError(f"{name} given but {type(module).__name__} has no {attr} tensor")
    old = module.__dict__.pop(_ATTR, None)
    if old is not None and old.handle is not None:
        old.handle.remove()
    if kernel_regularizer is bias_regularizer is activity_regularizer is None:
        return module
    att = _Attached(kernel_regularizer, bias_regularizer, activity_regularizer)
    if activity_regularizer is not None:
        att.handle = module.register_forward_hook(att)
    module.__dict__[_ATTR] = att
    return module


def regularization_loss(model: nn.Module) -> Tensor:
    """Sum of every regularizer attached with :func:`regularize` in ``model``; clears activity terms."""
    terms: list[Tensor] = []
    for m in model.modules():
        att = m.__dict__.get(_ATTR)
        if att is None:
            continue
        if att.kernel is not None:
            terms.append(att.kernel(m.weight))
        if att.bias is not None:
            terms.append(att.bias(m.bias))
        terms.extend(att.terms)
        att.terms = []
    return torch.stack([t.reshape(()) for t in terms]).sum() if terms else torch.zeros(())
