"""Gaussian blur with a sigma drawn per sample (torchvision v2's ``GaussianBlur``, batched).

The kernel is torchvision's: ``g_i = exp(-t_i^2 / (2 sigma^2)) / sum_j exp(-t_j^2 / (2 sigma^2))``,
``t_i = i - (k - 1) / 2`` for ``i = 0..k-1``, separable (the 2-D kernel is the
outer product of the x and y kernels), applied after reflect padding of
``k // 2`` (mirror about the edge pixel, torch's ``"reflect"``; here also
for paddings wider than the image, which torch refuses).  ``sigma ~ U(lo, hi)``
per sample, the same on both axes (torchvision draws one per call).

Batched: one multiply-add per tap over the whole batch, with a weight per
sample, once along x and once along y.  Integer images are blurred in
float32 and rounded back (torchvision's rule).
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

from regularkit._util.checks import check_int
from regularkit.augment.base import Augmentation, Batch, Params, check_range, in_float, uniform
from regularkit.augment.geometric import pad
from regularkit.errors import RegularkitError


def gaussian_kernel(kernel_size: int, sigma: torch.Tensor) -> torch.Tensor:
    """N x k normalised 1-D Gaussian kernels, one per sigma (N,)."""
    t = torch.arange(kernel_size, dtype=torch.float64, device=sigma.device) - (kernel_size - 1) / 2
    g = torch.exp(-0.5 * (t.view(1, -1) / sigma.double().view(-1, 1)) ** 2)
    return g / g.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, kernel_size: Tuple[int, int], sigma: torch.Tensor) -> torch.Tensor:
    """Blur each sample with its own ``sigma`` (N,); ``kernel_size`` = (kx, ky), odd, reflect padding."""
    n, c, h, w = x.shape
    kx, ky = kernel_size
    px, py = kx // 2, ky // 2
    if px < w and py < h:  # torch's reflect padding (fast); the folding pad covers wider paddings
        padded = F.pad(x, (px, px, py, py), mode="reflect")
    else:
        padded = pad(x, px, py, px, py, padding_mode="mirror")
    gx = gaussian_kernel(kx, sigma).to(device=x.device, dtype=x.dtype)
    gy = gaussian_kernel(ky, sigma).to(device=x.device, dtype=x.dtype)
    # one multiply-add per tap with per-sample weights (a grouped conv2d with N x C groups is slower on CPU)
    rows = gx[:, 0].view(n, 1, 1, 1) * padded[..., 0:w]
    for i in range(1, kx):
        rows.addcmul_(padded[..., i:i + w], gx[:, i].view(n, 1, 1, 1))
    out = gy[:, 0].view(n, 1, 1, 1) * rows[..., 0:h, :]
    for i in range(1, ky):
        out.addcmul_(rows[..., i:i + h, :], gy[:, i].view(n, 1, 1, 1))
    return out


def _kernel_size(value) -> Tuple[int, int]:
    dims = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(dims) != 2:
        raise RegularkitError(f"kernel_size must be an int or (kx, ky), got {value!r}")
    for k in dims:
        if check_int("kernel_size", k, minimum=1) % 2 == 0:
            raise RegularkitError(f"kernel_size must be odd, got {value!r}")
    return dims  # type: ignore[return-value]


class GaussianBlur(Augmentation):
    """Blur with ``sigma ~ U(sigma)`` per sample (one number: that sigma for every sample).

    Args:
        kernel_size: odd int or (kx, ky), as torchvision's.
        sigma: (low, high) with low > 0 (torchvision's default (0.1, 2.0)), or one number.
        seed: rank 0's seed of the op's own generator.
    """

    def __init__(self, kernel_size: int | Sequence[int] = 3, sigma=(0.1, 2.0), *, seed: int | None = None):
        super().__init__(seed=seed)
        self.kernel_size, self.sigma = kernel_size, sigma
        self._k = _kernel_size(kernel_size)
        lo, hi = check_range("sigma", sigma if isinstance(sigma, (tuple, list)) else (sigma, sigma))
        if lo <= 0:
            raise RegularkitError(f"sigma must be > 0, got {sigma!r}")
        self._sigma = (lo, hi)

    def make_params(self, x, generator=None) -> Params:
        return {"sigma": uniform(x.shape[0], *self._sigma, x, generator)}

    def apply(self, x, y, params) -> Batch:
        return in_float(x, lambda v: gaussian_blur(v, self._k, params["sigma"])), y


__all__ = ["GaussianBlur", "gaussian_blur", "gaussian_kernel"]
