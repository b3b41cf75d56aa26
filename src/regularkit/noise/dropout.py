"""Dropout, inverted and classic, with Keras' ``noise_shape``.

Srivastava, Hinton, Krizhevsky, Sutskever & Salakhutdinov (2014), "Dropout: a
simple way to prevent neural networks from overfitting", JMLR 15.

Each unit is kept with probability ``keep = 1 - p`` (``p`` is the DROP
probability, as in Keras' ``rate`` and ``torch.nn.Dropout``; the lecture's
cs231n listings and Srivastava et al. call the KEEP probability ``p``):

* inverted (the default; deck 004, "Inverted dropout"):
  train ``a * d / keep`` with ``d ~ Bernoulli(keep)``, test ``a``;
* classic (deck 004, "Vanilla Dropout"; Srivastava et al. Fig. 2):
  train ``a * d``, test ``a * keep``.

Both give ``E_d[train output] = test output`` unit by unit, the slide's
``E[a] = keep * (w1 x + w2 y)``; they differ only in where the scaling is paid.

``p = 1`` drops everything: training returns zeros (exactly, even where ``x``
is inf or nan, and with zero gradient), as ``torch.nn.functional.dropout(x, 1.0)``
does, and nothing is drawn (torch draws nothing either).  Test time stays the
rule above: the identity (inverted) or ``x * keep`` = zeros (classic, ``keep = 0``).
torch returns ``x * 0``, which is nan where ``x`` is inf; we keep our rule that
a dropped unit is exactly 0.

``noise_shape`` is Keras': a tuple with one entry per dimension of ``x``;
``1`` shares the mask along that dimension, ``None`` (or the size itself)
draws one mask entry per index.  For N x C x H x W maps, ``(None, None, 1, 1)``
drops whole channels (Tompson et al. 2015, "SpatialDropout"); for N x T x F
sequences, ``(None, 1, None)`` keeps one mask for every timestep.
"""
from __future__ import annotations

import operator
from typing import Sequence

import torch

from regularkit._util.checks import check_bool, check_probability
from regularkit._util.rng import check_generator, keep_mask
from regularkit.errors import RegularkitError
from regularkit.noise.stochastic import (
    Stochastic,
    break_before_draw,
    check_float_tensor,
    generator_not_traceable,
)

NoiseShape = Sequence[int | None] | None

#: Why a seeded noise layer cannot be one torch.compile graph (the message of the graph break we insert).
GENERATOR_NOT_TRACEABLE = generator_not_traceable("noise", "layer")


def traceable_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """``check_generator``; under ``torch.compile``, break the graph before a draw from an explicit generator.

    torch 2.13's dynamo cannot put a ``torch.Generator`` argument in a graph (it breaks at
    the draw, and ``fullgraph=True`` raises); breaking here first makes the message say
    why and what to do (:data:`GENERATOR_NOT_TRACEABLE`).  ``None`` (the global RNG) traces.
    """
    generator = check_generator(generator)
    if generator is not None:
        break_before_draw(GENERATOR_NOT_TRACEABLE)
    return generator


def layer_generator(layer: Stochastic, device: torch.device) -> torch.Generator | None:
    """The generator ``layer`` draws from; a seeded layer's first call creates it, which dynamo cannot trace."""
    if layer.seed is not None and layer.generator is None and layer._override is None:
        break_before_draw(GENERATOR_NOT_TRACEABLE)
    return layer._generator_for(device)


def drop_all(x: torch.Tensor) -> torch.Tensor:
    """Exact zeros shaped like ``x`` that stay in the autograd graph (zero gradient), even for inf / nan in ``x``."""
    return torch.where(torch.zeros((), dtype=torch.bool, device=x.device), x, torch.zeros((), dtype=x.dtype,
                                                                                          device=x.device))


def resolve_noise_shape(shape: Sequence[int], noise_shape: NoiseShape) -> tuple[int, ...]:
    """The mask's shape for data of ``shape``: ``None`` entries take the data's size.

    >>> resolve_noise_shape((8, 3, 5, 5), (None, None, 1, 1))
    (8, 3, 1, 1)
    """
    shape = tuple(int(s) for s in shape)
    noise_shape = check_noise_shape(noise_shape)
    if noise_shape is None:
        return shape
    if len(noise_shape) != len(shape):
        raise RegularkitError(
            f"noise_shape must have one entry per dimension of x ({len(shape)} for shape {shape}), "
            f"got {noise_shape}")
    resolved = []
    for i, (size, entry) in enumerate(zip(shape, noise_shape)):
        if entry is None or entry == size:
            resolved.append(size)
        elif entry == 1:
            resolved.append(1)
        else:
            raise RegularkitError(f"noise_shape[{i}] must be None, 1 or {size} (x's size), got {entry}")
    return tuple(resolved)


def check_noise_shape(noise_shape: NoiseShape) -> tuple[int | None, ...] | None:
    """Entries must be ``None`` or positive integers (the rank is checked against ``x`` later)."""
    if noise_shape is None:
        return None
    if isinstance(noise_shape, (str, bytes)) or not hasattr(noise_shape, "__iter__"):
        raise RegularkitError(f"noise_shape must be a tuple of None or positive ints, got {noise_shape!r}")
    entries = tuple(noise_shape)
    resolved: list[int | None] = []
    for entry in entries:
        if entry is None:
            resolved.append(None)
            continue
        try:
            value = operator.index(entry)  # ints, numpy ints; not floats
        except TypeError:
            value = 0
        if isinstance(entry, bool) or value < 1:
            raise RegularkitError(f"noise_shape entries must be None or positive ints, got {entries}")
        resolved.append(value)
    return tuple(resolved)


def dropout_mask(shape: Sequence[int], p: float, *, noise_shape: NoiseShape = None,
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Sample the keep mask (``True`` = kept) that :func:`dropout` would apply to data of ``shape``.

    The mask has the resolved ``noise_shape`` and broadcasts against the data.
    Sampling and applying are separate so tests and teaching code can look at
    the mask itself; ``dropout`` with a generator in the same state uses this mask.
    """
    p = check_probability("p", p)
    mask_shape = resolve_noise_shape(shape, noise_shape)
    return keep_mask(mask_shape, 1.0 - p, device=torch.device(device), generator=check_generator(generator))


def apply_dropout(x: torch.Tensor, mask: torch.Tensor, p: float, *, classic: bool = False) -> torch.Tensor:
    """Training-time dropout with a given keep ``mask``: ``x * d / keep`` (inverted) or ``x * d`` (classic).

    ``p = 1`` gives zeros whatever the mask (``1 / keep`` has no finite value).
    """
    keep = 1.0 - check_probability("p", p)
    if keep == 0:
        return drop_all(x)
    kept = x if classic else x / keep
    # where(), not a multiply: a dropped unit is exactly 0 even when x holds inf or nan,
    # and the gradient of a dropped unit is exactly 0 as the lecture's backprop rule says.
    return torch.where(mask, kept, torch.zeros((), dtype=x.dtype, device=x.device))


def dropout(x: torch.Tensor, p: float, training: bool = True, *, noise_shape: NoiseShape = None,
            classic: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Drop each unit of ``x`` with probability ``p`` (the DROP probability).

    Args:
        x: floating tensor of any shape.
        p: drop probability in ``[0, 1]``; keep probability is ``1 - p``.  ``p = 1``: zeros in training.
        training: train mode draws a mask; test mode is the deterministic rule.
        noise_shape: Keras' mask shape, ``1`` where the mask is shared, ``None`` for x's size.
        classic: ``False``: inverted dropout, train ``x * d / keep``, test ``x``.
            ``True``: the lecture's vanilla dropout, train ``x * d``, test ``x * keep``.
        generator: source of the mask; ``None`` uses torch's global RNG.
    """
    p = check_probability("p", p)
    check_float_tensor("x", x)
    mask_shape = resolve_noise_shape(x.shape, noise_shape)  # validate in both modes: fail early, not at train time
    if not training:
        # Test time: the classic variant pays the expectation here (weights scaled by keep; keep = 0: zeros).
        if classic and p == 1:
            return drop_all(x)
        return x * (1.0 - p) if classic and p > 0 else x
    if p == 0:
        return x
    if p == 1:
        return drop_all(x)  # as torch: no draw
    mask = keep_mask(mask_shape, 1.0 - p, device=x.device, generator=traceable_generator(generator))
    return apply_dropout(x, mask, p, classic=classic)


class Dropout(Stochastic):
    """Module form of :func:`dropout`; train/eval follow ``module.train()`` / ``module.eval()``.

    >>> layer = Dropout(0.5, noise_shape=(None, None, 1, 1), seed=0)   # drop whole channels
    """

    def __init__(self, p: float = 0.5, *, noise_shape: NoiseShape = None, classic: bool = False,
                 seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        self.p = check_probability("p", p)
        self.noise_shape = check_noise_shape(noise_shape)
        self.classic = check_bool("classic", classic)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = layer_generator(self, x.device) if self.training else None
        return dropout(x, self.p, self.training, noise_shape=self.noise_shape, classic=self.classic,
                       generator=generator)

    def extra_repr(self) -> str:
        parts = [f"p={self.p}"]
        if self.noise_shape is not None:
            parts.append(f"noise_shape={self.noise_shape}")
        if self.classic:
            parts.append("classic=True")
        return ", ".join(parts)
