"""Erase one rectangle per image: Cutout and Random Erasing.

* Cutout (DeVries & Taylor 2017): a fixed-size square whose centre is uniform
  over the image; near a border the square is clipped, so less is erased.
* Random Erasing (Zhong et al. 2017, Algorithm 1): with probability p pick an
  area ``S_e ~ U(s_l, s_h) * H * W`` and aspect ratio ``r_e ~ U(r_1, r_2)``,
  so ``H_e = sqrt(S_e r_e)``, ``W_e = sqrt(S_e / r_e)``, and a corner
  ``(x_e, y_e)`` uniform over the image; keep the box if it fits
  (``x_e + W_e <= W`` and ``y_e + H_e <= H``), else draw again.

Deck 002 calls both "random pixel erasing (CutOut)".  Batched: a box per
sample is four integers; the mask is built by broadcasting row and column
tests, and one ``where`` writes the fill, whatever the batch size.
"""
from __future__ import annotations

from typing import Sequence

import torch

from regularkit._util import rng
from regularkit._util.checks import check_int, check_number
from regularkit.augment.base import (
    Augmentation,
    Batch,
    Params,
    check_probability,
    check_range,
    randint,
    select,
    uniform,
)
from regularkit.errors import RegularkitError


def box_mask(h: int, w: int, top: torch.Tensor, left: torch.Tensor, bottom: torch.Tensor,
             right: torch.Tensor, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """N x 1 x H x W, 1 inside ``[top, bottom) x [left, right)`` of each sample, else 0.

    Built as the outer product of a row test (N x H) and a column test (N x W);
    a float ``dtype`` gives the 0/1 weights :func:`~regularkit.augment.base.select`
    blends with directly (one multiply, instead of a bool ``&`` and a cast).
    """
    rows = torch.arange(h, device=top.device)
    cols = torch.arange(w, device=top.device)
    in_rows = ((rows >= top.view(-1, 1)) & (rows < bottom.view(-1, 1))).to(dtype)
    in_cols = ((cols >= left.view(-1, 1)) & (cols < right.view(-1, 1))).to(dtype)
    return (in_rows.unsqueeze(2) * in_cols.unsqueeze(1)).unsqueeze(1)


def erase(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, bottom: torch.Tensor, right: torch.Tensor,
          value) -> torch.Tensor:
    """Write ``value`` (number, per-channel (C,) tensor, or a full N x C x H x W tensor) into each box.

    An empty box (``bottom <= top``) leaves that sample untouched.
    """
    n, c, h, w = x.shape
    if isinstance(value, torch.Tensor):
        value = value.to(device=x.device, dtype=x.dtype)
        value = (value.view(1, c, 1, 1) if value.dim() == 1 else value).expand_as(x)
    dtype = x.dtype if x.is_floating_point() else torch.bool
    mask = box_mask(h, w, top, left, bottom, right, dtype)
    if isinstance(value, torch.Tensor):
        return select(mask, value, x)
    return select(1 - mask if x.is_floating_point() else ~mask, x, value)


def _fill(value):
    if isinstance(value, str):
        if value != "random":
            raise RegularkitError(f"value must be a number, a per-channel sequence or 'random', got {value!r}")
        return value
    if isinstance(value, (tuple, list)):
        return tuple(check_number("value", v) for v in value)
    return check_number("value", value)


class _Eraser(Augmentation):
    def _fill_value(self, x, generator):
        if self.value == "random":
            # i.i.d. N(0, 1) per pixel, for standardised inputs (timm's and torchvision's choice; the paper
            # draws U[0, 255] on raw pixels).  Drawn in make_params so apply stays deterministic.
            return rng.randn(x.shape, device=x.device, generator=generator).to(x.dtype)
        if isinstance(self.value, tuple):
            if len(self.value) != x.shape[1]:
                raise RegularkitError(f"value has {len(self.value)} entries for {x.shape[1]} channels")
            return torch.tensor(self.value, device=x.device)
        return self.value

    def apply(self, x, y, params) -> Batch:
        return erase(x, params["top"], params["left"], params["bottom"], params["right"], params["value"]), y


class Cutout(_Eraser):
    """Erase a ``size`` x ``size`` square centred uniformly in the image, clipped at the borders.

    Args:
        size: side of the square in pixels (DeVries & Taylor use 16 on CIFAR-10).
        p: probability that a sample is erased.
        value: fill: a number, one number per channel, or ``"random"`` (N(0, 1) noise).
    """

    def __init__(self, size: int, *, p: float = 1.0, value=0.0):
        self.size = check_int("size", size, minimum=1)
        self.p = check_probability("p", p)
        self.value = _fill(value)

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        cy, cx = randint(n, 0, h, x, generator), randint(n, 0, w, x, generator)
        on = (rng.rand(n, device=x.device, generator=generator) < self.p).long()
        top, left = (cy - self.size // 2).clamp(0, h), (cx - self.size // 2).clamp(0, w)
        bottom, right = (cy - self.size // 2 + self.size).clamp(0, h), (cx - self.size // 2 + self.size).clamp(0, w)
        return {"top": top, "left": left, "bottom": top + (bottom - top) * on, "right": right,
                "value": self._fill_value(x, generator)}


class RandomErasing(_Eraser):
    """Random Erasing (Zhong et al. 2017): a box of random area and aspect ratio, with probability p.

    Args:
        p: erasing probability per sample (paper: 0.5).
        scale: area range as fractions of the image (paper: s_l = 0.02, s_h = 0.4).
        ratio: aspect-ratio range H_e / W_e, drawn uniformly as in the paper (r_1 = 0.3, r_2 = 1/0.3).
        value: a number, one per channel, or ``"random"`` (N(0, 1) per pixel).
        max_attempts: the paper redraws until the box fits; we draw this many
            candidates per sample at once and keep the first that fits.  If none
            does (rare for the default ranges) the sample is left unerased, as
            torchvision does.
    """

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.4),
                 ratio: Sequence[float] = (0.3, 1 / 0.3), *, value=0.0, max_attempts: int = 10):
        self.p = check_probability("p", p)
        self.scale, self.ratio = scale, ratio
        self._scale = check_range("scale", scale)
        self._ratio = check_range("ratio", ratio)
        if not (0 < self._scale[0] and self._scale[1] <= 1):
            raise RegularkitError(f"scale must lie in (0, 1], got {scale!r}")
        if self._ratio[0] <= 0:
            raise RegularkitError(f"ratio must be > 0, got {ratio!r}")
        self.value = _fill(value)
        self.max_attempts = check_int("max_attempts", max_attempts, minimum=1)

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        k = self.max_attempts
        area = uniform((n, k), *self._scale, x, generator) * (h * w)
        r = uniform((n, k), *self._ratio, x, generator)
        he = torch.sqrt(area * r).round().long()
        we = torch.sqrt(area / r).round().long()
        ye, xe = randint((n, k), 0, h, x, generator), randint((n, k), 0, w, x, generator)
        fits = (he >= 1) & (we >= 1) & (ye + he <= h) & (xe + we <= w)
        first = torch.argmax(fits.int(), 1, keepdim=True)  # first fitting candidate (0 when none fits)
        ok = fits.gather(1, first).squeeze(1) & (rng.rand(n, device=x.device, generator=generator) < self.p)
        top, left = ye.gather(1, first).squeeze(1), xe.gather(1, first).squeeze(1)
        # A sample left unerased gets an empty box at its first candidate's corner.
        hh, ww = he.gather(1, first).squeeze(1) * ok, we.gather(1, first).squeeze(1) * ok
        return {"top": top, "left": left, "bottom": top + hh, "right": left + ww,
                "value": self._fill_value(x, generator)}
