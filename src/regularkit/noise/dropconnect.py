"""DropConnect: drop weights instead of units.

Wan, Zeiler, Zhang, LeCun & Fergus (2013), "Regularization of neural networks
using DropConnect", ICML.  A layer ``r = a(W v)`` is trained as
``r = a((M * W) v)`` with every entry of ``M`` drawn from Bernoulli(keep)
(deck 004 lists it beside dropout under "Training: add random noise, testing:
marginalize over the noise").

Two mask granularities:

* per batch (default): one weight mask per forward pass, shared by the whole
  mini-batch -- cheap, and what most implementations do;
* per sample (``per_sample=True``): a different mask for every example, as in
  Wan et al.  For Linear this is a batched matmul ``y_n = (M_n * W) x_n``
  (``einsum``); for Conv2d a grouped convolution with ``N * groups`` groups.
  Memory is ``N x weight.numel()``, inherent to the method.

Inference.  We use the simple rule, as for dropout: the expected weights.
Inverted (default): train ``M * W / keep``, test ``W``; classic: train
``M * W``, test ``keep * W``.  Wan et al.'s own rule matches the moments of
the pre-activation with a Gaussian, ``u ~ N(keep W v, keep (1 - keep) (W*W)(v*v))``,
and averages ``a(u)`` over samples; :func:`drop_connect_moment_matching`
implements it for a Linear layer and a given activation (the layers
themselves use the expected-weight rule).  Biases are never masked.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_int, check_rate
from regularkit._util.rng import check_generator, keep_mask, randn
from regularkit.errors import RegularkitError
from regularkit.noise.dropout import apply_dropout, dropout
from regularkit.noise.stochastic import Stochastic, check_float_tensor


def drop_connect(weight: torch.Tensor, p: float, training: bool = True, *, classic: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """The weight a DropConnect layer uses for one forward pass (one mask for the whole batch).

    Train: ``M * W / keep`` (or ``M * W`` if ``classic``); test: ``W`` (or ``keep * W``).
    Usable on any layer through ``torch.nn.utils.parametrize`` with :class:`DropConnect`.
    """
    # Per-batch DropConnect *is* dropout applied to the weight tensor.
    return dropout(weight, p, training, classic=classic, generator=generator)


def _per_sample_weights(n: int, weight: torch.Tensor, p: float, classic: bool,
                        generator: torch.Generator | None) -> torch.Tensor:
    """``n`` independently masked copies of ``weight``: shape ``(n, *weight.shape)``."""
    mask = keep_mask((n,) + tuple(weight.shape), 1.0 - p, device=weight.device, generator=generator)
    return apply_dropout(weight, mask, p, classic=classic)


def drop_connect_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, p: float,
                        training: bool = True, *, per_sample: bool = False, classic: bool = False,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """``F.linear`` with DropConnect on ``weight``; ``x`` is ``N x ... x in_features``."""
    p = check_rate("p", p)
    check_float_tensor("x", x)
    generator = check_generator(generator)
    if not (training and per_sample and p > 0 and x.ndim >= 2):
        return F.linear(x, drop_connect(weight, p, training, classic=classic, generator=generator), bias)
    masked = _per_sample_weights(x.shape[0], weight, p, classic, generator)  # N x out x in
    out = torch.einsum("noi,n...i->n...o", masked, x)
    return out if bias is None else out + bias


def drop_connect_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, p: float,
                        training: bool = True, *, stride=1, padding=0, dilation=1, groups: int = 1,
                        per_sample: bool = False, classic: bool = False,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """``F.conv2d`` with DropConnect on ``weight``; ``x`` is ``N x C x H x W`` (zero padding)."""
    p = check_rate("p", p)
    check_float_tensor("x", x)
    generator = check_generator(generator)
    conv = dict(stride=stride, padding=padding, dilation=dilation)
    if not (training and per_sample and p > 0):
        w = drop_connect(weight, p, training, classic=classic, generator=generator)
        return F.conv2d(x, w, bias, groups=groups, **conv)
    if x.ndim != 4:
        raise RegularkitError(f"per-sample DropConnect on Conv2d needs N x C x H x W input, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    masked = _per_sample_weights(n, weight, p, classic, generator)  # N x O x C/g x kh x kw
    # Fold the batch into the channels: sample n's channels form their own groups, seen only
    # by sample n's masked filters -- one grouped convolution instead of N small ones.
    out = F.conv2d(x.reshape(1, n * c, h, w), masked.reshape(-1, *weight.shape[1:]), None,
                   groups=n * groups, **conv)
    out = out.reshape(n, weight.shape[0], *out.shape[2:])
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def drop_connect_moment_matching(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, p: float,
                                 activation: Callable[[torch.Tensor], torch.Tensor], *, samples: int = 100,
                                 classic: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Wan et al.'s inference for ``a(DropConnectLinear(x))``: Gaussian moment matching.

    The pre-activation ``u = (M * W / s) x + b`` (``s = keep`` inverted, ``1`` classic)
    is a sum of many independent terms, so it is approximated by
    ``N(keep/s * W x + b, keep (1 - keep) / s^2 * (W*W)(x*x))``;
    the result is ``mean_z a(u_z)`` over ``samples`` draws of ``u``.
    """
    p = check_rate("p", p)
    check_float_tensor("x", x)
    samples = check_int("samples", samples, minimum=1)
    keep = 1.0 - p
    s = 1.0 if classic else keep
    mean = F.linear(x, weight * (keep / s), bias)
    var = F.linear(x * x, weight * weight) * (keep * (1.0 - keep) / (s * s))
    z = randn((samples,) + tuple(mean.shape), device=x.device, generator=check_generator(generator))
    return activation(mean + var.sqrt() * z.to(mean.dtype)).mean(0)


class DropConnect(Stochastic):
    """Module form of :func:`drop_connect`: maps a weight to its masked weight.

    Register it as a parametrization to give any layer per-batch DropConnect::

        torch.nn.utils.parametrize.register_parametrization(conv, "weight", DropConnect(0.5))
    """

    def __init__(self, p: float = 0.5, *, classic: bool = False, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        self.p = check_rate("p", p)
        self.classic = bool(classic)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        generator = self._generator_for(weight.device) if self.training else None
        return drop_connect(weight, self.p, self.training, classic=self.classic, generator=generator)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", classic=True" if self.classic else "")


class DropConnectLinear(nn.Linear, Stochastic):
    """An ``nn.Linear`` trained with DropConnect; ``weight`` and ``bias`` keep their names.

    It *is* an ``nn.Linear`` (``isinstance`` holds), so initialisers, constraints,
    weight-decay groups and state dicts treat it exactly as one.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, p: float = 0.5,
                 per_sample: bool = False, classic: bool = False, seed: int | None = None,
                 generator: torch.Generator | None = None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_randomness(seed, generator)
        self.p = check_rate("p", p)
        self.per_sample = bool(per_sample)
        self.classic = bool(classic)

    @classmethod
    def from_linear(cls, linear: nn.Linear, p: float = 0.5, **kwargs) -> "DropConnectLinear":
        """Wrap an existing ``nn.Linear``, sharing (not copying) its parameters."""
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, p=p,
                    device="meta", **kwargs)
        layer.weight = linear.weight
        layer.bias = linear.bias
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = self._generator_for(x.device) if self.training else None
        return drop_connect_linear(x, self.weight, self.bias, self.p, self.training, per_sample=self.per_sample,
                                   classic=self.classic, generator=generator)

    def extra_repr(self) -> str:
        flags = (", per_sample=True" if self.per_sample else "") + (", classic=True" if self.classic else "")
        return f"{super().extra_repr()}, p={self.p}{flags}"


class DropConnectConv2d(nn.Conv2d, Stochastic):
    """An ``nn.Conv2d`` trained with DropConnect (per batch, or per sample via a grouped convolution)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *, p: float = 0.5,
                 per_sample: bool = False, classic: bool = False, seed: int | None = None,
                 generator: torch.Generator | None = None, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias, padding_mode=padding_mode, device=device, dtype=dtype)
        self._init_randomness(seed, generator)
        self.p = check_rate("p", p)
        self.per_sample = bool(per_sample)
        self.classic = bool(classic)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = self._generator_for(x.device) if self.training else None
        padding = self.padding
        if self.padding_mode != "zeros":
            # As nn.Conv2d does: pad explicitly with the chosen mode, then convolve without padding.
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        unbatched = x.ndim == 3
        out = drop_connect_conv2d(x.unsqueeze(0) if unbatched else x, self.weight, self.bias, self.p,
                                  self.training, stride=self.stride, padding=padding, dilation=self.dilation,
                                  groups=self.groups, per_sample=self.per_sample, classic=self.classic,
                                  generator=generator)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        flags = (", per_sample=True" if self.per_sample else "") + (", classic=True" if self.classic else "")
        return f"{super().extra_repr()}, p={self.p}{flags}"
