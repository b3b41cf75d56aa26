"""Stochastic depth / drop-path: drop a whole residual branch, sample by sample.

Huang, Sun, Liu, Sedra & Weinberger (2016), "Deep networks with stochastic
depth", ECCV.  A residual block computes ``H_l = ReLU(b_l * f_l(H_{l-1}) + id(H_{l-1}))``
with ``b_l ~ Bernoulli(keep_l)`` drawn per sample; at test time Huang et al.
use ``H_l = ReLU(keep_l * f_l(H_{l-1}) + id(H_{l-1}))`` (their Eq. 5), the
same expectation argument as dropout (deck 004, "Stochastic depth").

This module applies the mask to the branch output ``f_l(...)`` only; the
caller adds the identity, which therefore always survives, in train and eval.

* ``scale_by_keep=True`` (default, timm's convention): train ``b * f / keep``,
  test ``f``.
* ``scale_by_keep=False``: train ``b * f``, test ``keep * f`` -- Huang et al.'s
  rule.  (timm returns ``f`` unscaled at test here, which breaks the
  expectation match; we keep the paper's rule.)

The linear decay rule (Huang et al. Eq. 4): block ``l`` of ``L`` drops with
probability ``l / L * max_rate``, so early blocks, whose features every later
block uses, are almost always kept.
"""
from __future__ import annotations

import torch

from regularkit._util.checks import check_int, check_rate
from regularkit._util.rng import check_generator, keep_mask
from regularkit.errors import RegularkitError
from regularkit.noise.stochastic import Stochastic, check_float_tensor


def drop_path(x: torch.Tensor, p: float, training: bool = True, *, scale_by_keep: bool = True,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero whole samples (first dimension) of a residual branch output ``x`` with probability ``p``.

    One Bernoulli draw per sample, broadcast over every other dimension, so a
    dropped sample's branch is exactly zero and its block reduces to the identity.
    """
    p = check_rate("p", p)
    check_float_tensor("x", x)
    if x.ndim == 0:
        raise RegularkitError(f"drop_path needs a batch dimension, got a 0-d tensor {x}")
    keep = 1.0 - p
    if not training:
        return x if scale_by_keep or p == 0 else x * keep
    if p == 0:
        return x
    mask = keep_mask((x.shape[0],) + (1,) * (x.ndim - 1), keep, device=x.device,
                     generator=check_generator(generator))
    kept = x / keep if scale_by_keep else x
    return torch.where(mask, kept, torch.zeros((), dtype=x.dtype, device=x.device))


def linear_drop_path_rates(max_rate: float, depth: int) -> list[float]:
    """Huang et al.'s linear decay: block ``l = 1..L`` gets ``l / L * max_rate``.

    >>> linear_drop_path_rates(0.5, 5)
    [0.1, 0.2, 0.3, 0.4, 0.5]
    """
    max_rate = check_rate("max_rate", max_rate)
    depth = check_int("depth", depth, minimum=1)
    return [max_rate * layer / depth for layer in range(1, depth + 1)]


class DropPath(Stochastic):
    """Module form of :func:`drop_path`: wrap the residual branch's output, not the sum.

    >>> out = x + DropPath(0.1, seed=0)(branch(x))   # doctest: +SKIP
    """

    def __init__(self, p: float = 0.0, *, scale_by_keep: bool = True, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        self.p = check_rate("p", p)
        self.scale_by_keep = bool(scale_by_keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = self._generator_for(x.device) if self.training else None
        return drop_path(x, self.p, self.training, scale_by_keep=self.scale_by_keep, generator=generator)

    def extra_repr(self) -> str:
        return f"p={self.p}" + ("" if self.scale_by_keep else ", scale_by_keep=False")
