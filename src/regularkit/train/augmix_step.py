"""AugMix with its Jensen-Shannon consistency loss, as a training step.

Hendrycks, Mu, Cubuk, Zoph, Gilmer & Lakshminarayanan (2020), "AugMix: A Simple Data
Processing Method to Improve Robustness and Uncertainty" (ICLR), eq. (1)-(2).  Each batch is
seen three times -- clean, and two independent AugMix draws -- and the loss is

    L = CE(p_clean, y) + lambda * JS(p_clean, p_aug1, p_aug2),
    JS = 1/3 (KL(p_clean || M) + KL(p_aug1 || M) + KL(p_aug2 || M)),  M = (p_clean + p_aug1 + p_aug2) / 3

(:func:`regularkit.augment.augmix.jsd_cross_entropy`, timm's ``JsdCrossEntropy`` form, lambda = 12
in the paper).  The three views are one forward of ``[x; x1; x2]`` (3N rows, as timm's
``--aug-splits 3`` does; batch norm sees the three together), the views drawn from the loop's
generator, so a seeded run is repeated exactly.  The reported logits are the clean view's.
Without ``jsd`` (lambda = 0) AugMix is a plain batch augmentation and needs no step.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from regularkit._util.checks import check_non_negative
from regularkit.augment.augmix import AugMix, augmix_views, jsd_cross_entropy
from regularkit.errors import RegularkitError
from regularkit.train.step import StepContext, StepOutput

__all__ = ["AugMixJSD"]


class AugMixJSD:
    """The step: three views, one forward, CE on the clean view + ``alpha`` x Jensen-Shannon of the three."""

    def __init__(self, augmix: AugMix, alpha: float = 12.0, *, label_smoothing: float = 0.0):
        if not isinstance(augmix, AugMix):
            raise RegularkitError(f"augmix must be a regularkit.augment.AugMix, got {type(augmix).__name__}")
        self.augmix = augmix
        self.alpha = check_non_negative("alpha", alpha)
        self.label_smoothing = check_non_negative("label_smoothing", label_smoothing)

    def get_config(self) -> dict:
        return {"augmix": self.augmix.get_config(), "alpha": self.alpha, "label_smoothing": self.label_smoothing}

    @classmethod
    def from_config(cls, config: Mapping) -> "AugMixJSD":
        return cls(AugMix(**config["augmix"]), config["alpha"], label_smoothing=config.get("label_smoothing", 0.0))

    def __repr__(self) -> str:
        return f"AugMixJSD(severity={self.augmix.severity}, alpha={self.alpha})"

    def __call__(self, ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
        if y.dim() != 1:
            raise RegularkitError(f"AugMix's consistency loss needs class-index targets (N,), got shape "
                                  f"{tuple(y.shape)}: it does not combine with MixUp or CutMix")
        clean, aug1, aug2 = augmix_views(x, self.augmix, generator=ctx.generator)
        with ctx.autocast():
            l0, l1, l2 = ctx.forward(torch.cat([clean, aug1, aug2])).chunk(3)
            loss = ctx.add_terms(jsd_cross_entropy(l0.float(), l1.float(), l2.float(), y, self.alpha,
                                                     label_smoothing=self.label_smoothing))
        return ctx.update(loss, l0)
