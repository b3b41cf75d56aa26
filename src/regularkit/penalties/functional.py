"""The penalty kernels: pure functions of tensors, shared by every penalty class.

``elastic_net_penalty`` is L2 (weight decay, Krogh & Hertz 1992), L1 (the
lasso, Tibshirani 1996) or both (the elastic net, Zou & Hastie 2005);
``lp_penalty`` is the lecture's general ``||theta||_p^p`` (or the p-norm itself);
``per_example`` is Keras 3's scaling of an activity term by the batch size.
The model-level classes (:mod:`~regularkit.penalties.weight`), the activity
penalty and the Keras regularizers all compute their value here, so each
formula is written once.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor

from regularkit._util.checks import check_choice

__all__ = ["elastic_net_penalty", "lp_penalty", "per_example", "CONVENTIONS"]

#: How a squared term is scaled: ``"sum"`` lam * sum w^2 (cs231n, Keras), ``"half"`` lam / 2 * ||w||^2 (torch's SGD).
CONVENTIONS = ("sum", "half")


def _zero(tensors: Sequence[Tensor]) -> Tensor:
    # The sum starts from a 0-d zero of the tensors' dtype/device so an empty selection is a valid loss term.
    return tensors[0].new_zeros(()) if tensors else torch.zeros(())


def elastic_net_penalty(tensors: Iterable[Tensor], *, l1: float = 0.0, l2: float = 0.0,
                        convention: str = "sum", n: int | None = None) -> Tensor:
    """``(l1 * sum|w| + c * l2 * sum w^2) / n`` over all ``tensors``; ``c`` is 1 ("sum") or 1/2 ("half").

    With ``l1=0`` this is L2 / weight decay (Krogh & Hertz 1992), with ``l2=0`` the lasso
    penalty (Tibshirani 1996), both together the elastic net (Zou & Hastie 2005);
    cs231n's R(W) = sum beta W^2 + |W| times lambda is ``l1=lambda, l2=lambda*beta``.
    """
    tensors = list(tensors)
    check_choice("convention", convention, CONVENTIONS)
    total = _zero(tensors)
    c = 0.5 if convention == "half" else 1.0
    for w in tensors:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + (c * l2) * w.square().sum()  # square(), not pow: exact 2w gradient
    return total / n if n is not None else total


def lp_penalty(tensors: Iterable[Tensor], p: float, strength: float = 1.0, *,
               root: bool = False, n: int | None = None) -> Tensor:
    """``strength * sum |w|^p`` (or ``strength * (sum |w|^p)^(1/p)``, the p-norm of the lecture, with ``root``).

    The separable form (``root=False``) makes ``Lp(2)`` the "sum" L2 and ``Lp(1)`` the L1
    penalty; ``root=True`` is ||theta||_p over all tensors together, whose gradient is
    undefined when every weight is zero.
    """
    tensors = list(tensors)
    total = _zero(tensors)
    for w in tensors:
        total = total + w.abs().pow(p).sum()
    if root:
        total = total.pow(1.0 / p)
    total = strength * total
    return total / n if n is not None else total


def per_example(term: Tensor, output: Tensor) -> Tensor:
    """``term / B`` with ``B = output.shape[0]`` (the batch); a 0-d ``output`` is not divided.

    Keras 3's scaling of an activity term (keras/src/layers/layer.py, ``Layer.__call__``,
    since Keras 3.14): ``ops.divide_no_nan(loss, batch_size)`` when ``output.ndim > 0``,
    so an empty batch gives 0, not NaN (its term is a sum over nothing: 0 / 1 here).
    """
    return term / max(output.shape[0], 1) if output.dim() else term
