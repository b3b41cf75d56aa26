"""Additive Gaussian input noise as a batch augmentation.

Deck 003, "Data Augmentation": "adding Gaussian noise to the *input* or
*hidden layers* prefers *robust* minima" (Goodfellow et al. 2016, §7.5;
Bishop 1995 shows small input noise acts like a Tikhonov penalty).  This op
perturbs inputs once per batch, before the model; the noise *layers* inside a
network live in :mod:`regularkit.noise`.

``x~ = x + sigma * eps``, ``eps ~ N(0, 1)`` i.i.d. per element; ``sigma`` is
fixed or drawn per sample from a range, and ``p`` is the per-sample
probability of adding noise at all.  Any batch N x ... : vectors N x D,
sequences N x C x L, images N x C x H x W (dim 0 is the batch).  The noise
tensor is drawn in ``make_params`` (float32, whatever the data's dtype) so
``apply`` is deterministic; integer data get the noise in float32, rounded and
clamped back (``std`` is then in their units, e.g. 0..255).  For speed on an
accelerator pass a generator on that device: a CPU generator draws the noise
on the CPU and copies it over.
"""
from __future__ import annotations

from regularkit._util import rng
from regularkit._util.checks import check_probability
from regularkit.augment.base import (
    Augmentation,
    Batch,
    Params,
    check_range,
    in_float,
    sample_view,
    uniform,
)
from regularkit.errors import RegularkitError


class RandomGaussianNoise(Augmentation):
    """Add N(0, std^2) noise per element to a batch N x ... (in a network: :class:`regularkit.noise.GaussianNoise`).

    Args:
        std: the noise standard deviation, or a range (lo, hi) drawn per sample.
        p: per-sample probability of adding noise.
        clip: ``None`` or (lo, hi) to clamp the result (e.g. (0, 1) for raw images).
        seed: rank 0's seed of the op's own generator (see :mod:`regularkit.augment.base`).
    """

    images_only = False

    def __init__(self, std=0.1, *, p: float = 1.0, clip=None, seed: int | None = None):
        super().__init__(seed=seed)
        self.std = std
        self._std = check_range("std", std) if isinstance(std, (tuple, list)) else check_range(
            "std", (std, std))
        if self._std[0] < 0:
            raise RegularkitError(f"std must be >= 0, got {std!r}")
        self.p = check_probability("p", p)
        if clip is not None and not (isinstance(clip, (tuple, list)) and len(clip) == 2):
            raise RegularkitError(f"clip must be None or a pair (low, high), got {clip!r}")
        self.clip = clip

    def make_params(self, x, generator=None) -> Params:
        n = x.shape[0]
        on = rng.rand(n, device=x.device, generator=generator) < self.p
        sigma = uniform(n, *self._std, x, generator) * on
        noise = rng.randn(x.shape, device=x.device, generator=generator)
        return {"noise": noise * sample_view(sigma, noise)}

    def apply(self, x, y, params) -> Batch:
        return in_float(x, self._add(params["noise"])), y

    def _add(self, noise):
        def add(x):
            out = x + noise.to(x.dtype)
            return out if self.clip is None else out.clamp(self.clip[0], self.clip[1])
        return add
