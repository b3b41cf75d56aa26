"""R-Drop: two dropout passes kept consistent by a symmetric KL divergence, as a training step.

Liang, Wu, Li, Wang, Meng, Qin, Chen, Zhang & Liu (2021), "R-Drop: Regularized Dropout for
Neural Networks" (NeurIPS), eq. (1)-(3).  Each sample goes through the model twice with
independent dropout masks, giving class distributions ``P1`` and ``P2``; the paper's loss
for one sample is::

    L_paper = CE(P1, y) + CE(P2, y) + alpha * 1/2 (KL(P1 || P2) + KL(P2 || P1))

Scaling we use (half of it, same ``alpha``)::

    L = 1/2 (CE(P1, y) + CE(P2, y)) + alpha/2 * 1/2 (KL(P1 || P2) + KL(P2 || P1))

averaged over the batch.  Halving keeps ``alpha`` the paper's and puts the loss on the
baseline's scale: with ``alpha = 0``, or a model without dropout (``P1 = P2``), R-Drop
trains exactly as the standard step on ``CE`` does, with the same learning rate.  (The
authors' README code writes ``0.5 (CE1 + CE2) + alpha * KL_sym`` with the KL *summed* over
the batch and tokens; that is our loss with ``alpha_ours = 2 N alpha_README`` for a batch
of N: a batch-size dependent strength, which we avoid by averaging.)  ``CE`` stands for
``fit``'s ``loss_fn`` (label smoothing, soft targets from mixing), so R-Drop composes with
them; the loss terms (penalties) are added once, not per pass.

The symmetric KL is computed as ``1/2 sum_k (p1_k - p2_k)(log p1_k - log p2_k)``, the same
sum rearranged, from float32 log-softmax; gradients flow into both passes (no stop-gradient,
as in the paper).  The two passes are one forward of the batch concatenated with itself
(``[x; x]``, 2N rows: the authors' implementation), so each copy of a sample draws its own
dropout masks from the global RNG, and batch norm sees 2N rows once (one running-statistics
update; without dropout before it, the doubled batch has the batch's mean and biased
variance).
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from regularkit._util.checks import check_non_negative
from regularkit.train.step import StepContext, StepOutput

__all__ = ["RDrop", "rdrop_loss", "symmetric_kl"]


def symmetric_kl(logits1: Tensor, logits2: Tensor) -> Tensor:
    """``1/2 (KL(P1 || P2) + KL(P2 || P1))`` of the row-wise softmaxes, summed over classes, averaged over rows."""
    lp1, lp2 = F.log_softmax(logits1.float(), dim=-1), F.log_softmax(logits2.float(), dim=-1)
    return 0.5 * ((lp1.exp() - lp2.exp()) * (lp1 - lp2)).sum(-1).mean()


def rdrop_loss(logits1: Tensor, logits2: Tensor, y: Tensor, *, alpha: float,
               loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy) -> Tensor:
    """``1/2 (loss_fn(l1, y) + loss_fn(l2, y)) + alpha/2 * symmetric_kl(l1, l2)``: the paper's loss, halved."""
    return 0.5 * (loss_fn(logits1, y) + loss_fn(logits2, y)) + 0.5 * alpha * symmetric_kl(logits1, logits2)


class RDrop:
    """The R-Drop training step: ``[x; x]`` in one forward (two dropout masks), :func:`rdrop_loss`, one update.

    ``alpha``: the paper's consistency strength, tuned per task there (5 for translation,
    below 1 for most classification tasks); the recorded objective is :func:`rdrop_loss`
    plus the penalties.
    """

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_non_negative("alpha", alpha)

    def get_config(self) -> dict:
        return {"alpha": self.alpha}

    @classmethod
    def from_config(cls, config: Mapping) -> RDrop:
        return cls(**config)

    def __repr__(self) -> str:
        return f"RDrop(alpha={self.alpha})"

    def __call__(self, ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
        with ctx.autocast():
            logits1, logits2 = ctx.forward(torch.cat([x, x])).chunk(2)
            loss = ctx.add_terms(rdrop_loss(logits1, logits2, y, alpha=self.alpha, loss_fn=ctx.loss))
        return ctx.update(loss, logits1)
