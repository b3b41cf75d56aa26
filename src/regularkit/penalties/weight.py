"""Weight penalties on a model: L2 (weight decay), L1, elastic net, Lp; and decoupled decay groups.

``penalty(model) -> scalar tensor`` over the parameters chosen by
:func:`regularkit._util.params.select_parameters`: by default every trainable
weight with ``ndim >= 2`` (Linear/Conv kernels, attention projections,
embeddings, LSTM/GRU matrices, a ViT's tokens) except names ending in ``.bias``
and those a ``no_weight_decay()`` method names -- timm's and nanoGPT's rule;
never biases or normalisation parameters.  ``modules=DEFAULT_MODULES`` gives
the older module-type rule (Linear/Conv ``weight`` only), ``modules="all"``
every parameter.  Each class is a thin object over a kernel of
:mod:`regularkit.penalties.functional`, round-trips through ``get_config()`` /
``from_config()`` (Keras' habit; module types are stored by their ``torch.nn``
name), and is registered in :data:`REGISTRY` under its Keras-style name.
``schedule_unit`` says whether ``fit`` advances a scheduled strength per step or
per epoch (:mod:`regularkit.penalties.schedule`).

One L2 convention.  ``L2(lam)`` is ``lam / 2 * ||w||^2`` with gradient ``lam * w``
(``convention="half"``, the default), everywhere in regularkit: the study's ``reg.l2``
(recipe ``l2``, search spaces, ``--tune``), ``ElasticNet``'s ``l2``, and torch's coupled
``SGD(weight_decay=lam)`` / ``Adam(weight_decay=lam)``, which it equals step for step.
It is the lecture's primary form (deck 000, Goodfellow et al. 2016 sec. 7.1.1:
``J~ = alpha/2 w^T w + J``, gradient ``alpha w``), so a strength tuned by the study,
read off a torch recipe or taken from the slide means the same number here.  Keras'
``l2(lam)`` and cs231n's ``lam * sum W^2`` are twice as strong for the same ``lam``:
``L2(lam, convention="sum")`` (or :func:`regularkit.penalties.keras.l2`, Keras' own
vocabulary, which keeps Keras' formula) reproduces them.  Before issue 24 ``L2`` and
``ElasticNet`` defaulted to ``"sum"``; a saved config names its ``convention``, so
configs written then still load with the meaning they had.

Two ways to apply one penalty.  ``penalty(model)`` returns a differentiable tensor
(add it to the loss: autograd computes its gradient, as Keras and a torch loss term
do).  ``penalty.add_grad_(model)``, after ``backward()`` and before
``optimizer.step()``, adds the closed-form gradient to each ``p.grad`` with
``torch._foreach_*`` ops and returns the value (:mod:`regularkit.penalties.fused`):
the same math at a fraction of the cost.  ``fused=True`` (default) tells
:func:`regularkit.train.fit` to use the second way for this loss term; ``fused=False``
keeps it in the graph.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from regularkit._util.checks import check_choice, check_int, check_non_negative, check_number
from regularkit._util.params import (
    ALL,
    check_pattern,
    check_selection,
    names_to_types,
    select_parameters,
    types_to_names,
)
from regularkit.errors import RegularkitError
from regularkit.penalties.functional import CONVENTIONS, elastic_net_penalty, lp_penalty
from regularkit.penalties.fused import elastic_net_add_grad_, lp_add_grad_
from regularkit.penalties.schedule import Scheduled, Strength, check_strength

__all__ = ["WeightPenalty", "L2", "L1", "ElasticNet", "Lp", "decay_param_groups"]


def _check_n(n):
    return None if n is None else check_int("n", n, minimum=1)


class WeightPenalty(Scheduled):
    """Base: ``penalty(model) -> scalar tensor`` over the selected parameters; configs round-trip.

    ``add_grad_(model) -> value`` is the fused path: the same penalty's gradient added to
    ``p.grad`` after ``backward()`` (see the module docstring); ``fused`` says whether
    ``fit`` takes it.
    """

    #: constructor arguments, in order, that make up the config (besides the selection)
    _strengths: tuple[str, ...] = ()

    def __init__(self, *, n, modules, pattern, schedule_unit, fused=True):
        self.n = _check_n(n)
        self.modules = check_selection(modules)
        check_pattern(pattern)
        self.pattern = pattern
        self.init_schedule(schedule_unit)
        if not isinstance(fused, bool):
            raise RegularkitError(f"fused must be True or False, got {fused!r}")
        self.fused = fused

    def parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters this penalty applies to in ``model`` (read at every call; frozen ones are skipped)."""
        return [p for _, p in select_parameters(model, self.modules, self.pattern)]

    #: the kernels, both called with :meth:`_kwargs`: the value (autograd) and the fused gradient
    _penalty = staticmethod(elastic_net_penalty)
    _penalty_add_grad_ = staticmethod(elastic_net_add_grad_)

    def __call__(self, model: nn.Module) -> Tensor:
        """The penalty as a differentiable 0-d tensor: add it to the loss (autograd computes its gradient)."""
        return self._penalty(self.parameters(model), **self._kwargs())

    def add_grad_(self, model: nn.Module) -> Tensor:
        """Add this penalty's gradient to each selected ``p.grad``; return its value (detached, pre-step weights).

        Call after ``loss.backward()`` (gradients unscaled, if a loss scaler is used) and before
        ``optimizer.step()``.  The gradient and the value are those of ``penalty(model)`` at the
        current strength, to float rounding; a selected parameter whose ``grad`` is None gets one.
        """
        return self._penalty_add_grad_(self.parameters(model), **self._kwargs())

    def _kwargs(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """The kernels' arguments at the current step (a scheduled strength is read here)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments; ``modules`` as ``torch.nn`` type names (JSON unless a strength is a callable)."""
        return {**{k: getattr(self, k) for k in self._strengths}, "n": self.n,
                "modules": types_to_names(self.modules), "pattern": self.pattern, "schedule_unit": self.schedule_unit,
                "fused": self.fused}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "WeightPenalty":
        config = dict(config)
        if "modules" in config:
            config["modules"] = names_to_types(config["modules"])
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    __hash__ = None  # mutable (the step counter): not hashable, like nn.Module state

    def __repr__(self) -> str:
        # Strengths first, selection last; the module types print by name.
        items = {k: v for k, v in self.get_config().items() if k != "modules"}
        args = ", ".join(f"{k}={v!r}" for k, v in items.items())
        mods = (repr(self.modules) if self.modules is None or self.modules == ALL
                else "(" + ", ".join(t.__name__ for t in self.modules) + ")")
        return f"{type(self).__name__}({args}, modules={mods})"


class L2(WeightPenalty):
    """L2 / weight decay: ``strength / 2 * ||w||^2`` (default, "half") or ``strength * sum w^2`` ("sum"), over ``n``.

    Gradient: ``strength * w`` ("half": torch's ``weight_decay``, the study's ``reg.l2``) or
    ``2 * strength * w`` ("sum": Keras' ``l2``, cs231n).  Shrinks every weight in proportion
    to its size; the MAP estimate under a Gaussian prior (Krogh & Hertz 1992).
    """

    _strengths = ("strength", "convention")

    def __init__(self, strength: Strength = 1e-4, *, convention: str = "half", n: int | None = None,
                 modules=None, pattern: str | None = None, schedule_unit: str = "step", fused: bool = True):
        super().__init__(n=n, modules=modules, pattern=pattern, schedule_unit=schedule_unit, fused=fused)
        self.strength = check_strength("strength", strength)
        self.convention = check_choice("convention", convention, CONVENTIONS)

    def _kwargs(self) -> dict:
        return {"l2": self.strength_now("strength", self.strength), "convention": self.convention, "n": self.n}


class L1(WeightPenalty):
    """L1 / lasso: ``strength * sum |w|`` over ``n``; gradient ``strength * sign(w)`` (0 at w=0).

    A constant pull towards zero drives small weights exactly to zero (sparsity);
    the MAP estimate under a Laplace prior.
    """

    _strengths = ("strength",)

    def __init__(self, strength: Strength = 1e-4, *, n: int | None = None,
                 modules=None, pattern: str | None = None, schedule_unit: str = "step", fused: bool = True):
        super().__init__(n=n, modules=modules, pattern=pattern, schedule_unit=schedule_unit, fused=fused)
        self.strength = check_strength("strength", strength)

    def _kwargs(self) -> dict:
        return {"l1": self.strength_now("strength", self.strength), "n": self.n}


class ElasticNet(WeightPenalty):
    """Elastic net (Zou & Hastie 2005): ``l1 * sum|w| + c * l2 * sum w^2`` over ``n``.

    ``c = 1/2`` by default (``"half"``: the L2 part is :class:`L2`'s, gradient ``l2 * w``);
    ``convention="sum"`` (``c = 1``) is Keras' ``l1_l2``.  cs231n writes
    ``lambda * sum(beta * W^2 + |W|)``: build that with :meth:`from_beta`.
    """

    _strengths = ("l1", "l2", "convention")

    def __init__(self, l1: Strength = 1e-4, l2: Strength = 1e-4, *, convention: str = "half",
                 n: int | None = None, modules=None, pattern: str | None = None, schedule_unit: str = "step",
                 fused: bool = True):
        super().__init__(n=n, modules=modules, pattern=pattern, schedule_unit=schedule_unit, fused=fused)
        self.l1 = check_strength("l1", l1)
        self.l2 = check_strength("l2", l2)
        self.convention = check_choice("convention", convention, CONVENTIONS)

    @classmethod
    def from_beta(cls, strength: float, beta: float, **kwargs) -> "ElasticNet":
        """cs231n's ``strength * sum(beta * w^2 + |w|)``: ``l1 = strength``, ``l2 = strength * beta``, "sum".

        cs231n's squared term has no 1/2, so ``convention`` defaults to ``"sum"`` here.
        """
        strength = check_non_negative("strength", strength)
        kwargs.setdefault("convention", "sum")
        return cls(l1=strength, l2=strength * check_non_negative("beta", beta), **kwargs)

    def _kwargs(self) -> dict:
        return {"l1": self.strength_now("l1", self.l1), "l2": self.strength_now("l2", self.l2),
                "convention": self.convention, "n": self.n}


class Lp(WeightPenalty):
    """``strength * sum |w|^p`` (``root=True``: ``strength * ||w||_p``), p >= 1, over ``n``.

    Gradient ``strength * p * |w|^(p-1) * sign(w)``: p = 1 recovers L1, p = 2 ``L2(strength,
    convention="sum")`` (the lecture's ``||theta||_p^p`` has no 1/2: twice ``L2(strength)``).
    """

    _strengths = ("p", "strength", "root")

    def __init__(self, p: float = 2.0, strength: Strength = 1e-4, *, root: bool = False,
                 n: int | None = None, modules=None, pattern: str | None = None, schedule_unit: str = "step",
                 fused: bool = True):
        super().__init__(n=n, modules=modules, pattern=pattern, schedule_unit=schedule_unit, fused=fused)
        self.p = check_number("p", p)
        if self.p < 1:  # below 1 the "norm" is not convex and its gradient at 0 is infinite
            raise RegularkitError(f"p must be >= 1, got {p}")
        self.strength = check_strength("strength", strength)
        if not isinstance(root, bool):
            raise RegularkitError(f"root must be True or False, got {root!r}")
        self.root = root

    _penalty = staticmethod(lp_penalty)
    _penalty_add_grad_ = staticmethod(lp_add_grad_)

    def _kwargs(self) -> dict:
        return {"p": self.p, "strength": self.strength_now("strength", self.strength), "root": self.root, "n": self.n}


def decay_param_groups(model: nn.Module, weight_decay: float, *, modules=None,
                       pattern: str | None = None) -> list[dict]:
    """``[{"params": decayed, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]`` for AdamW.

    Decoupled decay (Loshchilov & Hutter 2019) shrinks ``w <- w - lr * wd * w`` outside
    Adam's scaling; the split keeps biases and normalisation parameters out of it.  The
    decayed group is :func:`select_parameters` (default: every ``ndim >= 2`` weight not
    named by ``no_weight_decay()``), the same set as timm's ``param_groups_weight_decay``
    and nanoGPT's ``configure_optimizers``; ``modules=DEFAULT_MODULES`` restores the
    Linear/Conv-only split.  timm lists the no-decay group first; the order of groups
    does not change an optimizer's update.  Only parameters with ``requires_grad`` are
    listed (frozen ones cannot be optimised); each appears exactly once.
    """
    wd = check_non_negative("weight_decay", weight_decay)
    chosen = {id(p) for _, p in select_parameters(model, modules, pattern)}
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if id(p) in chosen else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
