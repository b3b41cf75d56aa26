"""Parameter-norm penalties: L2 (weight decay), L1, elastic net, Lp, activity penalties.

The loss a learner minimises becomes J~(w) = J(w) + alpha * Omega(w) (Goodfellow,
Bengio & Courville 2016, *Deep Learning*, sec. 7.1).  Three scalings of the same
idea are in common use and give different numbers for the same "strength":

=================  ==========================  ===================  ===========
convention         term added to the loss      gradient             source
=================  ==========================  ===================  ===========
``"sum"``          lam * sum w^2               2 * lam * w          cs231n, Keras ``l2``
``"half"``         lam / 2 * ||w||^2           lam * w              Goodfellow 7.1.1; torch ``SGD(weight_decay=)``
``n=N``            (lam / N) * sum w^2         2 * lam * w / N      DuocUC: L' = 1/n (sum err + beta * pen)
=================  ==========================  ===================  ===========

``convention`` only scales squared terms (L1 has no customary 1/2); ``n`` divides
any penalty, so ``convention="half", n=N`` is also valid.

Which parameters: by default the ``weight`` of every Linear and Conv layer; biases
and normalisation parameters are never penalised by default ("not used for bias b",
lecture 003), because a bias does not scale an input and shrinking it only adds
bias to the fit.  ``modules`` picks module types (``None``: every parameter) and
``pattern`` (a regex, ``re.search`` on the qualified name from
``model.named_parameters()``) keeps a subset; see :func:`select_parameters`.

Strength may be a number or a schedule ``f(step) -> float``.  The step is the
object's own counter ``step_count``, advanced by ``penalty.step()`` once per
optimizer step (like an LR scheduler) and saved by ``state_dict()``.

Coupled vs decoupled decay.  A penalty in the loss is *coupled*: its gradient
``lam * w`` enters the optimizer with the data gradient, so momentum accumulates it
and Adam divides it by sqrt(v): weights with large gradients decay less.  AdamW
(Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization") instead shrinks
``w <- w - lr * wd * w`` outside the adaptive scaling; use :func:`decay_param_groups`
with ``torch.optim.AdamW`` for that, and no L2 penalty.  With plain SGD (no momentum)
both give w <- (1 - lr * lam) w - lr * grad J.  torch's ``SGD(weight_decay=lam)`` and
``Adam(weight_decay=lam)`` are coupled: they equal ``L2(lam, convention="half")``.

Keras vocabulary, at the end of this file: ``l1``, ``l2``, ``l1_l2`` build a
:class:`WeightRegularizer` called on a *tensor*; ``regularize(module, kernel_regularizer=...)``
attaches them to a layer and ``regularization_loss(model)`` sums everything attached.
The capitalised classes (``L1``, ``L2``, ...) are called on a *model*.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence, Union

import torch
from torch import Tensor, nn

from regularkit.errors import RegularkitError, check_choice, check_int, check_non_negative, check_number

__all__ = [
    "DEFAULT_MODULES", "select_parameters", "elastic_net_penalty", "lp_penalty",
    "L2", "L1", "ElasticNet", "Lp", "ActivityPenalty", "decay_param_groups", "weight_sparsity",
    "WeightRegularizer", "l1", "l2", "l1_l2", "regularize", "regularization_loss",
]

#: Layers whose ``weight`` is a penalised/constrained/initialised "kernel" by default.
DEFAULT_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)

Strength = Union[float, Callable[[int], float]]


def select_parameters(model: nn.Module, modules=DEFAULT_MODULES, pattern: str | None = None
                      ) -> list[tuple[str, nn.Parameter]]:
    """``(qualified name, parameter)`` pairs chosen by module type and name pattern.

    ``modules``: a type or tuple of types -> the ``weight`` of each such module;
    ``None`` -> every parameter.  ``pattern``: keep names where ``re.search`` matches.
    A parameter shared by several modules (tied weights) appears once.
    """
    if not isinstance(model, nn.Module):
        raise RegularkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    types = _check_types(modules)
    regex = _check_pattern(pattern)
    if types is None:
        pairs = list(model.named_parameters())
    else:
        pairs = [(f"{prefix}.weight" if prefix else "weight", m.weight)
                 for prefix, m in model.named_modules()
                 if isinstance(m, types) and isinstance(getattr(m, "weight", None), nn.Parameter)]
    seen: set[int] = set()
    out = []
    for name, p in pairs:
        if id(p) in seen or (regex is not None and not regex.search(name)):
            continue
        seen.add(id(p))
        out.append((name, p))
    return out


def _check_types(modules):
    if modules is None:
        return None
    types = (modules,) if isinstance(modules, type) else tuple(modules) if isinstance(modules, (tuple, list)) else None
    if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
        raise RegularkitError(f"modules must be None or a tuple of nn.Module types, got {modules!r}")
    return types


def _check_pattern(pattern):
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise RegularkitError(f"pattern must be a regular expression string, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise RegularkitError(f"pattern is not a valid regular expression: {pattern!r} ({exc})") from None


def _zero(tensors: Sequence[Tensor]) -> Tensor:
    # The sum starts from a 0-d zero of the tensors' dtype/device so an empty selection is a valid loss term.
    return tensors[0].new_zeros(()) if tensors else torch.zeros(())


def elastic_net_penalty(tensors: Iterable[Tensor], *, l1: float = 0.0, l2: float = 0.0,
                        convention: str = "sum", n: int | None = None) -> Tensor:
    """``(l1 * sum|w| + c * l2 * sum w^2) / n`` over all ``tensors``; ``c`` is 1 ("sum") or 1/2 ("half").

    With ``l1=0`` this is L2 / weight decay (Krogh & Hertz 1992), with ``l2=0`` the lasso
    penalty (Tibshirani 1996), both together the elastic net (Zou & Hastie 2005);
    cs231n's R(W) = sum beta W^2 + |W| times lambda is ``l1=lambda, l2=lambda*beta``.
    """
    tensors = list(tensors)
    check_choice("convention", convention, ("sum", "half"))
    total = _zero(tensors)
    c = 0.5 if convention == "half" else 1.0
    for w in tensors:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + (c * l2) * w.square().sum()  # square(), not pow: exact 2w gradient
    return total / n if n is not None else total


def lp_penalty(tensors: Iterable[Tensor], p: float, strength: float = 1.0, *,
               root: bool = False, n: int | None = None) -> Tensor:
    """``strength * sum |w|^p`` (or ``strength * (sum |w|^p)^(1/p)``, the p-norm of the lecture, with ``root``).

    The separable form (``root=False``) makes ``Lp(2)`` the "sum" L2 and ``Lp(1)`` the L1
    penalty; ``root=True`` is ||theta||_p over all tensors together, whose gradient is
    undefined when every weight is zero.
    """
    tensors = list(tensors)
    total = _zero(tensors)
    for w in tensors:
        total = total + w.abs().pow(p).sum()
    if root:
        total = total.pow(1.0 / p)
    total = strength * total
    return total / n if n is not None else total


def _check_strength(name: str, value: Strength) -> Strength:
    if callable(value):
        return value
    return check_non_negative(name, value)


def _check_n(n):
    return None if n is None else check_int("n", n, minimum=1)


class _Scheduled:
    """Step counter shared by every penalty: strengths may be schedules ``f(step)``."""

    step_count: int = 0

    def step(self) -> None:
        """Advance the schedule by one optimizer step."""
        self.step_count += 1

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = check_int("step_count", state["step_count"], minimum=0)

    def _at(self, name: str, value: Strength) -> float:
        if not callable(value):
            return value
        return check_non_negative(f"{name} at step {self.step_count}", value(self.step_count))


class _WeightPenalty(_Scheduled):
    """``penalty(model) -> scalar tensor`` over :func:`select_parameters`."""

    def __init__(self, *, n, modules, pattern):
        self.n = _check_n(n)
        self.modules = _check_types(modules)
        self.pattern = pattern
        _check_pattern(pattern)
        self.step_count = 0

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters this penalty applies to in ``model``."""
        return [p for _, p in select_parameters(model, self.modules, self.pattern)]

    def __call__(self, model: nn.Module) -> Tensor:
        return self._value(self.parameters(model))

    def __repr__(self) -> str:
        # Strengths first, selection last; the module types print by name.
        items = {k: v for k, v in vars(self).items() if k not in ("modules", "n", "pattern", "step_count")}
        items.update(n=self.n, pattern=self.pattern)
        args = ", ".join(f"{k}={v!r}" for k, v in items.items())
        mods = "None" if self.modules is None else "(" + ", ".join(t.__name__ for t in self.modules) + ")"
        return f"{type(self).__name__}({args}, modules={mods})"


class L2(_WeightPenalty):
    """L2 / weight decay: ``strength * sum w^2`` ("sum") or ``strength / 2 * ||w||^2`` ("half"), over ``n``.

    Gradient: ``2 * strength * w`` ("sum") or ``strength * w`` ("half").  Shrinks every
    weight in proportion to its size; the MAP estimate under a Gaussian prior.
    """

    def __init__(self, strength: Strength = 1e-4, *, convention: str = "sum", n: int | None = None,
                 modules=DEFAULT_MODULES, pattern: str | None = None):
        super().__init__(n=n, modules=modules, pattern=pattern)
        self.strength = _check_strength("strength", strength)
        self.convention = check_choice("convention", convention, ("sum", "half"))

    def _value(self, params):
        return elastic_net_penalty(params, l2=self._at("strength", self.strength),
                                   convention=self.convention, n=self.n)


class L1(_WeightPenalty):
    """L1 / lasso: ``strength * sum |w|`` over ``n``; gradient ``strength * sign(w)`` (0 at w=0).

    A constant pull towards zero drives small weights exactly to zero (sparsity);
    the MAP estimate under a Laplace prior.
    """

    def __init__(self, strength: Strength = 1e-4, *, n: int | None = None,
                 modules=DEFAULT_MODULES, pattern: str | None = None):
        super().__init__(n=n, modules=modules, pattern=pattern)
        self.strength = _check_strength("strength", strength)

    def _value(self, params):
        return elastic_net_penalty(params, l1=self._at("strength", self.strength), n=self.n)


class ElasticNet(_WeightPenalty):
    """Elastic net (Zou & Hastie 2005): ``l1 * sum|w| + c * l2 * sum w^2`` over ``n`` (Keras' l1/l2 pair).

    cs231n writes ``lambda * sum(beta * W^2 + |W|)``: build that with :meth:`from_beta`.
    """

    def __init__(self, l1: Strength = 1e-4, l2: Strength = 1e-4, *, convention: str = "sum",
                 n: int | None = None, modules=DEFAULT_MODULES, pattern: str | None = None):
        super().__init__(n=n, modules=modules, pattern=pattern)
        self.l1 = _check_strength("l1", l1)
        self.l2 = _check_strength("l2", l2)
        self.convention = check_choice("convention", convention, ("sum", "half"))

    @classmethod
    def from_beta(cls, strength: float, beta: float, **kwargs) -> "ElasticNet":
        """cs231n's ``strength * sum(beta * w^2 + |w|)``: ``l1 = strength``, ``l2 = strength * beta``."""
        strength = check_non_negative("strength", strength)
        return cls(l1=strength, l2=strength * check_non_negative("beta", beta), **kwargs)

    def _value(self, params):
        return elastic_net_penalty(params, l1=self._at("l1", self.l1), l2=self._at("l2", self.l2),
                                   convention=self.convention, n=self.n)


class Lp(_WeightPenalty):
    """``strength * sum |w|^p`` (``root=True``: ``strength * ||w||_p``), p >= 1, over ``n``.

    Gradient ``strength * p * |w|^(p-1) * sign(w)``: p = 1 and 2 recover L1 and L2 ("sum").
    """

    def __init__(self, p: float = 2.0, strength: Strength = 1e-4, *, root: bool = False,
                 n: int | None = None, modules=DEFAULT_MODULES, pattern: str | None = None):
        super().__init__(n=n, modules=modules, pattern=pattern)
        self.p = check_number("p", p)
        if self.p < 1:  # below 1 the "norm" is not convex and its gradient at 0 is infinite
            raise RegularkitError(f"p must be >= 1, got {p}")
        self.strength = _check_strength("strength", strength)
        self.root = bool(root)

    def _value(self, params):
        return lp_penalty(params, self.p, self._at("strength", self.strength), root=self.root, n=self.n)


class ActivityPenalty(_Scheduled):
    """Penalty on chosen modules' outputs h: ``l1 * sum|h| + l2 * sum h^2`` (Keras ``activity_regularizer``).

    Representational sparsity (Goodfellow et al. 2016, sec. 7.10): J~ = J + lambda * ||h||_1.

    Lifecycle.  Construction attaches a forward hook to each module (``detach()`` removes
    them, ``attach()`` puts them back; also a context manager).  Every forward of a hooked
    module *in training mode* adds its term to a running total; eval-mode forwards add
    nothing, so validation passes never leak into a training loss.  ``penalty(model)``
    returns the total and clears it, so each batch starts empty; ``value`` peeks without
    clearing, and ``reset()`` drops a total that will not be used (an aborted batch).
    ``reduction="sum"`` is Keras 3; ``"mean"`` divides each term by the batch size
    (dim 0), as tf.keras 2 did, making the strength independent of the batch size.
    """

    def __init__(self, modules: nn.Module | Sequence[nn.Module], *, l1: Strength = 0.0,
                 l2: Strength = 0.0, reduction: str = "sum"):
        mods = [modules] if isinstance(modules, nn.Module) else list(modules) if isinstance(modules, (list, tuple)) else None
        if not mods or not all(isinstance(m, nn.Module) for m in mods):
            raise RegularkitError(f"modules must be an nn.Module or a non-empty list of them, got {modules!r}")
        self.modules = mods
        self.l1 = _check_strength("l1", l1)
        self.l2 = _check_strength("l2", l2)
        self.reduction = check_choice("reduction", reduction, ("sum", "mean"))
        self.step_count = 0
        self._terms: list[Tensor] = []
        self._handles: list = []
        self.attach()

    def attach(self) -> "ActivityPenalty":
        """Register the forward hooks (no-op when already attached)."""
        if not self._handles:
            self._handles = [m.register_forward_hook(self._hook) for m in self.modules]
        return self

    def detach(self) -> None:
        """Remove the forward hooks and drop any accumulated value."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._terms = []

    def _hook(self, module, inputs, output):
        if not module.training:
            return
        outs = output if isinstance(output, (tuple, list)) else (output,)
        l1, l2 = self._at("l1", self.l1), self._at("l2", self.l2)
        for h in outs:
            if isinstance(h, Tensor):
                term = elastic_net_penalty([h], l1=l1, l2=l2)
                self._terms.append(term / h.shape[0] if self.reduction == "mean" and h.dim() else term)

    @property
    def value(self) -> Tensor:
        """The total accumulated since the last read or reset, without clearing it."""
        return torch.stack(self._terms).sum() if self._terms else torch.zeros(())

    def reset(self) -> None:
        self._terms = []

    def __call__(self, model: nn.Module | None = None) -> Tensor:
        """The accumulated total; clears it.  ``model`` is accepted for the penalty contract."""
        out = self.value
        self._terms = []
        return out

    def __enter__(self) -> "ActivityPenalty":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    def __getstate__(self):
        # Accumulated terms hold autograd graphs, which cannot be pickled; a copy starts empty.
        state = dict(self.__dict__)
        state["_terms"] = []
        return state

    def __repr__(self) -> str:
        return (f"ActivityPenalty(modules=[{', '.join(type(m).__name__ for m in self.modules)}], "
                f"l1={self.l1!r}, l2={self.l2!r}, reduction={self.reduction!r})")


def decay_param_groups(model: nn.Module, weight_decay: float, *, modules=DEFAULT_MODULES,
                       pattern: str | None = None) -> list[dict]:
    """``[{"params": decayed, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]`` for AdamW.

    Decoupled decay (Loshchilov & Hutter 2019) shrinks ``w <- w - lr * wd * w`` outside
    Adam's scaling; the split keeps biases and normalisation parameters out of it
    (nanoGPT's ``configure_optimizers``), selecting by module type rather than rank.
    Only parameters with ``requires_grad`` are listed; each appears exactly once.
    """
    wd = check_non_negative("weight_decay", weight_decay)
    chosen = {id(p) for _, p in select_parameters(model, modules, pattern)}
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if id(p) in chosen else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def weight_sparsity(model: nn.Module, threshold: float = 1e-3, *, modules=DEFAULT_MODULES,
                    pattern: str | None = None) -> float:
    """Fraction of the selected weights with ``|w| < threshold`` (how much L1 has zeroed)."""
    threshold = check_non_negative("threshold", threshold)
    params = [p for _, p in select_parameters(model, modules, pattern)]
    total = sum(p.numel() for p in params)
    if total == 0:
        raise RegularkitError(f"weight_sparsity: no parameter selected by modules={modules!r}, pattern={pattern!r}")
    with torch.no_grad():
        small = sum(int((p.abs() < threshold).sum()) for p in params)
    return small / total


# Keras vocabulary (regularizers called on a tensor, attached per layer) lives in
# regularkit.regularizers; its names are re-exported here, where the lectures' readers look.
from regularkit.regularizers import (  # noqa: E402
    WeightRegularizer, l1, l1_l2, l2, regularization_loss, regularize,
)
