"""Erase one rectangle per image: Cutout and Random Erasing.

* Cutout (DeVries & Taylor 2017): a fixed-size square whose centre is uniform
  over the image; near a border the square is clipped, so less is erased.
* Random Erasing (Zhong et al. 2017, Algorithm 1): with probability p, draw an
  area ``S_e ~ U(s_l, s_h) * H * W``, an aspect ratio ``r_e ~ U(r_1, r_2)``,
  so ``H_e = sqrt(S_e r_e)``, ``W_e = sqrt(S_e / r_e)``, and a corner
  ``(x_e, y_e)`` uniform over the image; keep the box if it fits
  (``x_e + W_e <= W`` and ``y_e + H_e <= H``), else draw all four again,
  until one fits.  So a sample drawn for erasing is always erased: the erased
  fraction is p.

Deck 002 calls both "random pixel erasing (CutOut)".  Batched: a box per
sample is four integers; the mask is built by broadcasting row and column
tests, and one ``where`` writes the fill, whatever the batch size.  Random
Erasing's redraws are candidates drawn at once: each sample draws ``k`` and
keeps its first fitting one (the first fit of an i.i.d. sequence, so exactly
Algorithm 1's distribution), ``k`` chosen from the image size alone so that all
``k`` miss with chance at most :data:`MISS` (1e-9); such a sample erases its
first candidate moved inside the image.  No step depends on the values drawn
(no loop until every sample has a box, no ``nonzero``), so ``make_params`` and
the whole op compile to one graph (``torch.compile(fullgraph=True)``).

``value="random"`` fills N(0, 1) per pixel on floating-point images
(standardised inputs: timm's and torchvision's choice) and uniform integers
0..255 on integer images (raw pixels: the paper's Rand(0, 255)); both come
from one float32 N(0, 1) draw, so a seed gives the same draws whatever the dtype.
"""
from __future__ import annotations

import functools
import math
import operator
from typing import Sequence

import numpy as np
import torch

from regularkit._util import rng
from regularkit._util.checks import check_int, check_number, check_probability
from regularkit._util.compile import constant_result
from regularkit.augment.base import (
    Augmentation,
    Batch,
    Params,
    check_range,
    fill_for,
    randint,
    select,
    to_integer,
    uniform,
)
from regularkit.errors import RegularkitError

#: Random Erasing's candidates per sample at most: ranges that fit so rarely that more would be needed are refused.
MAX_CANDIDATES = 4096
#: The chance that a sample to erase finds no fitting box among its candidates (it then erases its first candidate
#: moved inside the image); the number of candidates is chosen from the image size to keep it at most this.
MISS = 1e-9
_GRID = 128


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

    An empty box (``bottom <= top``) leaves that sample untouched.  Integer
    images get the value rounded and clamped to their dtype.
    """
    n, c, h, w = x.shape
    if isinstance(value, torch.Tensor):
        value = value.to(device=x.device)
        value = value.to(x.dtype) if x.is_floating_point() else to_integer(value.float(), x.dtype)
        value = (value.view(1, c, 1, 1) if value.dim() == 1 else value).expand_as(x)
    else:
        value = fill_for(value, x.dtype)
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


def _raw_pixels(z: torch.Tensor) -> torch.Tensor:
    """N(0, 1) draws -> integers uniform on 0..255, ``floor(256 Phi(z))`` (Phi: the normal CDF).

    The paper's Rand(0, 255) on raw pixels, from the same draw as the float fill.
    """
    phi = 0.5 * (1.0 + torch.erf(z.float() / math.sqrt(2.0)))
    return torch.floor(256.0 * phi).clamp(0, 255)


class _Eraser(Augmentation):
    def _fill_value(self, x, generator):
        if self.value == "random":
            # i.i.d. N(0, 1) per pixel, float32 whatever the dtype; drawn in make_params so apply stays deterministic.
            return rng.randn(x.shape, device=x.device, generator=generator)
        if isinstance(self.value, tuple):
            if len(self.value) != x.shape[1]:
                raise RegularkitError(f"value has {len(self.value)} entries for {x.shape[1]} channels")
            return torch.tensor(self.value, device=x.device)
        return self.value

    def apply(self, x, y, params) -> Batch:
        value = params["value"]
        if self.value == "random" and not x.is_floating_point():
            value = _raw_pixels(value)
        return erase(x, params["top"], params["left"], params["bottom"], params["right"], value), y


class Cutout(_Eraser):
    """Erase a ``size`` x ``size`` square centred uniformly in the image, clipped at the borders.

    Args:
        size: side of the square in pixels (DeVries & Taylor use 16 on CIFAR-10).
        p: probability that a sample is erased.
        value: a number, one number per channel, or ``"random"`` (module docstring).
        seed: rank 0's seed of the op's own generator (see :mod:`regularkit.augment.base`).
    """

    def __init__(self, size: int, *, p: float = 1.0, value=0.0, seed: int | None = None):
        super().__init__(seed=seed)
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


@functools.lru_cache(maxsize=256)
def acceptance(scale: tuple, ratio: tuple, h: int, w: int) -> float:
    """The chance that one candidate of Algorithm 1 fits an ``h`` x ``w`` image.

    Averaged over a midpoint grid of area x ratio: the sides round to
    ``H_e = round(sqrt(S_e r_e))`` and ``W_e = round(sqrt(S_e / r_e))``, and a box
    of sides within the image fits at ``(H - H_e + 1)(W - W_e + 1)`` of the ``H W``
    corners.  0 means no box of these ranges fits (an error, not an endless loop).
    """
    g = (np.arange(_GRID) + 0.5) / _GRID
    area = (scale[0] + (scale[1] - scale[0]) * g)[:, None] * (h * w)
    r = (ratio[0] + (ratio[1] - ratio[0]) * g)[None, :]
    he, we = np.round(np.sqrt(area * r)), np.round(np.sqrt(area / r))
    ok = (he >= 1) & (we >= 1) & (he <= h) & (we <= w)
    return float(np.mean(np.where(ok, (h - he + 1) / h * (w - we + 1) / w, 0.0)))


@constant_result
def candidates(scale: tuple, ratio: tuple, h: int, w: int) -> int:
    """Candidates per sample so that all miss with chance at most :data:`MISS`: ``ceil(log MISS / log(1 - c))``.

    ``c`` is :func:`acceptance`; 0 when no box fits.  It depends on the image size
    only, never on a draw: under ``torch.compile`` it is a constant of the graph
    (computed while tracing, for the traced image size).
    """
    chance = acceptance(scale, ratio, h, w)
    if chance == 0.0:
        return 0
    return 1 if chance >= 1.0 else max(1, math.ceil(math.log(MISS) / math.log1p(-chance)))


class RandomErasing(_Eraser):
    """Random Erasing (Zhong et al. 2017, Algorithm 1): a box of random area and aspect ratio, with probability p.

    Args:
        p: erasing probability per sample (paper: 0.5); every sample drawn is erased, so the erased fraction is p.
        scale: area range as fractions of the image (paper: s_l = 0.02, s_h = 0.4).
        ratio: aspect-ratio range H_e / W_e, drawn uniformly as in the paper (r_1 = 0.3, r_2 = 1/0.3).
        value: a number, one number per channel, or ``"random"`` (module docstring).
        seed: rank 0's seed of the op's own generator (see :mod:`regularkit.augment.base`).

    Each sample draws ``k`` candidates at once and keeps its first fitting one
    (module docstring), ``k`` from :func:`candidates` (88 on 32 x 64 images with
    the paper's ranges, 58 on 32 x 32).  Ranges that cannot fit the image raise
    before any draw, and so do ranges that would need more than
    :data:`MAX_CANDIDATES` candidates (fewer than 0.5 % of candidates fit).

    Differences from torchvision's ``RandomErasing`` on purpose (its
    ``make_params`` in ``transforms/v2/_augment.py``): torchvision draws the
    ratio log-uniformly, checks only that the box's sides fit, places the
    corner uniformly among the positions where it fits, and gives up after 10
    (area, ratio) pairs, leaving the image unerased.  We keep the paper's
    uniform ratio and corner over the whole image (so large boxes, which fit at
    fewer corners, are accepted less often than drawn, as in Algorithm 1), and
    never give up: a cap of 10 candidates with the paper's corner (this op's
    ``max_attempts=10`` until now) left 9 % of 32 x 64 images unerased at p = 1.
    """

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.4),
                 ratio: Sequence[float] = (0.3, 1 / 0.3), *, value=0.0, seed: int | None = None):
        super().__init__(seed=seed)
        self.p = check_probability("p", p)
        self.scale, self.ratio = scale, ratio
        self._scale = check_range("scale", scale)
        self._ratio = check_range("ratio", ratio)
        if not (0 < self._scale[0] and self._scale[1] <= 1):
            raise RegularkitError(f"scale must lie in (0, 1], got {scale!r}")
        if self._ratio[0] <= 0:
            raise RegularkitError(f"ratio must be > 0, got {ratio!r}")
        self.value = _fill(value)

    def _boxes(self, n: int, k: int, h: int, w: int, x, generator):
        """``k`` candidates for each of ``n`` samples; each sample's first fitting one as (top, left, height, width).

        A sample with no fitting candidate (chance at most :data:`MISS`) gets its
        first one with the sides clamped to the image and the corner moved so the box
        fits; clamping leaves a fitting box unchanged, so no branch on the draws.
        """
        area = uniform((n, k), *self._scale, x, generator) * (h * w)
        r = uniform((n, k), *self._ratio, x, generator)
        he, we = torch.sqrt(area * r).round().long(), torch.sqrt(area / r).round().long()
        ye, xe = randint((n, k), 0, h, x, generator), randint((n, k), 0, w, x, generator)
        fits = (he >= 1) & (we >= 1) & (ye + he <= h) & (xe + we <= w)
        first = torch.argmax(fits.int(), 1, keepdim=True)  # each sample's first fitting candidate (else the first)
        ye, xe, he, we = (t.gather(1, first).squeeze(1) for t in (ye, xe, he, we))
        he, we = he.clamp(1, h), we.clamp(1, w)
        return torch.minimum(ye, h - he), torch.minimum(xe, w - we), he, we

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        h, w = operator.index(h), operator.index(w)  # under torch.compile: the traced size, so k is a constant
        k = candidates(self._scale, self._ratio, h, w)
        if k == 0:
            raise RegularkitError(f"RandomErasing cannot fit any box of scale={self.scale!r} and "
                                  f"ratio={self.ratio!r} in a {h}x{w} image")
        if k > MAX_CANDIDATES:
            raise RegularkitError(
                f"RandomErasing: boxes of scale={self.scale!r} and ratio={self.ratio!r} fit a {h}x{w} image at "
                f"{acceptance(self._scale, self._ratio, h, w):.3%} of candidates, which needs {k} candidates per "
                f"sample (at most {MAX_CANDIDATES}); widen scale or ratio")
        on = rng.rand(n, device=x.device, generator=generator) < self.p
        top, left, height, width = self._boxes(n, k, h, w, x, generator)
        return {"top": top, "left": left, "bottom": top + height * on, "right": left + width * on,
                "value": self._fill_value(x, generator)}
