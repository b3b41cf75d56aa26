"""The pixel ops of the AutoAugment family, batched, with torchvision v2's semantics and one magnitude per sample.

Cubuk et al. (2019, 2020), Müller & Hutter (2021) and Hendrycks et al. (2020)
draw from one list of ops, restated here from torchvision v2
(``functional/_color.py``, ``functional/_geometry.py``, ``_auto_augment.py``).
Images are **unnormalised**: floating-point in [0, 1] or uint8 in [0, 255]
(``B`` below is the bound, 1 or 255); apply these ops before standardising.

==============  ===========================================================
identity        ``x``
shear_x / _y    inverse warp ``x_in = x + m (y + H/2)`` / ``y_in = y + m (x + W/2)``: shear about the top-left corner
translate_x/_y  ``x_in = x - t`` / ``y_in = y - t`` (``t`` whole pixels)
rotate          ``m`` degrees counter-clockwise about the centre
brightness      ``clamp(f x, 0, B)``
color           ``clamp(f x + (1 - f) gray(x), 0, B)`` (saturation; gray floored on uint8)
contrast        ``clamp(f x + (1 - f) mean(gray(x)), 0, B)``
sharpness       interior: ``clamp(f x + (1 - f) smooth(x), 0, B)``, smooth = [[1 1 1] [1 5 1] [1 1 1]] / 13; border kept
posterize       keep the top ``b`` bits: ``floor(x 2^b) / 2^b`` clamped below 1 (float), ``x & mask`` (uint8)
solarize        ``x`` below ``t B``, ``B - x`` from it on
auto_contrast   per channel ``(x - min) B / (max - min)`` (unchanged where max = min)
equalize        per channel, Pillow's histogram-equalising lookup table on 256 levels
invert          ``B - x``
==============  ===========================================================

Geometric ops are one :func:`~regularkit.augment.affine.affine` warp per
batch (one matrix per sample; fill and interpolation as torchvision:
``nearest`` by default, zeros outside).  uint8 images are computed in float32
and rounded back after every op, as torchvision computes uint8 op by op;
where torchvision truncates (``_blend``, autocontrast) we round (house rule,
at most one level apart).  Luminance is Pillow's 0.299 R + 0.587 G + 0.114 B
(torchvision: 0.2989 R).  Other channel counts than 1 and 3 use the channel
mean as their gray (torchvision refuses them).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from regularkit.augment.affine import affine
from regularkit.augment.base import fill_for, to_integer
from regularkit.augment.photometric import grayscale
from regularkit.errors import RegularkitError

GEOMETRIC = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate")
OPS = ("identity",) + GEOMETRIC + ("brightness", "color", "contrast", "sharpness", "posterize", "solarize",
                                   "auto_contrast", "equalize", "invert")
INTERPOLATIONS = ("nearest", "bilinear")


def check_pixels(x: torch.Tensor) -> torch.Tensor:
    """These ops know the value range: floating point in [0, 1] or uint8 in [0, 255]."""
    if not (x.is_floating_point() or x.dtype == torch.uint8):
        raise RegularkitError(
            f"x must be floating point in [0, 1] or uint8 in [0, 255] for this op, got dtype {x.dtype}")
    return x


def bound(x: torch.Tensor) -> float:
    """The largest pixel value: 1 for floating-point images, 255 for uint8."""
    return 1.0 if x.is_floating_point() else 255.0


def _work(x: torch.Tensor) -> torch.Tensor:
    """The values to compute on: float32 for uint8 and half precision, float32/float64 as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _back(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(x.dtype) if x.is_floating_point() else to_integer(v, x.dtype)


def _col(t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return t.to(device=v.device, dtype=v.dtype).view(-1, 1, 1, 1)


# --------------------------------------------------------------------------- colour
def _blend(x: torch.Tensor, degenerate: torch.Tensor, factor: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``clamp(f v + (1 - f) degenerate, 0, B)`` per sample, back to ``x``'s dtype (torchvision's ``_blend``)."""
    return _back(torch.lerp(degenerate, v, _col(factor, v)).clamp(0, bound(x)), x)


def _gray(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    g = grayscale(v)
    return g if x.is_floating_point() or x.shape[1] == 1 else g.floor()


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    v = _work(x)
    return _back((v * _col(factor, v)).clamp(0, bound(x)), x)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    v = _work(x)
    return _blend(x, _gray(x, v).expand_as(v), factor, v)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    v = _work(x)
    mean = _gray(x, v).mean((1, 2, 3), keepdim=True)
    return _blend(x, mean.expand_as(v), factor, v)


def adjust_sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    if h <= 2 or w <= 2:
        return x
    v = _work(x)
    # the 3x3 kernel [[1 1 1] [1 5 1] [1 1 1]] / 13 as shifted sums (a 1-channel conv2d is slower on CPU)
    rows = v[..., :-2, :] + v[..., 1:-1, :] + v[..., 2:, :]
    box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    smooth = (box + 4 * v[..., 1:-1, 1:-1]) / 13.0
    if not x.is_floating_point():
        smooth = smooth.round()
    inner = torch.lerp(smooth, v[..., 1:-1, 1:-1], _col(factor, v))
    out = F.pad(inner, (1, 1, 1, 1))
    border = torch.ones(1, 1, h, w, dtype=torch.bool, device=v.device)
    border[..., 1:-1, 1:-1] = False
    return _back(torch.where(border, v, out).clamp(0, bound(x)), x)


# --------------------------------------------------------------------------- tone
def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top ``bits`` (N,) bits of every pixel (0..8)."""
    v = _work(x)
    levels = _col(torch.pow(2.0, bits.double()), v)
    if x.is_floating_point():
        return _back(torch.minimum(torch.floor(v * levels), levels - 1) / levels, x)
    step = 256.0 / levels                                  # x & mask = floor(x / 2^(8-b)) 2^(8-b), exact in float32
    return _back(torch.floor(v / step) * step, x)


def solarize(x: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Invert the pixels at or above ``threshold`` (N,), a fraction of the bound (torchvision: ``B * magnitude``)."""
    v = _work(x)
    t = (threshold.double() * bound(x)).to(v.dtype).to(v.device).view(-1, 1, 1, 1)  # torchvision: B * m in double
    return _back(torch.where(v >= t, bound(x) - v, v), x)


def invert(x: torch.Tensor) -> torch.Tensor:
    return _back(bound(x) - _work(x), x)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """Stretch each channel of each image to the full range [0, B]."""
    v = _work(x)
    lo, hi = v.amin((2, 3), keepdim=True), v.amax((2, 3), keepdim=True)
    flat = hi == lo
    scale = torch.where(flat, torch.ones_like(hi), (hi - lo) / bound(x))
    return _back(((v - torch.where(flat, torch.zeros_like(lo), lo)) / scale).clamp(0, bound(x)), x)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """Pillow's histogram equalisation per channel on 256 levels (float images are binned as torchvision does)."""
    n, c, h, w = x.shape
    if x.is_floating_point():
        levels = (_work(x) * (256.0 - 1e-3)).clamp(0, 255).to(torch.uint8)  # torchvision's float -> uint8
    else:
        levels = x
    flat = levels.reshape(n * c, h * w).long()
    hist = torch.zeros(n * c, 256, dtype=torch.long, device=x.device).scatter_add_(1, flat, torch.ones_like(flat))
    cum = hist.cumsum(1)
    last = hist.gather(1, cum.argmax(1, keepdim=True))           # count of the largest level present
    step = torch.div(h * w - last, 255, rounding_mode="floor")
    lut = torch.div(cum[:, :-1] + step // 2, step.clamp(min=1), rounding_mode="floor").clamp(0, 255)
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut], 1)
    out = torch.where(step > 0, lut.gather(1, flat), flat).view(n, c, h, w)
    if x.is_floating_point():
        return (out.to(_work(x).dtype) * (1.0 / 255.0)).to(x.dtype)
    return out.to(x.dtype)


# --------------------------------------------------------------------------- geometry
def geometric_matrix(kind: torch.Tensor, magnitude: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse-warp matrices N x 2 x 3 (centred pixel coordinates, y down) of the geometric ops.

    ``kind`` (N,) indexes :data:`GEOMETRIC`; the rows are torchvision's
    ``_get_inverse_affine_matrix`` for each op worked out (ShearX:
    ``shear = atan(m)`` about ``center = [0, 0]``; Rotate: ``-angle``).
    """
    m = magnitude.double()
    zero, one = torch.zeros_like(m), torch.ones_like(m)
    a = torch.deg2rad(m)
    cos, sin = torch.cos(a), torch.sin(a)
    k = kind.to(m.device)

    def pick(*values):  # value per kind, in GEOMETRIC's order
        out = zero
        for i, val in enumerate(values):
            out = torch.where(k == i, val, out)
        return out
    row0 = torch.stack([pick(one, one, one, one, cos), pick(m, zero, zero, zero, -sin),
                        pick(m * height / 2, zero, -m, zero, zero)], -1)
    row1 = torch.stack([pick(zero, m, zero, zero, sin), pick(one, one, one, one, cos),
                        pick(zero, m * width / 2, zero, -m, zero)], -1)
    return torch.stack([row0, row1], 1).float()


def warp(x: torch.Tensor, matrix: torch.Tensor, *, fill: float = 0.0, interpolation: str = "nearest") -> torch.Tensor:
    """The geometric ops' warp: :func:`affine` with a constant fill, in float32 and rounded back for uint8.

    ``fill`` is a fraction of the range (0.5: mid grey for floats and uint8
    alike, 128 on uint8); torchvision takes it in the image's units.
    """
    v = _work(x)
    cval = float(fill_for(fill * bound(x), x.dtype))
    out = affine(v, matrix, fill_mode="constant", cval=cval, interpolation=interpolation)
    return _back(out, x)


# --------------------------------------------------------------------------- dispatch
def _kernel(name: str):
    return {"brightness": lambda x, m: adjust_brightness(x, 1.0 + m),
            "color": lambda x, m: adjust_saturation(x, 1.0 + m),
            "contrast": lambda x, m: adjust_contrast(x, 1.0 + m),
            "sharpness": lambda x, m: adjust_sharpness(x, 1.0 + m),
            "posterize": posterize, "solarize": solarize,
            "auto_contrast": lambda x, m: autocontrast(x), "equalize": lambda x, m: equalize(x),
            "invert": lambda x, m: invert(x)}[name]


def apply_ops(x: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor, *, fill: float = 0.0,
              interpolation: str = "nearest", ops: Sequence[int] | None = None) -> torch.Tensor:
    """One op per sample: ``op`` (N,) indexes :data:`OPS`, ``magnitude`` (N,) is its final (signed) value.

    Eager: each op runs once, on the samples that drew it; the geometric ones
    share one warp.  One host sync (which ops are present) per call, and shapes
    that depend on the draw.  While ``torch.compile`` traces, the same numbers
    come from :func:`apply_ops_dense` (every op on the whole batch, no data-dependent
    shape: one graph).  Both are kept because the dense form costs 3-9x the eager
    time of the policies on a CPU (docs/augment.md, "torch.compile"); the tests
    check they agree bit for bit.  ``ops``: the indices ``op`` may hold (default all).
    """
    if torch.compiler.is_compiling():
        return apply_ops_dense(x, op, magnitude, fill=fill, interpolation=interpolation, ops=ops)
    op = op.to(x.device)
    counts = torch.bincount(op, minlength=len(OPS)).tolist()
    if counts[0] == x.shape[0]:
        return x
    out = x.clone()
    geometric = (op >= 1) & (op <= len(GEOMETRIC))
    if sum(counts[1:len(GEOMETRIC) + 1]):
        idx = geometric.nonzero().squeeze(1)
        matrix = geometric_matrix(op[idx] - 1, magnitude.to(x.device)[idx], x.shape[2], x.shape[3])
        out[idx] = warp(x[idx], matrix, fill=fill, interpolation=interpolation)
    for i in range(len(GEOMETRIC) + 1, len(OPS)):
        if counts[i]:
            idx = (op == i).nonzero().squeeze(1)
            out[idx] = _kernel(OPS[i])(x[idx], magnitude.to(x.device)[idx])
    return out


def apply_ops_dense(x: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor, *, fill: float = 0.0,
                    interpolation: str = "nearest", ops: Sequence[int] | None = None) -> torch.Tensor:
    """:func:`apply_ops` without data-dependent shapes: every op in ``ops`` (indices into :data:`OPS`, default
    all) runs on the whole batch, one geometric warp included, and ``torch.where`` keeps each sample's own.

    The ops are per sample (no statistic crosses samples), so a sample's result does not depend on which
    others ran beside it: the same numbers as the eager subsets, bit for bit.  Magnitudes of other ops
    reach a kernel on the rows it does not keep; ``where`` (not a blend) drops whatever they give there.
    """
    op, magnitude = op.to(x.device), magnitude.to(x.device)
    present = range(1, len(OPS)) if ops is None else sorted(set(int(i) for i in ops) - {0})
    out = x
    kinds = [i for i in present if i <= len(GEOMETRIC)]
    if kinds:
        geometric = (op >= 1) & (op <= len(GEOMETRIC))
        matrix = geometric_matrix((op - 1).clamp(0, len(GEOMETRIC) - 1), magnitude, x.shape[2], x.shape[3])
        out = torch.where(geometric.view(-1, 1, 1, 1), warp(x, matrix, fill=fill, interpolation=interpolation), out)
    for i in present:
        if i > len(GEOMETRIC):
            out = torch.where((op == i).view(-1, 1, 1, 1), _kernel(OPS[i])(x, magnitude), out)
    return out


__all__ = ["OPS", "GEOMETRIC", "apply_ops", "apply_ops_dense", "adjust_brightness", "adjust_contrast",
           "adjust_saturation",
           "adjust_sharpness", "autocontrast", "equalize", "geometric_matrix", "invert", "posterize", "solarize",
           "warp", "check_pixels", "bound"]
