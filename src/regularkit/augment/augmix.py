"""AugMix (Hendrycks et al. 2020) per sample, and its Jensen-Shannon consistency loss.

AugMix, Algorithm 1: for each image draw ``m ~ Beta(alpha, alpha)`` and
chain weights ``w ~ Dirichlet(alpha, ..., alpha)`` (``mixture_width`` of
them); each chain applies ``depth`` ops (``chain_depth``, or uniform in
{1, 2, 3} when negative) drawn uniformly from the AugMix ops at a bin below
``severity`` (of 10), and

    x_augmix = m x + (1 - m) sum_i w_i chain_i(x)

(torchvision v2's form: Dirichlet([alpha, alpha]) gives ``m``).  The ops
leave out those that overlap corruptions of the test sets (no invert); with
``all_ops=True`` (torchvision's default) brightness, colour, contrast and
sharpness join.  Translations reach a third of the image, posterize keeps
4..0 bits.  Every sample draws its own weights, depths, ops and magnitudes
(torchvision draws depths and ops once per call); uint8 chains are
computed op by op in uint8 like torchvision, the mix in float32, rounded
back (torchvision truncates).

The Jensen-Shannon consistency loss (paper eq. 2-3; timm's ``JsdCrossEntropy``):

    L = CE(p_clean, y) + alpha_js / 3 * (KL(p_clean || M) + KL(p_aug1 || M) + KL(p_aug2 || M)),
    M = clamp((p_clean + p_aug1 + p_aug2) / 3, 1e-7, 1)

with ``KL`` averaged over the batch and ``alpha_js = 12``.  timm smooths
the labels by 0.1 by default; here ``label_smoothing=0`` unless asked (the
paper's loss).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util import rng
from regularkit._util.checks import check_bool, check_choice, check_in_range, check_int, check_non_negative
from regularkit._util.checks import check_positive
from regularkit.augment.auto import final_magnitude, magnitude_table
from regularkit.augment.base import Augmentation, Batch, Params, randint
from regularkit.augment.ops import INTERPOLATIONS, OPS, apply_ops, check_pixels
from regularkit.errors import RegularkitError

_lin = lambda hi: (lambda n, h, w: torch.linspace(0.0, float(hi(h, w)) if callable(hi) else hi, n))  # noqa: E731

#: AugMix's ops (``all_ops=False``), then the four colour ops ``all_ops=True`` adds (torchvision's spaces).
AUGMIX_PARTIAL = {"shear_x": _lin(0.3), "shear_y": _lin(0.3), "translate_x": _lin(lambda h, w: w / 3.0),
                  "translate_y": _lin(lambda h, w: h / 3.0), "rotate": _lin(30.0),
                  "posterize": lambda n, h, w: (4 - (torch.arange(n) / ((n - 1) / 4))).round().int().float(),
                  "solarize": lambda n, h, w: torch.linspace(1.0, 0.0, n), "auto_contrast": None, "equalize": None}
AUGMIX_ALL = {**AUGMIX_PARTIAL, **{c: _lin(0.9) for c in ("brightness", "color", "contrast", "sharpness")}}
BINS = 10
MAX_DEPTH = 3


class AugMix(Augmentation):
    """AugMix (see the module docstring); images unnormalised, floating point in [0, 1] or uint8."""

    pixel_range = "dtype"  # floats in [0, 1], uint8 in [0, 255]

    def __init__(self, severity: int = 3, mixture_width: int = 3, chain_depth: int = -1, alpha: float = 1.0,
                 all_ops: bool = True, *, fill: float = 0.0, interpolation: str = "bilinear",
                 seed: int | None = None):
        super().__init__(seed=seed)
        self.severity = check_int("severity", severity, minimum=1)
        if self.severity > BINS:
            raise RegularkitError(f"severity must be in [1, {BINS}], got {severity}")
        self.mixture_width = check_int("mixture_width", mixture_width, minimum=1)
        self.chain_depth = check_int("chain_depth", chain_depth)
        if self.chain_depth == 0 or self.chain_depth < -1:
            raise RegularkitError(f"chain_depth must be -1 (uniform in 1..3) or >= 1, got {chain_depth}")
        self.alpha = check_positive("alpha", alpha)
        self.all_ops = check_bool("all_ops", all_ops)
        self.fill = check_in_range("fill", fill, 0.0, 1.0)
        self.interpolation = check_choice("interpolation", interpolation, INTERPOLATIONS)

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        k, d = self.mixture_width, self.chain_depth if self.chain_depth > 0 else MAX_DEPTH
        m = rng.dirichlet(n, [self.alpha, self.alpha], device=x.device, generator=generator)
        chains = rng.dirichlet(n, [self.alpha] * k, device=x.device, generator=generator) * m[:, 1:]
        space = AUGMIX_ALL if self.all_ops else AUGMIX_PARTIAL
        ids = torch.tensor([OPS.index(name) for name in space], device=x.device)
        op = ids[randint((n, k, d), 0, len(space), x, generator)]
        bins = randint((n, k, d), 0, self.severity, x, generator)
        flip = rng.rand((n, k, d), device=x.device, generator=generator) <= 0.5
        depth = (torch.full((n, k, 1), d, device=x.device) if self.chain_depth > 0
                 else randint((n, k, 1), 1, MAX_DEPTH + 1, x, generator))
        op = torch.where(torch.arange(d, device=x.device) < depth, op, torch.zeros_like(op))  # past depth: identity
        value = magnitude_table(space, BINS, h, w).to(x.device)[op, bins]
        return {"weights": torch.cat([m[:, :1], chains], 1).to(x.device), "op": op,
                "magnitude": final_magnitude(op, value, flip)}

    def apply(self, x, y, params) -> Batch:
        check_pixels(x)
        low = x.dtype in (torch.float16, torch.bfloat16)
        v = x.float() if low else x                           # half precision: the whole chain in float32
        work = v if v.is_floating_point() else v.float()
        n, k, d = params["op"].shape
        ids = [OPS.index(name) for name in (AUGMIX_ALL if self.all_ops else AUGMIX_PARTIAL)]  # compiled: ops run
        weights = params["weights"].to(device=x.device, dtype=work.dtype).view(n, -1, 1, 1, 1)
        # the k chains side by side as one batch of k N images (chain-major): each step is one apply_ops
        aug = v.repeat(k, 1, 1, 1)
        op, magnitude = (params[key].transpose(0, 1).reshape(k * n, d) for key in ("op", "magnitude"))
        for s in range(d):
            aug = apply_ops(aug, op[:, s], magnitude[:, s], fill=self.fill, interpolation=self.interpolation,
                            ops=ids)
        aug = aug.view(k, n, *x.shape[1:]).to(work.dtype)
        mix = weights[:, 0] * work
        for c in range(k):
            mix = mix + weights[:, c + 1] * aug[c]
        if not x.is_floating_point():
            return mix.round().clamp(0, 255).to(x.dtype), y
        return mix.to(x.dtype), y


def augmix_views(x: torch.Tensor, augmix: AugMix, *, generator: torch.Generator | None = None):
    """The three views of the JSD loss: ``(x, augmix(x), augmix(x))``, two independent draws."""
    return x, augmix(x, generator=generator), augmix(x, generator=generator)


def jsd_cross_entropy(logits_clean: torch.Tensor, logits_aug1: torch.Tensor, logits_aug2: torch.Tensor,
                      targets: torch.Tensor, alpha: float = 12.0, *, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy on the clean logits plus ``alpha`` times the Jensen-Shannon divergence of the three.

    ``targets``: class indices (N,) or soft targets N x K (then CE is ``-sum(y log p)``).
    """
    alpha = check_non_negative("alpha", alpha)
    shapes = {tuple(t.shape) for t in (logits_clean, logits_aug1, logits_aug2)}
    if len(shapes) != 1 or logits_clean.dim() != 2:
        raise RegularkitError(f"the three logits must be N x K of one shape, got {sorted(shapes)}")
    loss = F.cross_entropy(logits_clean, targets, label_smoothing=label_smoothing)
    probs = [F.softmax(z, dim=1) for z in (logits_clean, logits_aug1, logits_aug2)]
    log_mixture = torch.stack(probs).mean(0).clamp(1e-7, 1).log()
    js = sum(F.kl_div(log_mixture, p, reduction="batchmean") for p in probs) / 3
    return loss + alpha * js


class JsdCrossEntropy(nn.Module):
    """:func:`jsd_cross_entropy` as a module: ``loss(logits_clean, logits_aug1, logits_aug2, targets)``."""

    def __init__(self, alpha: float = 12.0, *, label_smoothing: float = 0.0):
        super().__init__()
        self.alpha = check_non_negative("alpha", alpha)
        self.label_smoothing = check_non_negative("label_smoothing", label_smoothing)

    def forward(self, logits_clean, logits_aug1, logits_aug2, targets):
        return jsd_cross_entropy(logits_clean, logits_aug1, logits_aug2, targets, self.alpha,
                                 label_smoothing=self.label_smoothing)


__all__ = ["AugMix", "JsdCrossEntropy", "augmix_views", "jsd_cross_entropy", "AUGMIX_ALL", "AUGMIX_PARTIAL"]
