"""Stochastic depth / drop-path: drop a whole residual branch, sample by sample.

Huang, Sun, Liu, Sedra & Weinberger (2016), "Deep networks with stochastic
depth", ECCV.  A residual block computes ``H_l = ReLU(b_l * f_l(H_{l-1}) + id(H_{l-1}))``
with ``b_l ~ Bernoulli(keep_l)`` drawn per sample; at test time Huang et al.
use ``H_l = ReLU(keep_l * f_l(H_{l-1}) + id(H_{l-1}))`` (their Eq. 5), the
same expectation argument as dropout (deck 004, "Stochastic depth").

This module applies the mask to the branch output ``f_l(...)`` only; the
caller adds the identity, which therefore always survives, in train and eval.
Three train/test pairs, all with one Bernoulli draw ``b`` per sample:

* default (``scale_by_keep=True``, inverted; timm's default): train ``b * f / keep``,
  test ``f``; ``E[train] = test``.
* ``classic=True`` (Huang et al.'s Eq. 5): train ``b * f``, test ``keep * f``;
  ``E[train] = test``.
* ``scale_by_keep=False``: train ``b * f``, test ``f``; ``E[train] = keep * f != test``.

The last is timm's ``drop_path(x, drop_prob, training, scale_by_keep=False)``
(``timm/layers/drop.py``), restated exactly: the kept paths are not divided by
``keep`` and eval returns ``f`` unchanged, so the test-time branch is ``1 / keep``
times larger than the training average.  It is here to reproduce timm models;
``classic=True`` is the paper's consistent unscaled rule.

``p = 1`` (always drop) returns zeros in training, as timm does (its
``bernoulli_(0)`` mask, not divided since ``keep = 0``); eval follows the
rules above: ``f``, or ``keep * f`` = zeros with ``classic=True``.  A dropped branch is
exactly 0 even where ``f`` is inf or nan (timm multiplies, giving nan there).

Rates per block (:func:`linear_drop_path_rates`): Huang et al.'s linear decay
rule ``p_l = l / L * p_L`` for ``l = 1..L`` (default), or timm's
``torch.linspace(0, drop_path_rate, depth)``, which starts at 0.
"""
from __future__ import annotations

import torch

from regularkit._util.checks import check_bool, check_choice, check_int, check_probability
from regularkit._util.rng import keep_mask
from regularkit.errors import RegularkitError
from regularkit.noise.dropout import drop_all, layer_generator, traceable_generator
from regularkit.noise.stochastic import Stochastic, check_float_tensor

RATE_RULES = ("paper", "timm")


def resolve_scale_by_keep(scale_by_keep: bool | None, classic: bool) -> bool:
    """``None`` means "divide by keep unless ``classic``"; ``classic`` with ``scale_by_keep=True`` contradicts."""
    if scale_by_keep is not None:
        check_bool("scale_by_keep", scale_by_keep)
    check_bool("classic", classic)
    if scale_by_keep is None:
        return not classic
    if classic and scale_by_keep:
        raise RegularkitError("classic=True trains unscaled (Huang et al.'s rule), so scale_by_keep must be "
                              f"False or None, got scale_by_keep={scale_by_keep!r}")
    return check_bool("scale_by_keep", scale_by_keep)


def drop_path(x: torch.Tensor, p: float, training: bool = True, *, scale_by_keep: bool | None = None,
              classic: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero whole samples (first dimension) of a residual branch output ``x`` with probability ``p``.

    One Bernoulli draw per sample, broadcast over every other dimension, so a
    dropped sample's branch is exactly zero and its block reduces to the identity.

    Args:
        x: the branch output, batch first.
        p: drop probability in ``[0, 1]``; ``p = 1`` gives zeros in training.
        training: train mode draws the mask; eval is the deterministic rule of the module docstring.
        scale_by_keep: timm's flag: divide the kept paths by ``keep`` in training (``None``:
            ``True``, or ``False`` when ``classic``).  ``False`` without ``classic`` is timm's
            unscaled variant: eval is the identity and ``E[train] != eval``.
        classic: Huang et al.'s Eq. 5: train ``b * x``, test ``keep * x``.
        generator: source of the mask; ``None`` uses torch's global RNG.
    """
    p = check_probability("p", p)
    check_float_tensor("x", x)
    scale_by_keep = resolve_scale_by_keep(scale_by_keep, classic)
    if x.ndim == 0:
        raise RegularkitError(f"drop_path needs a batch dimension, got a 0-d tensor {x}")
    keep = 1.0 - p
    if not training:
        if not classic or p == 0:
            return x
        return drop_all(x) if p == 1 else x * keep
    if p == 0:
        return x
    if p == 1:
        return drop_all(x)  # no draw: every path is dropped
    mask = keep_mask_per_sample(x, keep, traceable_generator(generator))
    kept = x / keep if scale_by_keep else x
    return torch.where(mask, kept, torch.zeros((), dtype=x.dtype, device=x.device))


def keep_mask_per_sample(x: torch.Tensor, keep: float, generator: torch.Generator | None) -> torch.Tensor:
    """One Bernoulli(``keep``) entry per sample, shaped ``N x 1 x ... x 1`` to broadcast against ``x``."""
    return keep_mask((x.shape[0],) + (1,) * (x.ndim - 1), keep, device=x.device, generator=generator)


def linear_drop_path_rates(max_rate: float, depth: int, *, rule: str = "paper") -> list[float]:
    """The drop probability of each of ``depth`` blocks, rising linearly to ``max_rate``.

    * ``rule="paper"`` (default): Huang et al.'s linear decay rule, block ``l = 1..L``
      gets ``p_l = l / L * p_L``, so the first block already drops a little
      (``p_L / L``).  It is the default because it is the published rule (the
      one the paper's results were measured with); ``build_resnet`` uses it.
    * ``rule="timm"``: ``torch.linspace(0, drop_path_rate, depth)`` as timm's models
      build it (e.g. ``timm/models/vision_transformer.py``): ``l / (L - 1) * p_L`` for
      ``l = 0..L-1``, so the first block never drops (``depth = 1``: ``[0.0]``).
      Computed in float64; timm's float32 ``linspace`` differs by its rounding (< 1e-7).

    Both end at ``max_rate`` (``depth >= 2`` for timm's).

    >>> linear_drop_path_rates(0.5, 5)
    [0.1, 0.2, 0.3, 0.4, 0.5]
    >>> linear_drop_path_rates(0.5, 3, rule="timm")
    [0.0, 0.25, 0.5]
    """
    max_rate = check_probability("max_rate", max_rate)
    depth = check_int("depth", depth, minimum=1)
    rule = check_choice("rule", rule, RATE_RULES)
    if rule == "timm":
        return torch.linspace(0.0, max_rate, depth, dtype=torch.float64).tolist()
    return [max_rate * layer / depth for layer in range(1, depth + 1)]


class DropPath(Stochastic):
    """Module form of :func:`drop_path`: wrap the residual branch's output, not the sum.

    >>> out = x + DropPath(0.1, seed=0)(branch(x))   # doctest: +SKIP
    """

    def __init__(self, p: float = 0.0, *, scale_by_keep: bool | None = None, classic: bool = False,
                 seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        self.p = check_probability("p", p)
        self.classic = check_bool("classic", classic)
        self.scale_by_keep = resolve_scale_by_keep(scale_by_keep, self.classic)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = layer_generator(self, x.device) if self.training else None
        return drop_path(x, self.p, self.training, scale_by_keep=self.scale_by_keep, classic=self.classic,
                         generator=generator)

    def extra_repr(self) -> str:
        if self.classic:
            return f"p={self.p}, classic=True"
        return f"p={self.p}" + ("" if self.scale_by_keep else ", scale_by_keep=False")
