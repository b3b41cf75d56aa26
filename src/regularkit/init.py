"""Weight and bias initialisation: variance scaling, its presets, and the class-prior output bias.

Random initialisation breaks the symmetry between units; its scale keeps the signal's
variance from layer to layer.  For z = sum_i w_i x_i with independent zero-mean terms,
Var(z) = n Var(w) Var(x), so Var(w) = s / n keeps Var(z) = s Var(x) (lecture 003):

    w ~ N(0, sigma^2 = s / n)        or        w ~ U(-sqrt(3 s / n), +sqrt(3 s / n))

with n = fan_in, fan_out or their mean.  Glorot & Bengio (2010): s = 1, n = fan_avg
(= "s = 2, n = fan_in + fan_out" of the slide); He et al. (2015), for ReLU: s = 2,
n = fan_in; LeCun et al. (1998, "Efficient BackProp"): s = 1, n = fan_in.

Truncated normal ("clip initial weights to 2 sigma").  Samples of N(0, sigma'^2) are
redrawn outside +-2 sigma'.  Truncation shrinks the standard deviation by the factor
``TRUNCATED_STD`` = 0.8796..., so, as Keras does, sigma' = sqrt(s / n) / 0.8796 and the
variance of the result is exactly s / n; values lie within +-2 sigma' = +-2.27 sqrt(s / n).

Fans follow torch (``torch.nn.init._calculate_fan_in_and_fan_out``) for its layout
(out, in, *kernel): fan_in = in * receptive field, fan_out = out * receptive field.
Keras' "normal" presets are truncated (Keras 3); torch's and the slide's old Keras
``glorot_normal`` are not: the presets here follow the lecture and torch, and take
``truncated=True`` for Keras'.

Biases: 0, or 0.1 for ReLU units so they start active (lecture 003); for a
classifier's output layer, softmax(b) = p(y) (:func:`class_prior_bias`) so the first
predictions already match the class frequencies (Karpathy 2019, "A recipe for
training neural networks"; Lin et al. 2017, focal loss, for sigmoid outputs).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from regularkit._util.checks import check_choice, check_number, check_positive
from regularkit._util.params import DEFAULT_MODULES, check_types
from regularkit.errors import RegularkitError

__all__ = [
    "TRUNCATED_STD", "compute_fans", "variance_scaling", "glorot_normal", "glorot_uniform",
    "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "INITIALIZERS", "get",
    "class_prior_bias", "initialize",
]

#: Standard deviation of N(0, 1) truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))).
TRUNCATED_STD = math.sqrt(1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / math.erf(math.sqrt(2.0)))


def compute_fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of torch layout (out, in, *kernel)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise RegularkitError(f"fans need a weight with >= 2 dims (out, in, *kernel), got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor: Tensor, generator: torch.Generator | None, fill: Callable[[Tensor], None]) -> Tensor:
    # Sample on the generator's device and copy: a CPU generator then gives the same numbers
    # for a CUDA tensor as for a CPU one.
    with torch.no_grad():
        if generator is not None and generator.device.type != tensor.device.type:
            buf = torch.empty(tensor.shape, dtype=tensor.dtype, device=generator.device)
            fill(buf)
            tensor.copy_(buf)
        else:
            fill(tensor)
    return tensor


def variance_scaling(tensor: Tensor, scale: float = 1.0, mode: str = "fan_in", distribution: str = "normal",
                     generator: torch.Generator | None = None) -> Tensor:
    """Fill ``tensor`` in place with Var(w) = scale / n, n from ``mode``; returns it.

    ``distribution``: "normal" N(0, s/n); "uniform" U(+-sqrt(3 s/n)); "truncated_normal"
    N(0, sigma'^2) cut at +-2 sigma' with sigma' = sqrt(s/n) / 0.8796 (variance s/n).
    """
    scale = check_positive("scale", scale)
    check_choice("mode", mode, ("fan_in", "fan_out", "fan_avg"))
    check_choice("distribution", distribution, ("normal", "uniform", "truncated_normal"))
    if not isinstance(tensor, Tensor):
        raise RegularkitError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
    fan_in, fan_out = compute_fans(tensor.shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    if n == 0:
        raise RegularkitError(f"{mode} is 0 for a weight of shape {tuple(tensor.shape)}")
    std = math.sqrt(scale / n)
    if distribution == "normal":
        return _fill(tensor, generator, lambda t: t.normal_(0.0, std, generator=generator))
    if distribution == "uniform":
        limit = math.sqrt(3.0) * std
        return _fill(tensor, generator, lambda t: t.uniform_(-limit, limit, generator=generator))

    def truncated(t: Tensor) -> None:
        # Inverse CDF: uniform on [Phi(-2), Phi(2)] mapped through Phi^-1 lands in [-2, 2] exactly,
        # with no rejection loop (so the number of draws, and the stream, is fixed).
        edge = math.erf(math.sqrt(2.0))
        t.uniform_(-edge, edge, generator=generator)
        t.erfinv_().mul_(math.sqrt(2.0)).clamp_(-2.0, 2.0).mul_(std / TRUNCATED_STD)

    return _fill(tensor, generator, truncated)


def glorot_normal(tensor: Tensor, *, truncated: bool = False, generator: torch.Generator | None = None) -> Tensor:
    """Glorot & Bengio (2010): N(0, 2 / (fan_in + fan_out)); for tanh / sigmoid units."""
    return variance_scaling(tensor, 1.0, "fan_avg", "truncated_normal" if truncated else "normal", generator)


def glorot_uniform(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Glorot & Bengio (2010): U(+-sqrt(6 / (fan_in + fan_out)))."""
    return variance_scaling(tensor, 1.0, "fan_avg", "uniform", generator)


def he_normal(tensor: Tensor, *, truncated: bool = False, generator: torch.Generator | None = None) -> Tensor:
    """He et al. (2015): N(0, 2 / fan_in); for ReLU units (half of them are off)."""
    return variance_scaling(tensor, 2.0, "fan_in", "truncated_normal" if truncated else "normal", generator)


def he_uniform(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """He et al. (2015): U(+-sqrt(6 / fan_in))."""
    return variance_scaling(tensor, 2.0, "fan_in", "uniform", generator)


def lecun_normal(tensor: Tensor, *, truncated: bool = False, generator: torch.Generator | None = None) -> Tensor:
    """LeCun et al. (1998): N(0, 1 / fan_in); the choice for SELU (Klambauer et al. 2017)."""
    return variance_scaling(tensor, 1.0, "fan_in", "truncated_normal" if truncated else "normal", generator)


def lecun_uniform(tensor: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """LeCun et al. (1998): U(+-sqrt(3 / fan_in))."""
    return variance_scaling(tensor, 1.0, "fan_in", "uniform", generator)


#: The one registry of initializer names (Keras spelling).
INITIALIZERS: dict[str, Callable[..., Tensor]] = {
    "glorot_normal": glorot_normal, "glorot_uniform": glorot_uniform,
    "he_normal": he_normal, "he_uniform": he_uniform,
    "lecun_normal": lecun_normal, "lecun_uniform": lecun_uniform,
}


def get(name: str) -> Callable[..., Tensor]:
    """The initializer called ``name`` (one of :data:`INITIALIZERS`)."""
    return INITIALIZERS[check_choice("initializer", name, INITIALIZERS)]


def _priors(values, activation: str, n_samples) -> Tensor:
    try:
        v = torch.as_tensor(values, dtype=torch.float64).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise RegularkitError(f"class_counts_or_priors must be a sequence of numbers, got {values!r}") from None
    if v.dim() != 1 or v.numel() == 0 or not torch.isfinite(v).all():
        raise RegularkitError(f"class_counts_or_priors must be a non-empty 1-D sequence of finite numbers, got {values!r}")
    if activation == "softmax":
        if (v <= 0).any():
            # log 0 = -inf: the class could never be predicted, and softmax(b) = p is unreachable.
            raise RegularkitError(f"class counts/priors must all be > 0 for a softmax bias, got {v.tolist()}")
        return v / v.sum()
    p = v / check_positive("n_samples", n_samples) if n_samples is not None else v
    if ((p <= 0) | (p >= 1)).any():
        raise RegularkitError(f"sigmoid priors must be in (0, 1) (pass counts with n_samples=), got {p.tolist()}")
    return p


def class_prior_bias(layer_or_tensor: nn.Module | Tensor, class_counts_or_priors, activation: str = "softmax",
                     *, n_samples: float | None = None) -> Tensor:
    """Set an output bias to the class prior, in place, and return the bias.

    softmax: b = log p with p = counts / sum(counts), so softmax(b) = p (b is defined up
    to a constant; this one has logsumexp(b) = 0).  sigmoid (one independent output per
    class): b = logit(p) = log(p / (1 - p)), so sigmoid(b) = p; p are positive rates in
    (0, 1), or counts divided by ``n_samples``.
    """
    check_choice("activation", activation, ("softmax", "sigmoid"))
    target = getattr(layer_or_tensor, "bias", None) if isinstance(layer_or_tensor, nn.Module) else layer_or_tensor
    if not isinstance(target, Tensor):
        raise RegularkitError(f"class_prior_bias needs a layer with a bias or a tensor, got {layer_or_tensor!r}")
    p = _priors(class_counts_or_priors, activation, n_samples)
    if tuple(target.shape) != (p.numel(),):
        raise RegularkitError(f"bias has shape {tuple(target.shape)} but {p.numel()} class priors were given")
    b = p.log() if activation == "softmax" else (p / (1.0 - p)).log()
    with torch.no_grad():
        target.copy_(b.to(dtype=target.dtype, device=target.device))
    return target


def initialize(model: nn.Module, weight: str | Callable[..., Tensor] | None = "he_normal", bias: float | None = 0.0,
               output_bias: float | str | None = None, class_prior=None, generator: torch.Generator | None = None,
               *, modules=DEFAULT_MODULES, output_activation: str = "softmax") -> nn.Module:
    """Apply one scheme to every Linear/Conv layer of ``model`` (in ``model.modules()`` order); returns it.

    ``weight``: a preset name, a callable ``f(tensor, generator=...)``, or None (keep).
    ``bias``: constant for every bias (0.0; 0.1 for ReLU units), or None (keep).
    ``output_bias``: the bias of the *last* ``nn.Linear`` (the output layer): None (same as
    ``bias``), a number, or "prior" -- :func:`class_prior_bias` with ``class_prior``.
    """
    init_w = get(weight) if isinstance(weight, str) else weight
    if init_w is not None and not callable(init_w):
        raise RegularkitError(f"weight must be an initializer name, a callable or None, got {weight!r}")
    bias = None if bias is None else check_number("bias", bias)
    if class_prior is not None and output_bias != "prior":
        raise RegularkitError(f"class_prior is only used with output_bias='prior', got output_bias={output_bias!r}")
    if output_bias == "prior" and class_prior is None:
        raise RegularkitError("output_bias='prior' needs class_prior (class counts or priors), got None")
    if output_bias is not None and output_bias != "prior":
        output_bias = check_number("output_bias", output_bias)
    types = check_types(modules) or ()
    layers = [m for m in model.modules() if isinstance(m, types)]
    if not layers:
        raise RegularkitError(f"initialize: {type(model).__name__} has no layer of types {modules!r}")
    with torch.no_grad():  # a user's initializer may write in place without its own no_grad
        for m in layers:
            if init_w is not None and isinstance(getattr(m, "weight", None), Tensor):
                init_w(m.weight, generator=generator)
            if bias is not None and isinstance(getattr(m, "bias", None), Tensor):
                m.bias.fill_(bias)
    if output_bias is not None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears or linears[-1].bias is None:
            raise RegularkitError(f"output_bias={output_bias!r} needs a last nn.Linear with a bias in the model")
        if output_bias == "prior":
            class_prior_bias(linears[-1], class_prior, output_activation)
        else:
            with torch.no_grad():
                linears[-1].bias.fill_(output_bias)
    return model
