"""Alpha dropout: dropout that keeps the mean and variance of self-normalizing (SELU) networks.

Klambauer, Unterthiner, Mayr & Hochreiter (2017), "Self-normalizing neural
networks", NeurIPS.  SELU units keep activations near mean 0 and variance 1;
ordinary dropout breaks that (it sets units to 0, which is not SELU's
saturation value, and the 1/keep rescaling changes the variance).  Alpha
dropout sets a dropped unit to SELU's negative saturation value
``alpha' = -lambda * alpha`` and restores mean and variance with an affine map
(their Eq. 9 and the paragraph after it), with ``q = 1 - p`` the keep probability::

    train:  a * (x * d + alpha' * (1 - d)) + b,    d ~ Bernoulli(q)
            a = (q + alpha'^2 q (1 - q))^(-1/2),    b = -a (1 - q) alpha'
    test:   x

so that an input of mean 0 and variance 1 keeps mean 0 and variance 1
(``E[x d + alpha'(1 - d)] = (1 - q) alpha'``, variance ``q + alpha'^2 q (1 - q)``).
``alpha = 1.6732632423543772`` and ``lambda = 1.0507009873554805`` are SELU's
constants (``torch.nn.SELU``), ``alpha' = -1.7580993408473766``.

It is Keras' ``AlphaDropout(rate, noise_shape)`` and ``torch.nn.AlphaDropout(p)``,
term for term (torch writes ``a = 1 / sqrt((alpha'^2 p + 1)(1 - p))``, the same
number; ``torch.nn.FeatureAlphaDropout`` is ``noise_shape=(None, None, 1, 1)``).
``p`` is the DROP probability in ``[0, 1)``: ``a`` has no finite value at ``p = 1``.
The default ``p = 0.1`` is Klambauer et al.'s advice (rates of 0.05 or 0.1 worked
best with SELU); torch's ``nn.AlphaDropout`` defaults to 0.5, Keras has no default.
Use it with SELU activations and LeCun-normal initialisation; after ReLU it
keeps nothing in particular.
"""
from __future__ import annotations

import torch

from regularkit._util.checks import check_rate
from regularkit._util.rng import keep_mask
from regularkit.noise.dropout import (
    NoiseShape,
    check_noise_shape,
    layer_generator,
    resolve_noise_shape,
    traceable_generator,
)
from regularkit.noise.stochastic import Stochastic, check_float_tensor

#: SELU's constants (Klambauer et al. 2017; ``torch.nn.SELU``)
SELU_ALPHA = 1.6732632423543772
SELU_LAMBDA = 1.0507009873554805
#: the value a dropped unit takes: SELU's limit for x -> -inf
ALPHA_PRIME = -SELU_LAMBDA * SELU_ALPHA


def alpha_dropout_constants(p: float) -> tuple[float, float]:
    """``(a, b)`` of the affine correction for drop probability ``p`` (module docstring)."""
    q = 1.0 - check_rate("p", p)
    a = (q + ALPHA_PRIME ** 2 * q * (1.0 - q)) ** -0.5
    return a, -a * (1.0 - q) * ALPHA_PRIME


def apply_alpha_dropout(x: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """``a * where(mask, x, alpha') + b`` for a given keep ``mask`` (broadcast against ``x``)."""
    a, b = alpha_dropout_constants(p)
    kept = torch.where(mask, x, torch.full((), ALPHA_PRIME, dtype=x.dtype, device=x.device))
    return kept * a + b


def alpha_dropout(x: torch.Tensor, p: float, training: bool = True, *, noise_shape: NoiseShape = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Alpha dropout of ``x`` with drop probability ``p`` (module docstring); eval returns ``x``.

    Args:
        x: floating tensor of any shape.
        p: drop probability in ``[0, 1)``.
        training: train mode draws a mask; eval is the identity.
        noise_shape: Keras' mask shape (``1`` shares the mask along a dimension).
        generator: source of the mask; ``None`` uses torch's global RNG.
    """
    p = check_rate("p", p)
    check_float_tensor("x", x)
    mask_shape = resolve_noise_shape(x.shape, noise_shape)
    if not training or p == 0:
        return x
    mask = keep_mask(mask_shape, 1.0 - p, device=x.device, generator=traceable_generator(generator))
    return apply_alpha_dropout(x, mask, p)


class AlphaDropout(Stochastic):
    """Module form of :func:`alpha_dropout` (Keras' ``AlphaDropout``, torch's ``nn.AlphaDropout``).

    >>> layer = AlphaDropout(0.1, seed=0)
    """

    def __init__(self, p: float = 0.1, *, noise_shape: NoiseShape = None, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        self.p = check_rate("p", p)
        self.noise_shape = check_noise_shape(noise_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = layer_generator(self, x.device) if self.training and self.p > 0 else None
        return alpha_dropout(x, self.p, self.training, noise_shape=self.noise_shape, generator=generator)

    def extra_repr(self) -> str:
        return f"p={self.p}" + ("" if self.noise_shape is None else f", noise_shape={self.noise_shape}")

