"""DropConnect: drop weights (and biases) instead of units.

Wan, Zeiler, Zhang, LeCun & Fergus (2013), "Regularization of neural networks
using DropConnect", ICML.  A layer ``r = a(W v)`` is trained as
``r = a((M * W) v)`` with every entry of ``M`` drawn from
Bernoulli(keep) (deck 004 lists it beside dropout under "Training: add random
noise, testing: marginalize over the noise").  Wan et al. include the biases in
``W`` (with a fixed input of 1), so the biases are masked too: ``mask_bias=True``,
the default.  ``mask_bias=False`` masks the weights only (regularkit's
behaviour before the option existed, and that of most weight-only implementations).

Two mask granularities:

* per batch (default): one weight mask per forward pass, shared by the whole
  mini-batch -- cheap, and what most implementations do;
* per sample (``per_sample=True``): a different mask for every example, as in
  Wan et al.  For Linear this is a batched matmul ``y_n = (M_n * W) x_n``
  (``einsum``); for Conv2d a grouped convolution with ``N * groups`` groups.
  Memory is ``N x weight.numel()``, inherent to the method.

Inference (the Linear layer's ``inference=``):

* ``"mean"`` (default): the expected weights, as for dropout.  Inverted:
  train ``M * W / keep``, test ``W``; classic: train ``M * W``, test ``keep * W``
  (the same for a masked bias).
* ``"moment_matching"``: Wan et al.'s own rule (their Algorithm 2, inference).
  The pre-activation ``u`` is a sum of many independent terms, so it is
  replaced by a Gaussian with its moments under the Bernoulli mask,
  ``E[u] = keep W v``, ``V[u] = keep (1 - keep) (W*W)(v*v)`` (bias columns
  included when masked; divided by ``keep`` and ``keep^2`` for inverted scaling),
  and the layer returns ``mean_z a(u_z)`` over ``samples`` draws.  It needs the
  activation ``a`` that follows, so the layer takes ``activation=`` (applied in
  train and eval alike); :func:`drop_connect_moment_matching` is the kernel.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_bool, check_choice, check_int, check_rate
from regularkit._util.rng import check_generator, keep_mask, randn
from regularkit.errors import RegularkitError
from regularkit.noise.dropout import apply_dropout, dropout, layer_generator, traceable_generator
from regularkit.noise.stochastic import Stochastic, check_float_tensor

#: Activations a layer can name (``activation=``): the ``a`` of ``r = a((M * W) v)``, needed by moment matching.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": F.gelu, "softplus": F.softplus,
}
INFERENCE_RULES = ("mean", "moment_matching")


def drop_connect(weight: torch.Tensor, p: float, training: bool = True, *, classic: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """The weight (or bias) a DropConnect layer uses for one forward pass (one mask for the whole batch).

    Train: ``M * W / keep`` (or ``M * W`` if ``classic``); test: ``W`` (or ``keep * W``).
    Usable on any layer through ``torch.nn.utils.parametrize`` with :class:`DropConnect`.
    ``p`` is in ``[0, 1)``: unlike dropout, ``p = 1`` (a layer with no connections) is refused.
    """
    # Per-batch DropConnect *is* dropout applied to the weight tensor.
    return dropout(weight, check_rate("p", p), training, classic=classic, generator=generator)


def _per_sample(n: int, tensor: torch.Tensor, p: float, classic: bool,
                generator: torch.Generator | None) -> torch.Tensor:
    """``n`` independently masked copies of ``tensor`` (a weight or a bias): shape ``(n, *tensor.shape)``."""
    mask = keep_mask((n,) + tuple(tensor.shape), 1.0 - p, device=tensor.device,
                     generator=traceable_generator(generator))
    return apply_dropout(tensor, mask, p, classic=classic)


def _per_batch_bias(bias: torch.Tensor | None, p: float, training: bool, classic: bool, mask_bias: bool,
                    generator: torch.Generator | None) -> torch.Tensor | None:
    """The bias of a per-batch pass: masked like a weight column (drawn after the weight mask) if ``mask_bias``."""
    if bias is None or not mask_bias:
        return bias
    return drop_connect(bias, p, training, classic=classic, generator=generator)


def drop_connect_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, p: float,
                        training: bool = True, *, per_sample: bool = False, classic: bool = False,
                        mask_bias: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """``F.linear`` with DropConnect on ``weight`` (and ``bias`` if ``mask_bias``); ``x`` is ``N x ... x in``.

    The bias mask is drawn after the weight mask, from the same generator: per batch one
    entry per output unit, per sample one per (example, output unit).
    """
    p = check_rate("p", p)
    check_float_tensor("x", x)
    generator = check_generator(generator)
    if not (training and per_sample and p > 0 and x.ndim >= 2):
        w = drop_connect(weight, p, training, classic=classic, generator=generator)
        return F.linear(x, w, _per_batch_bias(bias, p, training, classic, mask_bias, generator))
    n = x.shape[0]
    out = torch.einsum("noi,n...i->n...o", _per_sample(n, weight, p, classic, generator), x)  # N x out x in masks
    if bias is None:
        return out
    if not mask_bias:
        return out + bias
    return out + _per_sample(n, bias, p, classic, generator).reshape((n,) + (1,) * (out.ndim - 2) + (-1,))


def drop_connect_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, p: float,
                        training: bool = True, *, stride=1, padding=0, dilation=1, groups: int = 1,
                        per_sample: bool = False, classic: bool = False, mask_bias: bool = True,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """``F.conv2d`` with DropConnect on ``weight`` (and ``bias`` if ``mask_bias``); ``x`` is ``N x C x H x W``.

    A masked bias entry drops the output channel's bias for the whole map (of the batch,
    or of one example with ``per_sample``).  Zero padding; the layer pads other modes itself.
    """
    p = check_rate("p", p)
    check_float_tensor("x", x)
    generator = check_generator(generator)
    conv = dict(stride=stride, padding=padding, dilation=dilation)
    if not (training and per_sample and p > 0):
        w = drop_connect(weight, p, training, classic=classic, generator=generator)
        return F.conv2d(x, w, _per_batch_bias(bias, p, training, classic, mask_bias, generator), groups=groups,
                        **conv)
    if x.ndim != 4:
        raise RegularkitError(f"per-sample DropConnect on Conv2d needs N x C x H x W input, got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    masked = _per_sample(n, weight, p, classic, generator)  # N x O x C/g x kh x kw
    # Fold the batch into the channels: sample n's channels form their own groups, seen only
    # by sample n's masked filters -- one grouped convolution instead of N small ones.
    out = F.conv2d(x.reshape(1, n * c, h, w), masked.reshape(-1, *weight.shape[1:]), None,
                   groups=n * groups, **conv)
    out = out.reshape(n, weight.shape[0], *out.shape[2:])
    if bias is None:
        return out
    b = _per_sample(n, bias, p, classic, generator) if mask_bias else bias.expand(n, -1)
    return out + b.reshape(n, -1, 1, 1)


def drop_connect_moment_matching(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, p: float,
                                 activation: Callable[[torch.Tensor], torch.Tensor], *, samples: int = 100,
                                 classic: bool = False, mask_bias: bool = True,
                                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Wan et al.'s inference (Algorithm 2) for ``a(DropConnectLinear(x))``: Gaussian moment matching.

    With the bias as a weight column on a constant input 1 (``mask_bias``), the
    pre-activation ``u = ((M * W) x + m * b) / s`` (``s = keep`` inverted, ``1`` classic)
    has ``E[u] = keep / s * (W x + b)`` and ``V[u] = keep (1 - keep) / s^2 * ((W*W)(x*x) + b*b)``;
    with ``mask_bias=False`` the bias is added unmasked (no variance).  ``u`` is
    approximated by ``N(E[u], V[u])`` and the result is ``mean_z a(u_z)`` over
    ``samples`` draws (one float32 normal draw of shape ``samples x N x out``).
    """
    p = check_rate("p", p)
    check_float_tensor("x", x)
    samples = check_int("samples", samples, minimum=1)
    keep = 1.0 - p
    s = 1.0 if classic else keep
    masked_bias = bias is not None and mask_bias
    mean = F.linear(x, weight * (keep / s), bias * (keep / s) if masked_bias else bias)
    var = F.linear(x * x, weight * weight, bias * bias if masked_bias else None) * (keep * (1.0 - keep) / (s * s))
    z = randn((samples,) + tuple(mean.shape), device=x.device, generator=traceable_generator(generator))
    return activation(mean + var.sqrt() * z.to(mean.dtype)).mean(0)


class DropConnect(Stochastic):
    """Module form of :func:`drop_connect`: maps a weight to its masked weight.

    Register it as a parametrization to give any layer per-batch DropConnect (register
    a second one on ``"bias"`` to mask the bias too, as Wan et al. do)::

        torch.nn.utils.parametrize.register_parametrization(conv, "weight", DropConnect(0.5))
    """

    def __init__(self, p: float = 0.5, *, classic: bool = False, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        self.p = check_rate("p", p)
        self.classic = check_bool("classic", classic)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        generator = layer_generator(self, weight.device) if self.training else None
        return drop_connect(weight, self.p, self.training, classic=self.classic, generator=generator)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", classic=True" if self.classic else "")


def _flags(layer: nn.Module) -> str:
    """The non-default DropConnect settings of a layer, for ``extra_repr``."""
    flags = [name + "=True" for name in ("per_sample", "classic") if getattr(layer, name)]
    flags += [] if layer.mask_bias else ["mask_bias=False"]
    if getattr(layer, "activation", None) is not None:
        flags.append(f"activation={layer.activation!r}")
    if getattr(layer, "inference", "mean") != "mean":
        flags.append(f"inference={layer.inference!r}, samples={layer.samples}")
    return "".join(", " + flag for flag in flags)


class DropConnectLinear(nn.Linear, Stochastic):
    """An ``nn.Linear`` trained with DropConnect; ``weight`` and ``bias`` keep their names.

    It *is* an ``nn.Linear`` (``isinstance`` holds), so initialisers, constraints,
    weight-decay groups and state dicts treat it exactly as one.  ``activation``
    (a name in :data:`ACTIVATIONS`, or ``None``) is applied after the layer in train
    and eval; ``inference="moment_matching"`` needs it, and draws ``samples`` normals
    per output from the layer's generator at every eval call (so eval is random too).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, p: float = 0.5,
                 per_sample: bool = False, classic: bool = False, mask_bias: bool = True,
                 activation: str | None = None, inference: str = "mean", samples: int = 100,
                 seed: int | None = None, generator: torch.Generator | None = None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self._init_randomness(seed, generator)
        self.p = check_rate("p", p)
        self.per_sample = check_bool("per_sample", per_sample)
        self.classic = check_bool("classic", classic)
        self.mask_bias = check_bool("mask_bias", mask_bias)
        self.activation = check_choice("activation", activation, (None, *ACTIVATIONS))
        self.inference = check_choice("inference", inference, INFERENCE_RULES)
        self.samples = check_int("samples", samples, minimum=1)
        if self.inference == "moment_matching" and self.activation is None:
            raise RegularkitError("inference='moment_matching' averages a(u) over samples of u and needs the "
                                  "activation a (activation='relu', ...), got activation=None")

    @classmethod
    def from_linear(cls, linear: nn.Linear, p: float = 0.5, **kwargs) -> "DropConnectLinear":
        """Wrap an existing ``nn.Linear``, sharing (not copying) its parameters."""
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None, p=p,
                    device="meta", **kwargs)
        layer.weight = linear.weight
        layer.bias = linear.bias
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = None if self.activation is None else ACTIVATIONS[self.activation]
        if not self.training and self.inference == "moment_matching":
            return drop_connect_moment_matching(x, self.weight, self.bias, self.p, act, samples=self.samples,
                                                classic=self.classic, mask_bias=self.mask_bias,
                                                generator=layer_generator(self, x.device))
        generator = layer_generator(self, x.device) if self.training else None
        out = drop_connect_linear(x, self.weight, self.bias, self.p, self.training, per_sample=self.per_sample,
                                  classic=self.classic, mask_bias=self.mask_bias, generator=generator)
        return out if act is None else act(out)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}{_flags(self)}"


class DropConnectConv2d(nn.Conv2d, Stochastic):
    """An ``nn.Conv2d`` trained with DropConnect (per batch, or per sample via a grouped convolution)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *, p: float = 0.5,
                 per_sample: bool = False, classic: bool = False, mask_bias: bool = True, seed: int | None = None,
                 generator: torch.Generator | None = None, device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias, padding_mode=padding_mode, device=device, dtype=dtype)
        self._init_randomness(seed, generator)
        self.p = check_rate("p", p)
        self.per_sample = check_bool("per_sample", per_sample)
        self.classic = check_bool("classic", classic)
        self.mask_bias = check_bool("mask_bias", mask_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = layer_generator(self, x.device) if self.training else None
        padding = self.padding
        if self.padding_mode != "zeros":
            # As nn.Conv2d does: pad explicitly with the chosen mode, then convolve without padding.
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        unbatched = x.ndim == 3
        out = drop_connect_conv2d(x.unsqueeze(0) if unbatched else x, self.weight, self.bias, self.p,
                                  self.training, stride=self.stride, padding=padding, dilation=self.dilation,
                                  groups=self.groups, per_sample=self.per_sample, classic=self.classic,
                                  mask_bias=self.mask_bias, generator=generator)
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}{_flags(self)}"
