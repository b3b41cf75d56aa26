"""Flips and padded random crops, batched with per-sample parameters.

Horizontal flips and "pad 4, crop back to 32" are the two geometric
augmentations every CIFAR recipe uses (deck 004 "Horizontal flip", "Random
crops"; Krizhevsky et al. 2012; He et al. 2016 pad by 4 and crop 32x32).

Fast path: the batch is padded once (``F.pad`` for constant, one
``index_select`` per axis with folded indices for the other modes), viewed as
all its crop windows with ``unfold`` (no copy), and each sample's window is
read with one advanced-indexing op: no loop over samples, no per-pixel index
tensor.  Padding modes follow Keras/SciPy names (``fill_mode``):

    constant  k k k k | a b c d | k k k k      (fill value k)
    nearest   a a a a | a b c d | d d d d
    reflect   d c b a | a b c d | d c b a      (SciPy "reflect", edge repeated; torch's "symmetric")
    wrap      a b c d | a b c d | a b c d      (periodic)
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

from regularkit._util import rng
from regularkit._util.checks import check_choice, check_int, check_number, check_probability
from regularkit.augment.base import Augmentation, Batch, Params, fill_for, randint, select
from regularkit.errors import RegularkitError

PAD_MODES = ("constant", "nearest", "reflect", "wrap")


# --------------------------------------------------------------------------- kernels
def hflip(x: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Mirror left-right the samples where ``flip`` (bool, N) is true; all of them if ``None``."""
    if flip is None:
        return x.flip(-1)
    return select(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def vflip(x: torch.Tensor, flip: torch.Tensor | None = None) -> torch.Tensor:
    """Mirror top-bottom the samples where ``flip`` is true; all of them if ``None``."""
    if flip is None:
        return x.flip(-2)
    return select(flip.view(-1, 1, 1, 1), x.flip(-2), x)


def fold_index(idx: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Map indices that may fall outside ``[0, size)`` back inside, per non-constant padding mode."""
    if mode == "nearest":
        return idx.clamp(0, size - 1)
    if mode == "wrap":
        return torch.remainder(idx, size)
    if mode == "mirror":  # reflect about the edge pixel, not repeated (torch's "reflect"; GaussianBlur's padding)
        if size == 1:
            return torch.zeros_like(idx)
        m = torch.remainder(idx, 2 * size - 2)
        return torch.where(m < size, m, 2 * size - 2 - m)
    # reflect with the edge repeated: period 2*size, second half mirrored.
    m = torch.remainder(idx, 2 * size)
    return torch.where(m < size, m, 2 * size - 1 - m)


def pad(x: torch.Tensor, left: int, top: int, right: int, bottom: int, *, padding_mode: str = "constant",
        fill: float = 0.0) -> torch.Tensor:
    """Pad H and W by any amounts, per padding mode (pads larger than the image fold again)."""
    if left == top == right == bottom == 0:
        return x
    if padding_mode == "constant":
        return F.pad(x, (left, right, top, bottom), value=fill)
    h, w = x.shape[-2:]
    rows = fold_index(torch.arange(-top, h + bottom, device=x.device), h, padding_mode)
    cols = fold_index(torch.arange(-left, w + right, device=x.device), w, padding_mode)
    return x.index_select(-2, rows).index_select(-1, cols)


def crop(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int, *,
         padding: Tuple[int, int, int, int] | None = None, padding_mode: str = "constant",
         fill: float = 0.0) -> torch.Tensor:
    """Per-sample crops ``x[n, :, top[n]:top[n]+height, left[n]:left[n]+width]`` in one index op.

    ``top``/``left`` (int64, N) are in the coordinates of the *unpadded* image
    and may be negative or run past the border: those pixels come from the
    padding mode (so "pad by 4 then crop" is ``top`` in ``[-4, 4]``).  With
    ``top = left = 0`` and the input's own size the crop is the identity.

    How: pad once (the batch-wide amount ``padding`` = (left, top, right,
    bottom), read off the offsets when ``None``), view the padded batch as all
    its ``height x width`` windows (``unfold``, no copy), and pick each
    sample's window with one advanced-indexing read.
    """
    n, c, h, w = x.shape
    if padding is None:  # one host sync; RandomCrop passes its padding and avoids it
        lo_t, hi_t, lo_l, hi_l = (int(v) for v in (top.min(), top.max(), left.min(), left.max()))
        padding = (max(0, -lo_l), max(0, -lo_t), max(0, hi_l + width - w), max(0, hi_t + height - h))
    pl, pt, pr, pb = padding
    padded = pad(x, pl, pt, pr, pb, padding_mode=padding_mode, fill=fill)
    windows = padded.unfold(2, height, 1).unfold(3, width, 1)       # N x C x rows x cols x height x width
    picked = windows[torch.arange(n, device=x.device), :, top.to(x.device) + pt, left.to(x.device) + pl]
    return picked  # N x C x height x width


# --------------------------------------------------------------------------- classes
class HorizontalFlip(Augmentation):
    """Flip each sample left-right with probability ``p``, independently (deck 004)."""

    def __init__(self, p: float = 0.5, *, seed: int | None = None):
        super().__init__(seed=seed)
        self.p = check_probability("p", p)

    def make_params(self, x, generator=None) -> Params:
        return {"flip": rng.rand(x.shape[0], device=x.device, generator=generator) < self.p}

    def apply(self, x, y, params) -> Batch:
        return hflip(x, params["flip"]), y


class VerticalFlip(HorizontalFlip):
    """Flip each sample top-bottom with probability ``p`` (mind digits: 6 -> 9, deck 003)."""

    def apply(self, x, y, params) -> Batch:
        return vflip(x, params["flip"]), y


def _padding(value) -> Tuple[int, int, int, int]:
    """int, (horizontal, vertical) or (left, top, right, bottom), as torchvision reads it."""
    if isinstance(value, (tuple, list)):
        if len(value) == 2:
            value = (value[0], value[1], value[0], value[1])
        if len(value) != 4:
            raise RegularkitError(f"padding must be an int, a pair or a 4-tuple, got {value!r}")
        pads = tuple(check_int("padding", v, minimum=0) for v in value)
        return pads  # type: ignore[return-value]
    p = check_int("padding", value, minimum=0)
    return p, p, p, p


class RandomCrop(Augmentation):
    """Pad, then crop ``size`` at an offset drawn uniformly per sample.

    Args:
        size: output (height, width) or one int; ``None`` keeps the input size
            (the CIFAR recipe ``RandomCrop(padding=4)``).
        padding: int, (horizontal, vertical) or (left, top, right, bottom).
        padding_mode: ``constant`` | ``nearest`` | ``reflect`` | ``wrap`` (module docstring).
        fill: the constant padding value (rounded for integer images).
        seed: rank 0's seed of the op's own generator (module docstring of :mod:`~regularkit.augment.base`).

    The padded image is never built: see :func:`crop`.
    """

    def __init__(self, size: int | Sequence[int] | None = None, *, padding=0,
                 padding_mode: str = "constant", fill: float = 0.0, seed: int | None = None):
        super().__init__(seed=seed)
        if size is not None:
            dims = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
            if len(dims) != 2:
                raise RegularkitError(f"size must be an int or (height, width), got {size!r}")
            size = tuple(check_int("size", s, minimum=1) for s in dims)
        self.size = size
        self.padding = padding
        self._pads = _padding(padding)
        self.padding_mode = check_choice("padding_mode", padding_mode, PAD_MODES)
        self.fill = check_number("fill", fill)

    def _out_hw(self, h: int, w: int) -> Tuple[int, int]:
        oh, ow = self.size if self.size is not None else (h, w)
        left, top, right, bottom = self._pads
        if oh > h + top + bottom or ow > w + left + right:
            raise RegularkitError(
                f"crop size {(oh, ow)} is larger than the padded image {(h + top + bottom, w + left + right)}")
        return oh, ow

    def output_shape(self, shape):
        n, c, h, w = shape
        return (n, c) + self._out_hw(h, w)

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        oh, ow = self._out_hw(h, w)
        left, top, right, bottom = self._pads
        # Offsets in padded coordinates are uniform on [0, padded - out]; shift back by the padding.
        tops = randint(n, 0, h + top + bottom - oh + 1, x, generator) - top
        lefts = randint(n, 0, w + left + right - ow + 1, x, generator) - left
        return {"top": tops, "left": lefts, "height": oh, "width": ow}

    def apply(self, x, y, params) -> Batch:
        # The op's own padding covers every offset its make_params draws: no host sync to measure it.
        return crop(x, params["top"], params["left"], params["height"], params["width"], padding=self._pads,
                    padding_mode=self.padding_mode, fill=fill_for(self.fill, x.dtype)), y
