"""Searched and search-free augmentation policies: AutoAugment, RandAugment, TrivialAugmentWide, per sample.

* AutoAugment (Cubuk et al. 2019): a policy is a list of 25 sub-policies, two
  ops each with a probability and a magnitude bin (of 10); an image draws one
  sub-policy and applies each of its ops with its probability.  ``policy`` is
  ``"imagenet"`` or ``"cifar10"`` (the published policies, as torchvision lists them).
* RandAugment (Cubuk et al. 2020): ``num_ops`` ops drawn uniformly (with
  replacement) from 14, each at the one global ``magnitude`` of
  ``num_magnitude_bins`` bins (default 9 of 31).
* TrivialAugmentWide (Müller & Hutter 2021): one op, a magnitude bin drawn
  uniformly from ``num_magnitude_bins``, on the wider ranges of the paper.

Signed ops (shear, translate, rotate, brightness, colour, contrast,
sharpness) flip the sign of their magnitude with probability 1/2; colour
ops use the factor ``1 + m``.  The ops, ranges and bins are torchvision v2's
(``transforms/v2/_auto_augment.py``), kernels in :mod:`regularkit.augment.ops`.

Batched (where torchvision applies one draw to a whole tensor): every sample
draws its own ops, magnitudes and signs in ``make_params`` (``op`` and
``magnitude``, N x layers); ``apply`` runs each op once on the samples that
drew it (eager), or every op of the policy on the batch, selected per sample
(while ``torch.compile`` traces: one graph, the same numbers;
:func:`regularkit.augment.ops.apply_ops`).  Images are unnormalised: floating
point in [0, 1] or uint8.
"""
from __future__ import annotations

import torch

from regularkit._util import rng
from regularkit._util.checks import check_choice, check_in_range, check_int
from regularkit.augment.base import Augmentation, Batch, Params, randint
from regularkit.augment.ops import INTERPOLATIONS, OPS, apply_ops, check_pixels
from regularkit.errors import RegularkitError

_I = {name: i for i, name in enumerate(OPS)}
SIGNED = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness", "color", "contrast",
          "sharpness")


def _lin(hi):
    return lambda n, h, w: torch.linspace(0.0, float(hi(h, w)) if callable(hi) else float(hi), n)


def _bits(top: int, span: int):
    return lambda n, h, w: (top - (torch.arange(n) / ((n - 1) / span))).round().int().float()


_SOLARIZE = lambda n, h, w: torch.linspace(1.0, 0.0, n)  # noqa: E731
_COLOR = ("brightness", "color", "contrast", "sharpness")

#: op -> magnitudes(num_bins, height, width) of each space (None: no magnitude), in torchvision's order.
RAND_AUGMENT = {"identity": None, "shear_x": _lin(0.3), "shear_y": _lin(0.3),
                "translate_x": _lin(lambda h, w: 150.0 / 331.0 * w),
                "translate_y": _lin(lambda h, w: 150.0 / 331.0 * h),
                "rotate": _lin(30.0), **{c: _lin(0.9) for c in _COLOR}, "posterize": _bits(8, 4),
                "solarize": _SOLARIZE, "auto_contrast": None, "equalize": None}
TRIVIAL_AUGMENT_WIDE = {"identity": None, "shear_x": _lin(0.99), "shear_y": _lin(0.99), "translate_x": _lin(32.0),
                        "translate_y": _lin(32.0), "rotate": _lin(135.0), **{c: _lin(0.99) for c in _COLOR},
                        "posterize": _bits(8, 6), "solarize": _SOLARIZE, "auto_contrast": None, "equalize": None}
AUTO_AUGMENT = {**{k: v for k, v in RAND_AUGMENT.items() if k != "identity"}, "invert": None}

#: The published sub-policies: ((op, probability, magnitude bin of 10), (op, probability, bin)).
POLICIES = {
    "imagenet": (
        (("posterize", 0.4, 8), ("rotate", 0.6, 9)), (("solarize", 0.6, 5), ("auto_contrast", 0.6, None)),
        (("equalize", 0.8, None), ("equalize", 0.6, None)), (("posterize", 0.6, 7), ("posterize", 0.6, 6)),
        (("equalize", 0.4, None), ("solarize", 0.2, 4)), (("equalize", 0.4, None), ("rotate", 0.8, 8)),
        (("solarize", 0.6, 3), ("equalize", 0.6, None)), (("posterize", 0.8, 5), ("equalize", 1.0, None)),
        (("rotate", 0.2, 3), ("solarize", 0.6, 8)), (("equalize", 0.6, None), ("posterize", 0.4, 6)),
        (("rotate", 0.8, 8), ("color", 0.4, 0)), (("rotate", 0.4, 9), ("equalize", 0.6, None)),
        (("equalize", 0.0, None), ("equalize", 0.8, None)), (("invert", 0.6, None), ("equalize", 1.0, None)),
        (("color", 0.6, 4), ("contrast", 1.0, 8)), (("rotate", 0.8, 8), ("color", 1.0, 2)),
        (("color", 0.8, 8), ("solarize", 0.8, 7)), (("sharpness", 0.4, 7), ("invert", 0.6, None)),
        (("shear_x", 0.6, 5), ("equalize", 1.0, None)), (("color", 0.4, 0), ("equalize", 0.6, None)),
        (("equalize", 0.4, None), ("solarize", 0.2, 4)), (("solarize", 0.6, 5), ("auto_contrast", 0.6, None)),
        (("invert", 0.6, None), ("equalize", 1.0, None)), (("color", 0.6, 4), ("contrast", 1.0, 8)),
        (("equalize", 0.8, None), ("equalize", 0.6, None))),
    "cifar10": (
        (("invert", 0.1, None), ("contrast", 0.2, 6)), (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
        (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)), (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
        (("auto_contrast", 0.5, None), ("equalize", 0.9, None)), (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
        (("color", 0.4, 3), ("brightness", 0.6, 7)), (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
        (("equalize", 0.6, None), ("equalize", 0.5, None)), (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
        (("color", 0.7, 7), ("translate_x", 0.5, 8)), (("equalize", 0.3, None), ("auto_contrast", 0.4, None)),
        (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)), (("brightness", 0.9, 6), ("color", 0.2, 8)),
        (("solarize", 0.5, 2), ("invert", 0.0, None)), (("equalize", 0.2, None), ("auto_contrast", 0.6, None)),
        (("equalize", 0.2, None), ("equalize", 0.6, None)), (("color", 0.9, 9), ("equalize", 0.6, None)),
        (("auto_contrast", 0.8, None), ("solarize", 0.2, 8)), (("brightness", 0.1, 3), ("color", 0.7, 0)),
        (("solarize", 0.4, 5), ("auto_contrast", 0.9, None)), (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
        (("auto_contrast", 0.9, None), ("solarize", 0.8, 3)), (("equalize", 0.8, None), ("invert", 0.1, None)),
        (("translate_y", 0.7, 9), ("auto_contrast", 0.9, None))),
}


def magnitude_table(space: dict, num_bins: int, height: int, width: int) -> torch.Tensor:
    """len(OPS) x num_bins float32: each op's magnitude per bin in ``space`` (0 where it has none)."""
    table = torch.zeros(len(OPS), num_bins)
    for name, fn in space.items():
        if fn is not None:
            table[_I[name]] = fn(num_bins, height, width).float()
    return table


def final_magnitude(op: torch.Tensor, value: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Signed ops negated where ``flip``; translations cut to whole pixels (torchvision's ``int(m)``)."""
    signed = torch.zeros(len(OPS), dtype=torch.bool)
    signed[[_I[s] for s in SIGNED]] = True
    value = torch.where(signed.to(op.device)[op] & flip, -value, value)
    is_translate = (op == _I["translate_x"]) | (op == _I["translate_y"])
    return torch.where(is_translate, value.trunc(), value)


class _Policy(Augmentation):
    """Shared ``apply``: the layers of per-sample ops, in order."""

    #: floats are read as [0, 1], uint8 as [0, 255] (the conformance suite compares the two that way)
    pixel_range = "dtype"

    def _init_warp(self, fill, interpolation, space) -> None:
        self._op_ids = tuple(sorted({_I[name] for name in space}))  # the ops a sample can draw (compiled apply)
        self.fill = check_in_range("fill", fill, 0.0, 1.0)
        self.interpolation = check_choice("interpolation", interpolation, INTERPOLATIONS)

    def apply(self, x, y, params) -> Batch:
        check_pixels(x)
        v = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # half precision: computed in float32
        for layer in range(params["op"].shape[1]):
            v = apply_ops(v, params["op"][:, layer], params["magnitude"][:, layer], fill=self.fill,
                          interpolation=self.interpolation, ops=self._op_ids)
        return v.to(x.dtype), y

    def _draw(self, x, space: dict, layers: int, bins, num_bins: int, generator) -> Params:
        """``layers`` uniform op draws per sample from ``space``, at ``bins`` (N x layers) of ``num_bins``."""
        n, _, h, w = x.shape
        ids = torch.tensor([_I[k] for k in space], device=x.device)
        op = ids[randint((n, layers), 0, len(space), x, generator)]
        if bins is None:
            bins = randint((n, layers), 0, num_bins, x, generator)
        flip = rng.rand((n, layers), device=x.device, generator=generator) <= 0.5
        value = magnitude_table(space, num_bins, h, w).to(x.device)[op, bins]
        return {"op": op, "magnitude": final_magnitude(op, value, flip)}


class RandAugment(_Policy):
    """RandAugment: ``num_ops`` uniform ops per sample at bin ``magnitude`` of ``num_magnitude_bins``.

    ``fill`` (a fraction of the range: 0.5 is mid grey) fills what the geometric ops uncover;
    ``interpolation`` is ``nearest`` (torchvision's default) or ``bilinear``.
    """

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31, *,
                 fill: float = 0.0, interpolation: str = "nearest", seed: int | None = None):
        super().__init__(seed=seed)
        self.num_ops = check_int("num_ops", num_ops, minimum=0)
        self.num_magnitude_bins = check_int("num_magnitude_bins", num_magnitude_bins, minimum=2)
        self.magnitude = check_int("magnitude", magnitude, minimum=0)
        if self.magnitude >= self.num_magnitude_bins:
            raise RegularkitError(
                f"magnitude must be a bin below num_magnitude_bins={num_magnitude_bins}, got {magnitude}")
        self._init_warp(fill, interpolation, RAND_AUGMENT)

    def make_params(self, x, generator=None) -> Params:
        bins = torch.full((x.shape[0], self.num_ops), self.magnitude, dtype=torch.long, device=x.device)
        return self._draw(x, RAND_AUGMENT, self.num_ops, bins, self.num_magnitude_bins, generator)


class TrivialAugmentWide(_Policy):
    """TrivialAugment (wide ranges): one uniform op per sample at a uniform bin of ``num_magnitude_bins``."""

    def __init__(self, num_magnitude_bins: int = 31, *, fill: float = 0.0, interpolation: str = "nearest",
                 seed: int | None = None):
        super().__init__(seed=seed)
        self.num_magnitude_bins = check_int("num_magnitude_bins", num_magnitude_bins, minimum=2)
        self._init_warp(fill, interpolation, TRIVIAL_AUGMENT_WIDE)

    def make_params(self, x, generator=None) -> Params:
        return self._draw(x, TRIVIAL_AUGMENT_WIDE, 1, None, self.num_magnitude_bins, generator)


class AutoAugment(_Policy):
    """AutoAugment with a published policy: one sub-policy per sample, each of its two ops with its probability."""

    def __init__(self, policy: str = "imagenet", *, fill: float = 0.0, interpolation: str = "nearest",
                 seed: int | None = None):
        super().__init__(seed=seed)
        self.policy = check_choice("policy", policy, tuple(POLICIES))
        subs = POLICIES[self.policy]
        self._init_warp(fill, interpolation, {name for sub in subs for name, _, _ in sub})
        self._ops = torch.tensor([[_I[name] for name, _, _ in sub] for sub in subs])
        self._prob = torch.tensor([[p for _, p, _ in sub] for sub in subs])
        self._bin = torch.tensor([[0 if b is None else b for _, _, b in sub] for sub in subs])

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        d = x.device
        pick = randint(n, 0, len(self._ops), x, generator)
        u = rng.rand((n, 2), device=d, generator=generator)
        flip = rng.rand((n, 2), device=d, generator=generator) <= 0.5
        op, prob, bins = self._ops.to(d)[pick], self._prob.to(d)[pick], self._bin.to(d)[pick]
        value = magnitude_table(AUTO_AUGMENT, 10, h, w).to(d)[op, bins]
        op = torch.where(u <= prob, op, torch.zeros_like(op))  # not drawn: identity
        return {"op": op, "magnitude": final_magnitude(op, torch.where(op > 0, value, 0.0), flip)}


__all__ = ["AutoAugment", "RandAugment", "TrivialAugmentWide", "POLICIES", "RAND_AUGMENT", "TRIVIAL_AUGMENT_WIDE",
           "AUTO_AUGMENT", "magnitude_table", "final_magnitude"]
