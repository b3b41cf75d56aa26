"""Gaussian noise: additive on inputs or hidden units, and multiplicative (Gaussian dropout).

Additive noise (deck 003, "Data Augmentation": "adding Gaussian noise to the
input or hidden layers prefers robust minima"; Bishop 1995, "Training with
noise is equivalent to Tikhonov regularization"):

    train: h + e,  e ~ N(0, std^2);    test: h.

Multiplicative Gaussian dropout (Srivastava et al. 2014, JMLR, Section 10):
replace the Bernoulli mask ``d / keep`` of inverted dropout by a Gaussian
with the same mean and variance,

    train: h * r,  r ~ N(1, p / (1 - p));    test: h,

where ``p`` is the DROP rate (Keras' ``GaussianDropout(rate)``): Var(d / keep)
for ``d ~ Bernoulli(keep)`` is ``(1 - keep) / keep = p / (1 - p)``.

Both are train-only and unbiased (``E[train output] = test output``), so test
time is the identity.
"""
from __future__ import annotations

import math

import torch

from regularkit._util.checks import check_non_negative, check_rate
from regularkit._util.rng import randn
from regularkit.noise.dropout import layer_generator, traceable_generator
from regularkit.noise.stochastic import Stochastic, check_float_tensor


def gaussian_noise(x: torch.Tensor, std: float, training: bool = True, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """``x + N(0, std^2)`` noise in training, ``x`` in eval."""
    std = check_non_negative("std", std)
    check_float_tensor("x", x)
    if not training or std == 0:
        return x
    noise = randn(x.shape, device=x.device, generator=traceable_generator(generator))
    return x + (std * noise).to(x.dtype)


def gaussian_dropout(x: torch.Tensor, p: float, training: bool = True, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``x * N(1, p / (1 - p))`` noise in training, ``x`` in eval (``p`` is the drop rate)."""
    p = check_rate("p", p)
    check_float_tensor("x", x)
    if not training or p == 0:
        return x
    std = math.sqrt(p / (1.0 - p))
    noise = randn(x.shape, device=x.device, generator=traceable_generator(generator))
    return x * (1.0 + std * noise).to(x.dtype)


class GaussianNoise(Stochastic):
    """Module form of :func:`gaussian_noise` (Keras' ``GaussianNoise(stddev)``)."""

    def __init__(self, std: float, *, seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        self.std = check_non_negative("std", std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = layer_generator(self, x.device) if self.training else None
        return gaussian_noise(x, self.std, self.training, generator=generator)

    def extra_repr(self) -> str:
        return f"std={self.std}"


class GaussianDropout(Stochastic):
    """Module form of :func:`gaussian_dropout` (Keras' ``GaussianDropout(rate)``)."""

    def __init__(self, p: float, *, seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        self.p = check_rate("p", p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = layer_generator(self, x.device) if self.training else None
        return gaussian_dropout(x, self.p, self.training, generator=generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
