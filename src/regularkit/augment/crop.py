"""Random resized crop (Szegedy et al. 2015, "Going deeper with convolutions"), per sample, in one pass per axis.

The Inception crop: take a box of ``s`` times the image's area, ``s ~ U(scale)``,
with aspect ratio ``r`` log-uniform in ``ratio``, and resize it to ``size``.
Sampling is torchvision's ``RandomResizedCrop.get_params``, batched:

    for 10 tries:  A = s H W,  r = exp(U(log r1, log r2)),
                   w = round(sqrt(A r)),  h = round(sqrt(A / r))
                   keep the first try with 0 < w <= W and 0 < h <= H,
                   at top ~ U{0..H-h}, left ~ U{0..W-w}
    else (fallback) the central crop of the whole image, its aspect ratio clamped into ``ratio``.

Each sample draws its 10 tries at once and keeps its first fitting one.

Resizing is one sparse matrix per axis and sample, ``out = R_y x R_x^T`` (applied as
gathered taps, :func:`resize_taps`), with
``R_y`` (size_h x H) holding, for output row i, the bilinear weights around
the source position ``top + (i + 0.5) h / size_h - 0.5`` restricted to the box
(torch's ``interpolate(bilinear, align_corners=False)`` of the crop, edges
clamped).  With ``antialias=True`` (torchvision v2's default) a box shrunk by
``s > 1`` uses the triangle filter widened to ``s`` (Pillow's and torch's
antialiased bilinear); enlarging is plain bilinear either way.  The crop is
never cut out: the batch is resized in one pass per axis whatever the boxes.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

from regularkit._util.checks import check_bool, check_int
from regularkit.augment.base import Augmentation, Batch, Params, check_range, in_float, randint, uniform
from regularkit.errors import RegularkitError

TRIES = 10


def resize_taps(start: torch.Tensor, length: torch.Tensor, size_in: int, size_out: int, *,
                antialias: bool = True):
    """The non-zero bilinear (triangle) taps resizing ``[start, start + length)`` to ``size_out``, per sample.

    Output pixel ``i`` reads input pixels ``j`` around ``c = start + (i + 0.5) s``
    (``s = length / size_out``) with weights ``max(0, 1 - |j + 0.5 - c| / S)``,
    ``S = max(s, 1)`` with antialias (else 1), kept inside the box and
    normalised to sum 1.  Returns indices and weights, N x size_out x K, with
    K = ceil(2 S_max) taps for the widest box the shapes allow, ``S_max =
    max(size_in / size_out, 1)`` (2 without antialias): a fixed count, not the
    batch's widest box, so ``torch.compile`` needs no data-dependent guard; the
    taps past a box's own support have weight 0.
    """
    start, length = start.double().view(-1, 1, 1), length.double().view(-1, 1, 1)
    scale = length / size_out
    support = scale.clamp(min=1.0) if antialias else torch.ones_like(scale)
    centre = start + (torch.arange(size_out, dtype=torch.float64, device=start.device).view(1, -1, 1) + 0.5) * scale
    widest = max(size_in / size_out, 1.0) if antialias else 1.0
    k = int(math.ceil(2 * widest - 1e-9))  # |j + 0.5 - c| < S holds for at most ceil(2 S) pixels
    j = torch.floor(centre - support - 0.5) + 1 + torch.arange(k, dtype=torch.float64, device=start.device)
    weights = (1 - ((j + 0.5 - centre) / support).abs()).clamp(min=0) * ((j >= start) & (j < start + length))
    return j.clamp(0, size_in - 1).long(), weights / weights.sum(-1, keepdim=True)


def resized_crop(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: torch.Tensor,
                 width: torch.Tensor, size: Tuple[int, int], *, antialias: bool = True) -> torch.Tensor:
    """Crop each sample's box (N,) tensors and resize it to ``size`` (bilinear), as ``R_y x R_x^T``.

    Where no box can be shrunk (``size`` at least the input's, the ``size=None``
    case) or without antialias: one ``grid_sample``.  Otherwise (decided on the
    shapes, never on the boxes, so it compiles without a guard) antialias reads
    K rows per axis (``index_select`` of whole rows on a flat view), weighted and
    summed in place, the x axis on the transposed image.
    """
    n, c, h, w = x.shape
    oh, ow = size
    if not antialias or (h <= oh and w <= ow):
        return _enlarge(x, top, left, height, width, size)
    iy, wy = resize_taps(top, height, h, oh, antialias=antialias)
    ix, wx = resize_taps(left, width, w, ow, antialias=antialias)
    rows = _read_rows(x.contiguous(), iy, wy.to(x.dtype))                     # N x C x oh x W
    return _read_rows(rows.transpose(2, 3).contiguous(), ix, wx.to(x.dtype)).transpose(2, 3).contiguous()


def _enlarge(x, top, left, height, width, size) -> torch.Tensor:
    """Plain bilinear (every box enlarged, or no antialias): one ``grid_sample`` at the source positions
    ``start + (i + 0.5) s - 0.5`` clamped into the box (``interpolate``'s edge rule), the same weights as
    :func:`resize_taps` with ``S = 1``."""
    n, c, h, w = x.shape

    def source(start, length, out, size_in):  # N x out, in grid_sample's normalised coordinates
        start, length = start.double().view(-1, 1), length.double().view(-1, 1)
        pos = start + (torch.arange(out, dtype=torch.float64, device=start.device) + 0.5) * length / out - 0.5
        pos = torch.minimum(torch.maximum(pos, start), start + length - 1)
        return ((2 * pos + 1) / size_in - 1).to(device=x.device, dtype=x.dtype)
    gy, gx = source(top, height, size[0], h), source(left, width, size[1], w)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _read_rows(x: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``out[n, c, i] = sum_k weight[n, i, k] x[n, c, index[n, i, k]]`` (rows of the last dim), in place."""
    n, c, h, w = x.shape
    flat = x.view(n * c * h, w)
    base = (torch.arange(n * c, device=x.device) * h).view(n, c, 1)
    out = None
    for k in range(index.shape[-1]):
        picked = flat.index_select(0, (base + index[:, None, :, k].to(x.device)).flatten()).view(n, c, -1, w)
        wk = weight[:, None, :, k, None].to(x.device)
        out = picked.mul_(wk) if out is None else out.addcmul_(picked, wk)
    return out


def _size(size) -> Tuple[int, int] | None:
    if size is None:
        return None
    dims = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if len(dims) != 2:
        raise RegularkitError(f"size must be None, an int or (height, width), got {size!r}")
    return tuple(check_int("size", s, minimum=1) for s in dims)  # type: ignore[return-value]


class RandomResizedCrop(Augmentation):
    """Random box of ``scale`` of the area and aspect ratio in ``ratio``, resized to ``size`` (None: the input's).

    Args:
        size: output (height, width), one int, or None to keep the input size (the CIFAR use).
        scale: area fraction range (torchvision: (0.08, 1)).
        ratio: aspect ratio (width / height) range, drawn log-uniformly.
        antialias: widen the filter when a box is shrunk (torchvision v2's default).
        seed: rank 0's seed of the op's own generator.

    Integer images are resized in float32 and rounded back.
    """

    def __init__(self, size: int | Sequence[int] | None = None, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), *,
                 antialias: bool = True, seed: int | None = None):
        super().__init__(seed=seed)
        self.size = size
        self._size = _size(size)
        self.scale, self.ratio = scale, ratio
        self._scale = check_range("scale", scale)
        self._ratio = check_range("ratio", ratio)
        if self._scale[0] <= 0 or self._scale[1] > 1:
            raise RegularkitError(f"scale must lie in (0, 1], got {scale!r}")
        if self._ratio[0] <= 0:
            raise RegularkitError(f"ratio must be > 0, got {ratio!r}")
        self.antialias = check_bool("antialias", antialias)

    def output_shape(self, shape):
        n, c, h, w = shape
        return (n, c) + (self._size or (h, w))

    def _fallback(self, h: int, w: int) -> Tuple[int, int]:
        """torchvision's central crop: the whole image, its aspect ratio clamped into ``ratio``."""
        lo, hi = self._ratio
        if w / h < lo:
            return int(round(w / lo)), w
        if w / h > hi:
            return h, int(round(h * hi))
        return h, w

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        area = uniform((n, TRIES), *self._scale, x, generator).double() * (h * w)
        log_r = uniform((n, TRIES), math.log(self._ratio[0]), math.log(self._ratio[1]), x, generator)
        r = torch.exp(log_r).double()
        cw, ch = torch.sqrt(area * r).round().long(), torch.sqrt(area / r).round().long()
        fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
        first = fits.long().argmax(1, keepdim=True)                       # the first fitting try (0 if none)
        found = fits.any(1)
        fh, fw = self._fallback(h, w)
        height = torch.where(found, ch.gather(1, first).squeeze(1), fh)
        width = torch.where(found, cw.gather(1, first).squeeze(1), fw)
        top = torch.where(found, randint(n, 0, h - height + 1, x, generator), (h - fh) // 2)
        left = torch.where(found, randint(n, 0, w - width + 1, x, generator), (w - fw) // 2)
        return {"top": top, "left": left, "height": height, "width": width}

    def apply(self, x, y, params) -> Batch:
        size = self._size or tuple(x.shape[-2:])
        return in_float(x, lambda v: resized_crop(v, params["top"], params["left"], params["height"],
                                                  params["width"], size, antialias=self.antialias)), y


__all__ = ["RandomResizedCrop", "resized_crop", "resize_taps"]
