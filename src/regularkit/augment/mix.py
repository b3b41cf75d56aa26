"""MixUp and CutMix: blend each sample with a partner from the same batch, labels included.

MixUp (Zhang et al. 2018; deck 002):

    x~ = lam x_i + (1 - lam) x_j,     y~ = lam y_i + (1 - lam) y_j,     lam ~ Beta(alpha, alpha)

CutMix (Yun et al. 2019; deck 002): paste a box of x_B into x_A,
``x~ = M * x_A + (1 - M) * x_B``, with the box

    r_x ~ U(0, W),  r_w = W sqrt(1 - lam),     r_y ~ U(0, H),  r_h = H sqrt(1 - lam)

centred at (r_x, r_y), clipped to the image, then ``lam`` corrected to the
true kept area ``1 - (pasted pixels) / (W H)``, so the label weights equal the
pixel fractions exactly.

Pairing, for any batch size: ``pairing="shuffle"`` (default) puts the batch
on one random cycle and pairs each sample with the next, so nobody is paired
with itself once N >= 2, odd N included; ``pairing="flip"`` is timm's
``x.flip(0)`` (sample i with N-1-i; the middle one of an odd batch is left
unmixed).  N = 1 pairs the sample with itself: output = input, soft targets.

``lam`` is drawn per sample by default (each row its own mix, unlike timm's
and torchvision's one lam per batch); ``per_sample=False`` draws one per batch.
``p`` is the per-sample probability of mixing (lam = 1 otherwise).
Targets: class indices or soft targets in, soft targets N x K out; see
:mod:`regularkit.targets` for ``label_smoothing`` (off by default).

MixUp takes any batch N x ... (vectors N x D, sequences N x C x L, images):
it mixes along dim 0.  CutMix and the fused switch need images.  Integer
images are mixed in float32 and rounded back (CutMix copies pixels exactly).

The whole op compiles without a graph break (``torch.compile(fullgraph=True)``,
unseeded): no ``.item()``, no host sync, no Python branch on tensor values.
All randomness lives in ``make_params``; the Beta draw is two torch Gamma
draws, ``G1 / (G1 + G2)`` (:func:`regularkit._util.rng.beta`; a NumPy
generator seeded through ``.item()`` until issue 24, so seeds give other
lambdas since).  The one host sync of eager ``apply``, the
range check of class indices (:func:`regularkit.targets.check_class_indices`),
is skipped while compiling, where ``F.one_hot``'s own check applies.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from regularkit._util import rng
from regularkit._util.checks import check_bool, check_choice, check_in_range, check_int, check_positive, check_probability
from regularkit.augment.base import (
    Augmentation,
    Batch,
    Params,
    in_float,
    sample_view,
    select,
    uniform,
)
from regularkit.augment.erase import box_mask
from regularkit.errors import RegularkitError
from regularkit.targets import smooth, soft_targets_for

PAIRINGS = ("shuffle", "flip")


def partner_index(n: int, pairing: str, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Index of each sample's partner: a random n-cycle (no fixed point for n >= 2) or the flipped batch."""
    if pairing == "flip":
        return torch.arange(n - 1, -1, -1, device=x.device)
    order = torch.randperm(n, **rng.generator_kwargs(generator), device=rng.draw_device(x.device, generator))
    order = order.to(x.device)
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)  # order[k] is paired with order[k + 1]
    return partner


def encode_targets(y: torch.Tensor, num_classes: int, label_smoothing: float) -> torch.Tensor:
    """:func:`regularkit.targets.soft_targets_for`, traceable: while compiling, class indices skip its host-side
    range check (a graph break) and get the same encoding and formula, ``F.one_hot``'s own check standing in."""
    if torch.compiler.is_compiling() and y.dim() == 1:
        return smooth(F.one_hot(y.long(), num_classes).to(torch.float32), label_smoothing)
    return soft_targets_for(y, num_classes, label_smoothing)


def mix_targets(y_soft: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """``lam y_i + (1 - lam) y_partner(i)`` row-wise."""
    return torch.lerp(y_soft.index_select(0, partner), y_soft, lam.to(y_soft.dtype).view(-1, 1))


def mixup(x: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """``lam x_i + (1 - lam) x_partner(i)`` with one lam per sample (any batch N x ...), in one lerp."""
    return torch.lerp(x.index_select(0, partner), x, sample_view(lam.to(x.dtype), x))


def cutmix(x: torch.Tensor, partner: torch.Tensor, top, left, bottom, right) -> torch.Tensor:
    """Paste ``x[partner]`` into each sample's box ``[top, bottom) x [left, right)`` (pixels copied exactly)."""
    mask = box_mask(x.shape[2], x.shape[3], top, left, bottom, right,
                    x.dtype if x.is_floating_point() else torch.bool)
    return select(mask, x.index_select(0, partner), x)


class _Mix(Augmentation):
    mixes_targets = True

    def __init__(self, alpha: float = 1.0, *, num_classes: int, p: float = 1.0, label_smoothing: float = 0.0,
                 per_sample: bool = True, pairing: str = "shuffle", targets: str = "classes",
                 seed: int | None = None):
        super().__init__(seed=seed)
        self.alpha = check_positive("alpha", alpha)
        # "classes": class indices or soft targets over num_classes; one class would make every target the
        # same one-hot vector, so mixing targets would be a no-op (refused).  "values": regression targets
        # N x num_classes, mixed as they are (Zhang et al.'s MixUp of inputs and targets), one output allowed.
        self.targets = check_choice("targets", targets, ("classes", "values"))
        self.num_classes = check_int("num_classes", num_classes, minimum=2 if targets == "classes" else 1)
        self.p = check_probability("p", p)
        self.label_smoothing = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
        self.per_sample = check_bool("per_sample", per_sample)
        self.pairing = check_choice("pairing", pairing, PAIRINGS)

    def _lam(self, x, generator, alpha: float | None = None) -> torch.Tensor:
        n = x.shape[0]
        draws = n if self.per_sample else 1
        lam = rng.beta(draws, alpha or self.alpha, device=x.device, generator=generator).expand(n).clone()
        if self.p < 1.0:
            lam = torch.where(rng.rand(n, device=x.device, generator=generator) < self.p, lam, torch.ones_like(lam))
        return lam

    def _targets(self, y, params):
        if y is None:
            raise RegularkitError(f"{type(self).__name__} mixes labels: pass targets y (class indices or soft)")
        if self.targets == "values":
            if not y.is_floating_point() or y.dim() != 2 or y.shape[1] != self.num_classes:
                raise RegularkitError(f"{type(self).__name__}(targets='values') mixes regression targets N x "
                                      f"{self.num_classes}, got {y.dtype} of shape {tuple(y.shape)}")
            return mix_targets(y, params["partner"], params["lam"])
        return mix_targets(encode_targets(y, self.num_classes, self.label_smoothing), params["partner"], params["lam"])


class MixUp(_Mix):
    """MixUp (Zhang et al. 2018), per-sample lam ~ Beta(alpha, alpha); see the module docstring.

    Args:
        alpha: Beta concentration (1.0: lam uniform on [0, 1]).
        num_classes: K, the width of the soft targets.
        p: per-sample probability of mixing.
        label_smoothing: uniform smoothing of class-index targets before mixing (default 0).
        per_sample: one lam per sample (default) or one per batch.
        pairing: ``"shuffle"`` (random cycle) or ``"flip"`` (timm).
        seed: rank 0's seed of the op's own generator (see :mod:`regularkit.augment.base`).

    Any batch N x ... : mixed along dim 0.
    """

    images_only = False

    def make_params(self, x, generator=None) -> Params:
        return {"lam": self._lam(x, generator), "partner": partner_index(x.shape[0], self.pairing, x, generator)}

    def apply(self, x, y, params) -> Batch:
        return in_float(x, lambda v: mixup(v, params["partner"], params["lam"])), self._targets(y, params)


def cutmix_box(lam: torch.Tensor, h: int, w: int, x: torch.Tensor, generator: torch.Generator | None):
    """The lecture's box for each lam, and lam corrected to the area actually kept.

    ``r_x ~ U(0, W)``, ``r_w = W sqrt(1 - lam)`` (same for y) is the box centre
    and size; it is rounded to whole pixels and clipped to the image, so the
    returned ``lam = 1 - pasted pixels / (W H)`` is what the pixels say.
    """
    n = lam.shape[0]
    cut = torch.sqrt(1.0 - lam)
    cx, cy = uniform(n, 0.0, float(w), x, generator), uniform(n, 0.0, float(h), x, generator)
    half_w, half_h = cut * w / 2, cut * h / 2
    left = torch.round(cx - half_w).clamp(0, w).long()
    right = torch.round(cx + half_w).clamp(0, w).long()
    top = torch.round(cy - half_h).clamp(0, h).long()
    bottom = torch.round(cy + half_h).clamp(0, h).long()
    kept = 1.0 - ((right - left) * (bottom - top)).double() / (h * w)
    return top, left, bottom, right, kept.float()


class CutMix(_Mix):
    """CutMix (Yun et al. 2019) with the lecture's box and lam corrected to the pasted area.

    Arguments as :class:`MixUp`.  Params: the box ``top, left, bottom, right``
    (int64, N), the corrected ``lam`` and ``partner``.
    """

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        top, left, bottom, right, lam = cutmix_box(self._lam(x, generator), h, w, x, generator)
        return {"top": top, "left": left, "bottom": bottom, "right": right, "lam": lam,
                "partner": partner_index(n, self.pairing, x, generator)}

    def apply(self, x, y, params) -> Batch:
        out = cutmix(x, params["partner"], params["top"], params["left"], params["bottom"], params["right"])
        return out, self._targets(y, params)


class MixUpCutMix(_Mix):
    """MixUp or CutMix per sample, fused into one pass (timm's ``Mixup`` with ``switch_prob``).

    Each sample uses CutMix with probability ``switch_prob`` (lam ~
    Beta(cutmix_alpha, cutmix_alpha), box as :class:`CutMix`) and MixUp
    otherwise (lam ~ Beta(mixup_alpha, mixup_alpha)).  Both are
    ``x~ = x + w (x_partner - x)`` with a per-pixel weight ``w``: ``1 - lam``
    everywhere for MixUp rows, the box mask for CutMix rows, so the whole batch
    is one ``lerp``.  Same result as ``OneOf([MixUp(...), CutMix(...)])`` up to
    pairing (here partners come from the whole batch), in about half the time.
    ``per_sample=False`` draws one switch and one lam per batch, like timm.
    """

    def __init__(self, mixup_alpha: float = 1.0, cutmix_alpha: float = 1.0, *, num_classes: int,
                 switch_prob: float = 0.5, p: float = 1.0, label_smoothing: float = 0.0, per_sample: bool = True,
                 pairing: str = "shuffle", seed: int | None = None):
        super().__init__(mixup_alpha, num_classes=num_classes, p=p, label_smoothing=label_smoothing,
                         per_sample=per_sample, pairing=pairing, seed=seed)
        self.mixup_alpha = self.alpha
        self.cutmix_alpha = check_positive("cutmix_alpha", cutmix_alpha)
        self.switch_prob = check_probability("switch_prob", switch_prob)

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        lam_mix = self._lam(x, generator)
        u = rng.rand(n if self.per_sample else 1, device=x.device, generator=generator)
        use_cut = u.expand(n) < self.switch_prob
        top, left, bottom, right, lam_cut = cutmix_box(self._lam(x, generator, self.cutmix_alpha), h, w, x, generator)
        zero = torch.zeros_like(top)
        return {"cut": use_cut, "lam": torch.where(use_cut, lam_cut, lam_mix),
                "top": torch.where(use_cut, top, zero), "left": torch.where(use_cut, left, zero),
                "bottom": torch.where(use_cut, bottom, zero), "right": torch.where(use_cut, right, zero),
                "partner": partner_index(n, self.pairing, x, generator)}

    def apply(self, x, y, params) -> Batch:
        return in_float(x, lambda v: self._blend(v, params)), self._targets(y, params)

    @staticmethod
    def _blend(x: torch.Tensor, params: Params) -> torch.Tensor:
        n, _, h, w = x.shape
        cut = params["cut"].to(x.dtype).view(n, 1, 1, 1)
        box = box_mask(h, w, params["top"], params["left"], params["bottom"], params["right"], x.dtype)
        weight = box * cut + ((1 - params["lam"].to(x.dtype)).view(n, 1, 1, 1) * (1 - cut))
        return torch.lerp(x, x.index_select(0, params["partner"]), weight)
