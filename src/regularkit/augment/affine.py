"""One affine kernel for rotation, translation, shear and zoom; the ResNet scale-crop on top.

Deck 002 lists "translation, rotation, scale, shear changes" and deck 000
Keras' ``rotation_range``, ``width_shift_range``, ``shear_range``,
``zoom_range``, ``fill_mode``, ``cval``.  All of them are one inverse warp:
every output pixel ``p`` reads the input at ``M p + m``.  The batch is warped
with a single ``F.affine_grid`` + ``F.grid_sample`` holding one 2x3 matrix per
sample, so each image gets its own angle, shift, shear and zoom at the cost of
one pass.

Coordinates: pixels, x to the right and y down, origin at the image centre.
Matrices are converted to grid_sample's normalised coordinates
(``align_corners=False``, so pixel centres land exactly on pixel centres and
the identity matrix returns the input up to float rounding).

Fill modes (Keras/SciPy names): ``nearest`` is grid_sample's ``border``;
``reflect`` is its ``reflection`` (which with ``align_corners=False``
reflects about the outer pixel edge, SciPy's ``reflect``); ``constant`` with
value ``cval`` samples ``x - cval`` with zero padding and adds ``cval`` back
(bilinear weights sum to 1, so this is exactly sampling an image padded with
``cval``, without a second mask pass); ``wrap`` folds the source coordinates
into the image (periodic) and samples a copy padded by one circular pixel, so
interpolation across the seam is exact.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from regularkit._util.checks import check_choice, check_number
from regularkit.augment.base import Augmentation, Batch, Params, check_range, in_float, uniform
from regularkit.errors import RegularkitError

FILL_MODES = ("constant", "nearest", "reflect", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")


def affine_matrix(angle: torch.Tensor, translate: torch.Tensor, shear: torch.Tensor,
                  scale: torch.Tensor) -> torch.Tensor:
    """Inverse-warp matrices N x 2 x 3 (output pixel -> input pixel, centred coordinates).

    The forward map applied to the image content is ``T(translate) R(angle) Sh(shear) S(scale)``:

    * ``angle`` (N,) degrees, counter-clockwise as seen on screen;
    * ``translate`` (N, 2) pixels (right, down);
    * ``shear`` (N, 2) degrees (x-shear, y-shear): ``Sh = [[1, tan sx], [tan sy, 1]]``;
    * ``scale`` (N, 2) magnification per axis (``> 1`` enlarges the content).

    The returned matrix is its inverse, which is what grid sampling needs.
    """
    a = torch.deg2rad(angle.double())
    cos, sin = torch.cos(a), torch.sin(a)
    rot = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    t = torch.tan(torch.deg2rad(shear.double()))
    ones = torch.ones_like(a)
    sh = torch.stack([torch.stack([ones, t[:, 0]], -1), torch.stack([t[:, 1], ones], -1)], -2)
    fwd = rot @ sh @ torch.diag_embed(scale.double())
    inv = torch.linalg.inv(fwd)
    shift = -(inv @ translate.double().unsqueeze(-1))
    return torch.cat([inv, shift], -1).float()


def affine(x: torch.Tensor, matrix: torch.Tensor, *, fill_mode: str = "constant", cval: float = 0.0,
           interpolation: str = "bilinear") -> torch.Tensor:
    """Warp each sample with its inverse matrix (N x 2 x 3 or 2 x 3), in one grid_sample.

    ``matrix[n]`` maps an output pixel (centred coordinates, see the module
    docstring) to the input position it reads; :func:`affine_matrix` builds it.
    """
    n, c, h, w = x.shape
    m = matrix.to(device=x.device, dtype=torch.float64).expand(n, 2, 3)
    # Normalised u = pixel / (size / 2):  theta = D^-1 [M | m] diag(D, 1),  D = diag(W/2, H/2).
    d = torch.tensor([w / 2.0, h / 2.0], dtype=torch.float64, device=x.device)
    theta = torch.cat([m[:, :, :2] * d.view(1, 1, 2) / d.view(1, 2, 1), m[:, :, 2:] / d.view(1, 2, 1)], 2)
    grid = F.affine_grid(theta.to(x.dtype), [n, c, h, w], align_corners=False)
    if fill_mode == "wrap":
        size = torch.tensor([w, h], dtype=x.dtype, device=x.device)
        pix = torch.remainder(((grid + 1) * size - 1) / 2, size)          # periodic source pixel in [0, size)
        grid = (2 * (pix + 1) + 1) / (size + 2) - 1                       # same pixel in the 1-pixel padded copy
        x = F.pad(x, (1, 1, 1, 1), mode="circular")
        return F.grid_sample(x, grid, mode=interpolation, padding_mode="border", align_corners=False)
    if fill_mode == "constant":
        if cval == 0.0:
            return F.grid_sample(x, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
        out = F.grid_sample(x - cval, grid, mode=interpolation, padding_mode="zeros", align_corners=False)
        return out + cval
    padding = {"nearest": "border", "reflect": "reflection"}[fill_mode]
    return F.grid_sample(x, grid, mode=interpolation, padding_mode=padding, align_corners=False)


class _Warp(Augmentation):
    """Shared checks and ``apply`` of the ops that reduce to :func:`affine`."""

    def _init_scale(self, scale) -> None:
        self._scale = check_range("scale", scale)
        if self._scale[0] <= 0:
            raise RegularkitError(f"scale must be > 0, got {scale!r}")

    def _init_fill(self, fill_mode: str, cval: float, interpolation: str) -> None:
        self.fill_mode = check_choice("fill_mode", fill_mode, FILL_MODES)
        self.cval = check_number("cval", cval)
        self.interpolation = check_choice("interpolation", interpolation, INTERPOLATIONS)

    def apply(self, x, y, params) -> Batch:
        # Integer images: warped in float32, then rounded and clamped back (base.in_float, torchvision's rule).
        return in_float(x, lambda v: affine(v, params["matrix"], fill_mode=self.fill_mode, cval=self.cval,
                                            interpolation=self.interpolation)), y


def _shear_ranges(shear):
    if isinstance(shear, (tuple, list)) and len(shear) == 4:
        return check_range("shear", shear[:2]), check_range("shear", shear[2:])
    return check_range("shear", shear, symmetric_about=0.0), (0.0, 0.0)


class RandomAffine(_Warp):
    """Random rotation, translation, shear and zoom, one draw per sample, one warp per batch.

    Args:
        degrees: rotation range in degrees, ``d`` meaning ``(-d, d)``.
        translate: maximum shift as a fraction of (width, height); one number for both.
        shear: x-shear angle range in degrees (``s`` -> ``(-s, s)``), or a 4-tuple
            (x_lo, x_hi, y_lo, y_hi) for both axes.
        scale: magnification range ``(lo, hi)``, the same on both axes.
        fill_mode: ``constant`` | ``nearest`` | ``reflect`` | ``wrap`` (module docstring).
        cval: the constant fill value.
        interpolation: ``bilinear`` or ``nearest``.
        seed: rank 0's seed of the op's own generator (see :mod:`regularkit.augment.base`).

    Integer images are warped in float32 and rounded back, as torchvision does.
    """

    def __init__(self, degrees=0.0, translate=0.0, shear=0.0, scale=(1.0, 1.0), *,
                 fill_mode: str = "constant", cval: float = 0.0, interpolation: str = "bilinear",
                 seed: int | None = None):
        super().__init__(seed=seed)
        self.degrees, self.translate, self.shear, self.scale = degrees, translate, shear, scale
        self._deg = check_range("degrees", degrees, symmetric_about=0.0)
        tr = tuple(translate) if isinstance(translate, (tuple, list)) else (translate, translate)
        if len(tr) != 2:
            raise RegularkitError(f"translate must be a number or (fx, fy), got {translate!r}")
        self._tr = tuple(check_number("translate", t) for t in tr)
        if min(self._tr) < 0:
            raise RegularkitError(f"translate fractions must be >= 0, got {translate!r}")
        self._shear = _shear_ranges(shear)
        self._init_scale(scale)
        self._init_fill(fill_mode, cval, interpolation)

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        angle = uniform(n, *self._deg, x, generator)
        limit = torch.tensor([self._tr[0] * w, self._tr[1] * h], device=x.device)
        translate = uniform((n, 2), -limit, limit, x, generator)
        shear = torch.stack([uniform(n, *self._shear[0], x, generator),
                             uniform(n, *self._shear[1], x, generator)], 1)
        s = uniform(n, *self._scale, x, generator)
        return {"matrix": affine_matrix(angle, translate, shear, torch.stack([s, s], 1))}


class RandomScaleCrop(_Warp):
    """The ResNet scale augmentation, scaled down: resize by ``s``, crop back to the input size.

    He et al. (2016) pick L in [256, 480], resize the short side to L and take
    a random 224x224 patch (deck 004).  Here ``s ~ U(scale)`` per sample, the
    image is magnified by ``s`` and a window of the input's size is taken at a
    uniform position inside it; both steps are one affine warp (scale ``s``,
    shift uniform in ``+-(s - 1) * size / 2``), so no per-sample resize loop.
    With ``s < 1`` the shrunken image lies at a uniform position inside the
    window and the rest is filled per ``fill_mode``.  The default ``nearest``
    matches a real resize at the borders: the outermost half pixel of a
    magnified image repeats the edge, as ``F.interpolate`` does.
    """

    def __init__(self, scale=(1.0, 1.25), *, fill_mode: str = "nearest", cval: float = 0.0,
                 interpolation: str = "bilinear", seed: int | None = None):
        super().__init__(seed=seed)
        self.scale = scale
        self._init_scale(scale)
        self._init_fill(fill_mode, cval, interpolation)

    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        s = uniform(n, *self._scale, x, generator)
        half = torch.stack([(s - 1) * w / 2, (s - 1) * h / 2], 1).abs()
        translate = uniform((n, 2), -half, half, x, generator)
        zeros = torch.zeros(n, device=x.device)
        return {"matrix": affine_matrix(zeros, translate, torch.zeros(n, 2, device=x.device),
                                        torch.stack([s, s], 1)), "scale": s}


def identity_matrix(n: int, device=None) -> torch.Tensor:
    """N identity warps, for tests and for samples an op leaves alone."""
    return torch.eye(2, 3, device=device).expand(n, 2, 3).clone()


__all__ = ["affine", "affine_matrix", "identity_matrix", "RandomAffine", "RandomScaleCrop", "FILL_MODES"]
