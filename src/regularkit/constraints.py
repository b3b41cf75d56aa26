"""Weight constraints: project the parameters back onto a set after every optimizer step.

Classical constrained optimisation would use Lagrange multipliers; deep learning
instead takes an unconstrained gradient step and then projects (lecture 000,
"Restricciones a los parámetros").  The max-norm constraint with dropout
(Srivastava et al. 2014, JMLR 15, sec. 5.1) allows large learning rates without
weights exploding; ``max_value`` of about 3-4 is the usual choice.

The Keras contract: ``constraint(weight) -> projected weight`` (a new tensor), with
the slide's 1e-7 guard: ``w * clip(norms, 0, m) / (1e-7 + norms)``.

Axis convention.  Norms are per *unit*: each output unit's incoming weight vector.
In torch's layout dim 0 is the output units -- rows of ``Linear.weight`` (out, in),
output channels of ``ConvNd.weight`` (out, in/groups, *k) -- so the norm runs over
every dim but 0.  Keras stores a Dense kernel as (in, out) and a Conv2D kernel as
(kh, kw, in, out); its ``axis=0`` (Dense) or ``axis=[0, 1, 2]`` (Conv2D) reduce over
the inputs, which is the same per-unit norm.  Theano's slide code ``sum(axis=0)``
assumed that (in, out) layout too; on a torch (out, in) weight ``axis=0`` would
constrain per *input*, which is why there is no ``axis`` argument here.  A 1-D
tensor (a bias) has one number per unit, so its per-unit norm is ``|b_i|``.

:func:`project` applies constraints in place after ``optimizer.step()``, by default
to every weight the penalties select (``ndim >= 2``: see :mod:`regularkit._util.params`).
Dim 0 is the output unit for those too: a row of ``MultiheadAttention.in_proj_weight``
(3E, E) or of an LSTM's ``weight_ih_l0`` (4H, in) is one unit's (one gate's) incoming
weights, a row of ``Embedding.weight`` is one token's vector (``MaxNorm`` there is
``nn.Embedding(max_norm=)``, applied after the step instead of at lookup).  For
``ConvTranspose`` layers, whose weight is (in, out/groups, *k), it swaps dims 0 and 1
first so that dim 0 is again the output units.

In place, over all weights at once.  Each constraint also has ``project_(weights)``,
which writes the same projection into a list of tensors: ``torch._foreach_clamp_min_``
/ ``_foreach_clamp_max_`` for the sign constraints (one call for every weight), and for
the norm constraints one per-unit norm (``torch.linalg.vector_norm``, no squared copy)
and one in-place multiply per tensor -- torch has no foreach op for per-row norms.
``MaxNorm`` skips the multiply on the CPU when every unit's factor is exactly 1 (rows
already within the bound), which changes no bit.  It rarely happens on a fresh
network: the 1e-7 guard makes the factor ``n / (n + 1e-7)``, which in float32 is 1
only for norms of 2 and more (below, ``n + 1e-7`` rounds up), so shorter rows shrink
by a rounding step at every projection, as in Keras (we keep its formula; torch's
``renorm`` and ``Embedding(max_norm=)`` leave rows within the bound untouched).
:func:`project` groups consecutive weights that share a constraint and calls
``project_`` once for the group; the result equals ``w.copy_(constraint(w))`` for
each weight, bit for bit.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable

import torch
from torch import Tensor, nn

from regularkit._util.checks import check_choice, check_in_range, check_non_negative, check_positive
from regularkit._util.params import select_parameters
from regularkit._util.registry import build
from regularkit.errors import RegularkitError

__all__ = [
    "EPSILON", "unit_norms", "max_norm_scale", "max_norm", "unit_norm", "non_neg", "min_max_norm_scale",
    "min_max_norm", "bias_sign", "orthonormal",
    "Constraint", "MaxNorm", "UnitNorm", "NonNeg", "MinMaxNorm", "BiasSign", "Orthonormal",
    "REGISTRY", "get", "project", "Projector",
]

#: Keras' ``backend.epsilon()``: keeps a zero row at zero instead of 0/0.
EPSILON = 1e-7


def unit_norms(w: Tensor) -> Tensor:
    """L2 norm of each output unit's weights (dim 0 kept), shaped to broadcast against ``w``.

    ``sqrt(sum w^2)`` over every dim but 0, as ``torch.linalg.vector_norm``: one pass, no squared copy.
    """
    return torch.linalg.vector_norm(w, dim=tuple(range(1, w.dim())), keepdim=True) if w.dim() > 1 else w.abs()


def max_norm_scale(w: Tensor, max_value: float = 2.0) -> Tensor:
    """Each unit's factor ``clip(norms, 0, max_value) / (1e-7 + norms)`` (broadcasts against ``w``)."""
    norms = unit_norms(w)
    return norms.clamp(0.0, max_value) / (EPSILON + norms)


def max_norm(w: Tensor, max_value: float = 2.0) -> Tensor:
    """``w * clip(norms, 0, max_value) / (1e-7 + norms)``: rows longer than ``max_value`` are rescaled to it."""
    return w * max_norm_scale(w, max_value)


def unit_norm(w: Tensor) -> Tensor:
    """``w / (1e-7 + norms)``: every unit's weight vector gets norm 1."""
    return w / (EPSILON + unit_norms(w))


def non_neg(w: Tensor) -> Tensor:
    """Negative entries set to zero (projection onto the non-negative orthant)."""
    return w.clamp(min=0.0)


def min_max_norm_scale(w: Tensor, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0) -> Tensor:
    """Each unit's factor ``desired / (1e-7 + norms)`` of :func:`min_max_norm`."""
    norms = unit_norms(w)
    desired = rate * norms.clamp(min_value, max_value) + (1.0 - rate) * norms
    return desired / (EPSILON + norms)


def min_max_norm(w: Tensor, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0) -> Tensor:
    """Keras ``MinMaxNorm``: ``w * desired / (1e-7 + norms)``.

    ``desired = rate * clip(norms, min_value, max_value) + (1 - rate) * norms``;
    ``rate < 1`` moves the norms only part of the way each step (a softer projection).
    """
    return w * min_max_norm_scale(w, min_value, max_value, rate)


def bias_sign(w: Tensor, sign: str = "non_negative") -> Tensor:
    """Clamp to ``>= 0`` ("non_negative", e.g. ReLU units that stay active) or ``<= 0`` ("non_positive")."""
    return w.clamp(min=0.0) if sign == "non_negative" else w.clamp(max=0.0)


def orthonormal(w: Tensor) -> Tensor:
    """Nearest (semi-)orthonormal matrix in Frobenius norm: ``U V^T`` from ``W = U S V^T``.

    The orthogonal factor of the polar decomposition (Higham 1986).  Conv weights are
    flattened to (out, in * k) and reshaped back.  With out <= in the rows become
    orthonormal (W W^T = I); with out > in the columns (W^T W = I).
    """
    if w.dim() < 2:
        raise RegularkitError(f"orthonormal needs a weight with >= 2 dims, got shape {tuple(w.shape)}")
    mat = w.reshape(w.shape[0], -1)
    # SVD in float64 at least: the projection should be orthonormal to ~1e-12, not 1e-6.
    work = mat if mat.dtype == torch.float64 else mat.double()
    u, _, vh = torch.linalg.svd(work, full_matrices=False)
    return (u @ vh).to(w.dtype).reshape(w.shape)


class Constraint:
    """Base class: ``constraint(weight) -> projected weight``; configs round-trip (Keras).

    ``project_(weights)`` writes the projection of each tensor in place (under ``torch.no_grad()``);
    this default copies ``self(w)`` into ``w``, subclasses use in-place and foreach kernels.
    """

    def __call__(self, w: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def project_(self, weights: list[Tensor]) -> None:
        for w in weights:
            w.copy_(self(w))

    def get_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config: dict) -> "Constraint":
        return cls(**config)


@dataclasses.dataclass(frozen=True)
class MaxNorm(Constraint):
    """Max-norm per unit (Srivastava et al. 2014): ||w_unit||_2 <= max_value."""

    max_value: float = 2.0

    def __post_init__(self):
        object.__setattr__(self, "max_value", check_positive("max_value", self.max_value))

    def __call__(self, w: Tensor) -> Tensor:
        return max_norm(w, self.max_value)

    def project_(self, weights: list[Tensor]) -> None:
        for w in weights:
            scale = max_norm_scale(w, self.max_value)
            if w.device.type != "cpu" or bool((scale != 1.0).any()):  # on an accelerator the check would sync
                w.mul_(scale)


@dataclasses.dataclass(frozen=True)
class UnitNorm(Constraint):
    """Every unit's incoming weight vector has norm 1."""

    def __call__(self, w: Tensor) -> Tensor:
        return unit_norm(w)

    def project_(self, weights: list[Tensor]) -> None:
        for w in weights:
            w.div_(EPSILON + unit_norms(w))


@dataclasses.dataclass(frozen=True)
class NonNeg(Constraint):
    """Weights >= 0."""

    def __call__(self, w: Tensor) -> Tensor:
        return non_neg(w)

    def project_(self, weights: list[Tensor]) -> None:
        if weights:
            torch._foreach_clamp_min_(weights, 0.0)


@dataclasses.dataclass(frozen=True)
class MinMaxNorm(Constraint):
    """Per-unit norm in [min_value, max_value], reached at ``rate`` per step (1 = exact projection)."""

    min_value: float = 0.0
    max_value: float = 1.0
    rate: float = 1.0

    def __post_init__(self):
        lo = check_non_negative("min_value", self.min_value)
        hi = check_positive("max_value", self.max_value)
        if lo > hi:
            raise RegularkitError(f"min_value must be <= max_value, got min_value={lo}, max_value={hi}")
        rate = check_in_range("rate", self.rate, 0.0, 1.0, low_inclusive=False)
        for k, v in (("min_value", lo), ("max_value", hi), ("rate", rate)):
            object.__setattr__(self, k, v)

    def __call__(self, w: Tensor) -> Tensor:
        return min_max_norm(w, self.min_value, self.max_value, self.rate)

    def project_(self, weights: list[Tensor]) -> None:
        for w in weights:
            w.mul_(min_max_norm_scale(w, self.min_value, self.max_value, self.rate))


@dataclasses.dataclass(frozen=True)
class BiasSign(Constraint):
    """Biases of one sign: "non_negative" (b >= 0) or "non_positive" (b <= 0)."""

    sign: str = "non_negative"

    def __post_init__(self):
        check_choice("sign", self.sign, ("non_negative", "non_positive"))

    def __call__(self, w: Tensor) -> Tensor:
        return bias_sign(w, self.sign)

    def project_(self, weights: list[Tensor]) -> None:
        clamp_ = torch._foreach_clamp_min_ if self.sign == "non_negative" else torch._foreach_clamp_max_
        if weights:
            clamp_(weights, 0.0)


@dataclasses.dataclass(frozen=True)
class Orthonormal(Constraint):
    """Projection onto the nearest (semi-)orthonormal matrix, U V^T (2-D or flattened conv weights)."""

    def __call__(self, w: Tensor) -> Tensor:
        return orthonormal(w)


#: The one registry of constraint names (Keras spelling), used by :func:`get` and configs.
REGISTRY: dict[str, type[Constraint]] = {
    "max_norm": MaxNorm, "unit_norm": UnitNorm, "non_neg": NonNeg,
    "min_max_norm": MinMaxNorm, "bias_sign": BiasSign, "orthonormal": Orthonormal,
}


def get(identifier) -> Constraint:
    """A constraint from a name (``"max_norm"``), ``{"class_name": ..., "config": {...}}``, or a constraint."""
    return build(REGISTRY, identifier, family="constraint", base=Constraint)


def _owners(model: nn.Module) -> dict[int, tuple[str, nn.Module]]:
    """id(param) -> (qualified name, owning module); the first name wins for tied weights."""
    owners = {}
    for prefix, mod in model.named_modules():
        for attr, p in mod.named_parameters(recurse=False):
            owners.setdefault(id(p), (f"{prefix}.{attr}" if prefix else attr, mod))
    return owners


def _selected(model: nn.Module, key) -> list[nn.Parameter]:
    """The parameters one spec key names (a type selects module weights, a regex any parameter)."""
    if isinstance(key, nn.Parameter):
        return [key]
    if isinstance(key, nn.Module):
        return [key.weight] if isinstance(getattr(key, "weight", None), nn.Parameter) else []
    if isinstance(key, str):
        try:
            regex = re.compile(key)
        except re.error as exc:
            raise RegularkitError(f"pattern is not a valid regular expression: {key!r} ({exc})") from None
        return [p for n, p in model.named_parameters() if regex.search(n)]
    if isinstance(key, type) or (isinstance(key, tuple) and all(isinstance(t, type) for t in key)):
        return [m.weight for m in model.modules()
                if isinstance(m, key) and isinstance(getattr(m, "weight", None), nn.Parameter)]
    raise RegularkitError(f"spec key must be a module type, a name pattern, a module or a parameter, got {key!r}")


def _resolve(model: nn.Module, spec) -> list[tuple[str, nn.Parameter, nn.Module, Callable]]:
    """``(name, parameter, owning module, constraint)`` for every entry of ``spec``, in order."""
    owners = _owners(model)
    if callable(spec) and not isinstance(spec, (dict, type)):
        params = [p for _, p in select_parameters(model)]
        if not params:
            raise RegularkitError(f"spec {spec!r} applies to every trainable weight (ndim >= 2), "
                                  f"but {type(model).__name__} has none")
        entries = [(params, spec)]
    elif isinstance(spec, dict) and spec:
        entries = []
        for key, constraint in spec.items():
            if not callable(constraint):
                raise RegularkitError(f"constraint for {key!r} must be callable (weight -> weight), got {constraint!r}")
            params = [p for p in _selected(model, key) if id(p) in owners]
            if not params:
                raise RegularkitError(f"spec key {key!r} selects no parameter of the model")
            entries.append((params, constraint))
    else:
        raise RegularkitError(f"spec must be a constraint or a non-empty dict {{selector: constraint}}, got {spec!r}")
    out = []
    for params, constraint in entries:
        seen = set()
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                name, mod = owners[id(p)]
                out.append((name, p, mod, constraint))
    return out


def project(model: nn.Module, spec) -> list[str]:
    """Apply constraints in place under ``torch.no_grad()``; call right after ``optimizer.step()``.

    ``spec`` is a constraint, applied to every trainable weight of the penalties' rule
    (:func:`regularkit._util.params.select_parameters`: ``ndim >= 2``, not ``*.bias``, not
    named by ``no_weight_decay()``; frozen weights stay as they are), or a dict
    ``{selector: constraint}`` applied in order, where a selector is a module type or
    tuple of types (their ``weight``: ``{penalties.DEFAULT_MODULES: c}`` is the old
    Linear/Conv-only default), a regex on qualified parameter names (``r"bias$"``, any parameter), a module
    instance (its ``weight``) or a parameter; an explicit selector takes what it names,
    frozen or not.  A selector that matches nothing is an error (a typo would otherwise
    do nothing).  Returns the qualified names projected, in order.
    """
    names, groups = [], []  # groups: (constraint, weights, their ids), consecutive entries sharing a constraint
    with torch.no_grad():
        for name, p, mod, constraint in _resolve(model, spec):
            transposed = isinstance(mod, nn.modules.conv._ConvTransposeNd) and name.endswith("weight")
            if transposed and mod.groups != 1:
                raise RegularkitError(f"cannot project {name}: ConvTranspose with groups={mod.groups} "
                                      "has no per-output-unit layout")
            if not groups or groups[-1][0] is not constraint or id(p) in groups[-1][2]:
                groups.append((constraint, [], set()))
            groups[-1][1].append(p.transpose(0, 1) if transposed else p)  # a view: writing it writes p
            groups[-1][2].add(id(p))
            names.append(name)
        for constraint, weights, _ in groups:
            if isinstance(constraint, Constraint):
                constraint.project_(weights)
            else:  # any callable weight -> weight
                for w in weights:
                    w.copy_(constraint(w))
    return names


class Projector:
    """``Projector(spec)(model)`` projects: a ready after-step hook (``project`` with a fixed spec)."""

    def __init__(self, spec):
        if not (isinstance(spec, dict) or (callable(spec) and not isinstance(spec, type))):
            raise RegularkitError(f"spec must be a constraint or a dict {{selector: constraint}}, got {spec!r}")
        self.spec = spec

    def __call__(self, model: nn.Module) -> list[str]:
        return project(model, self.spec)

    def __repr__(self) -> str:
        return f"Projector({self.spec!r})"
