"""The training step: what ``fit`` does with one batch (forward, loss, backward, optimizer step).

``fit(step=...)`` hands every batch to a *step*; :class:`StandardStep` is the default and
trains exactly as the loop always has (bit for bit under the same seed).  A technique that
needs a second forward or a second backward -- R-Drop (:mod:`regularkit.train.rdrop`), SAM
and ASAM (:mod:`regularkit.train.sam`), a consistency loss -- is another step.

The protocol
------------
A step is a callable ``step(ctx, x, y) -> StepOutput``.  ``fit`` calls it once per batch,
with the model in train mode, inside the forked and seeded global RNG (dropout masks are
reproducible), after the batch transform, with ``x`` and ``y`` on the device.

It receives ``ctx``, a :class:`StepContext`: ``model``, ``optimizer``, ``loss_fn``, the loss
terms split into ``graph_terms`` (in the autograd graph) and ``fused_terms`` (weight
penalties that add their closed-form gradient after backward:
:mod:`regularkit.penalties.fused`), ``precision`` (autocast) and ``scaler`` (fp16 loss
scaling, else None), the loop's ``generator``, and the operations a step is made of::

    with ctx.autocast():                          # bf16 / fp16 autocast, or nothing in fp32
        logits = ctx.forward(x)                   # model(x); the first call checks shapes and labels
        loss = ctx.add_terms(ctx.loss(logits, y)) # loss_fn, then each graph term; both checked 1-element
    ctx.zero_grad()
    ctx.backward(loss)                            # scaled under fp16
    objective = ctx.add_fused(loss.detach())      # fp16: unscale first; fused penalties' grads and values
    ctx.check(objective)                          # divergence: raises Diverged, nothing is applied
    ctx.apply()                                   # optimizer.step(), or scaler.step + update
    return StepOutput(objective, logits)

It must leave the gradient to apply in ``p.grad``, call ``ctx.check`` on the objective
before ``ctx.apply`` (a non-finite value, or one above ``max_loss``, raises
:class:`Diverged`; ``fit`` records it in ``History.diverged`` and stops with the model as
it was before the step), and return a :class:`StepOutput`: ``loss`` is the detached 0-d
objective the run records (``train_objective``: loss + penalties, the value that was
checked), ``logits`` the batch's outputs (or None).  What follows the update stays in the
loop: ``after_step`` hooks (constraints, EMA), the schedules of loss terms, the scheduler.

fp16: GradScaler's ``unscale_`` may run once per update; ``ctx.unscale_()`` calls it at
most once and is a no-op without a scaler.  A gradient that is only *read* (SAM's ascent
direction) is unscaled with ``ctx.unscale_(record=False)``: divided by the current scale
without telling the scaler, which then still checks the applied gradient for inf/NaN.

Gradient clipping (:class:`StandardStep` options, Pascanu et al. 2013): ``clip_grad_norm``
rescales the whole gradient (every parameter together) to norm <= c,
``g <- g * min(1, c / (||g|| + 1e-6))``; ``clip_grad_value`` clamps each element to
``[-c, c]``.  Both are torch's ``clip_grad_norm_`` / ``clip_grad_value_`` on the model's
parameters, applied to the true gradient: after the fused penalties' gradients are added
and, under fp16, after unscaling (torch's AMP recipe), so ``c`` means the same in every
precision.  One of the two at a time (Keras allows one of ``clipnorm``/``clipvalue`` too).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from regularkit._util.checks import check_optional_number, describe
from regularkit.errors import RegularkitError
from regularkit.train.checks import check_labels, check_scalar, first_forward
from regularkit.train.device import Precision

__all__ = ["Diverged", "StepContext", "StepOutput", "StandardStep", "is_fused"]


class Diverged(Exception):
    """Raised by :meth:`StepContext.check`: the objective is not finite or above ``max_loss``."""

    def __init__(self, value: float):
        super().__init__(f"training loss {value:.4g}")
        self.value = value


@dataclass
class StepOutput:
    """What a step returns: the recorded objective (detached, 0-d) and the batch's outputs."""

    loss: torch.Tensor
    logits: torch.Tensor | None = None


def is_fused(term) -> bool:
    """A loss term that adds its own gradient after ``backward()`` (a weight penalty with ``fused=True``)."""
    return getattr(term, "fused", False) is True and callable(getattr(term, "add_grad_", None))


class StepContext:
    """Everything a step needs for one batch, and the operations it is made of (see the module docstring).

    ``probe``: ``(x, {split: y})`` for the first forward's checks (the full training inputs,
    named in the message, and every split's labels against the model's K outputs); the
    checks run on the first call of :meth:`forward` in the run, whatever step calls it.
    """

    def __init__(self, model: nn.Module, optimizer, *, loss_fn: Callable, loss_terms: Sequence = (),
                 precision: Precision | None = None, generator: torch.Generator | None = None,
                 max_loss: float = math.inf, probe: tuple[torch.Tensor, Mapping[str, torch.Tensor]] | None = None):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.fused_terms = [t for t in loss_terms if is_fused(t)]
        self.graph_terms = [t for t in loss_terms if not is_fused(t)]
        self.precision = precision if precision is not None else Precision()
        self.scaler = self.precision.scaler()
        self.generator, self.max_loss = generator, max_loss
        self._probe = probe
        self._unscaled = False

    @property
    def params(self) -> list[torch.Tensor]:
        """The parameters the optimizer updates, in its order."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def autocast(self):
        return self.precision.autocast()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``model(x)``; the run's first call also checks the input shape and every split's labels."""
        if self._probe is None:
            return self.model(x)
        full, labels = self._probe
        logits = first_forward(self.model, x, full, "train")
        for name, y in labels.items():
            check_labels(name, y, logits)
        self._probe = None
        return logits

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``loss_fn(logits, y)``, checked to be one number."""
        return check_scalar("loss_fn", self.loss_fn(logits, y))

    def add_terms(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss + term(model)`` for each graph term, in order (each checked to be one number)."""
        for i, term in enumerate(self.graph_terms):
            loss = loss + check_scalar(f"loss_terms[{i}] ({type(term).__name__})", term(self.model))
        return loss

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._unscaled = False

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``; under fp16 the loss is multiplied by the scaler's scale first."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale_(self, *, record: bool = True) -> None:
        """Make ``p.grad`` the true gradient under fp16 (once per update); nothing without a scaler.

        ``record=False`` divides by the current scale without telling the scaler (for a
        gradient that is read, not applied: the scaler checks only what it applies).
        """
        if self.scaler is None or self._unscaled:
            return
        if record:
            self.scaler.unscale_(self.optimizer)
        else:
            grads = [p.grad for p in self.params if p.grad is not None]
            if grads:
                torch._foreach_mul_(grads, 1.0 / self.scaler.get_scale())
        self._unscaled = True

    def add_fused(self, objective: torch.Tensor, *, record: bool = True) -> torch.Tensor:
        """Add each fused term's gradient to ``p.grad`` (unscaled first under fp16); the objective plus their values."""
        if self.fused_terms:
            self.unscale_(record=record)  # the penalty's gradient is added unscaled
            for term in self.fused_terms:
                objective = objective + term.add_grad_(self.model)
        return objective

    def check(self, objective: torch.Tensor) -> float:
        """The objective as a float (one host sync); :class:`Diverged` if not finite or above ``max_loss``."""
        value = float(objective)
        if not math.isfinite(value) or value > self.max_loss:
            raise Diverged(value)
        return value

    def apply(self) -> None:
        """The optimizer's step: ``optimizer.step()``, or ``scaler.step(optimizer)`` and ``scaler.update()``."""
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self._unscaled = False

    def update(self, loss: torch.Tensor, logits: torch.Tensor, *,
               before_apply: Callable[["StepContext"], None] | None = None) -> "StepOutput":
        """The end every step shares: zero the gradients, backward, the fused penalties' gradients, the
        divergence check, the optimizer step; ``before_apply(ctx)`` runs between the gradients and the check
        (gradient clipping).  Returns ``StepOutput(objective, logits)``."""
        self.zero_grad()
        self.backward(loss)
        objective = self.add_fused(loss.detach())
        if before_apply is not None:
            before_apply(self)
        self.check(objective)
        self.apply()
        return StepOutput(objective, logits)


def _check_clip(name: str, value: Any) -> float | None:
    value = check_optional_number(name, value)
    if value is not None and value <= 0:
        raise RegularkitError(f"{name} must be > 0 or None, got {describe(value)}")
    return value


class StandardStep:
    """One forward, one backward, one optimizer step; optionally clip the gradient by norm or by value."""

    def __init__(self, *, clip_grad_norm: float | None = None, clip_grad_value: float | None = None):
        self.clip_grad_norm = _check_clip("clip_grad_norm", clip_grad_norm)
        self.clip_grad_value = _check_clip("clip_grad_value", clip_grad_value)
        if self.clip_grad_norm is not None and self.clip_grad_value is not None:
            raise RegularkitError(f"clip by norm or by value, not both: got clip_grad_norm={self.clip_grad_norm} "
                                  f"and clip_grad_value={self.clip_grad_value}")

    def get_config(self) -> dict:
        return {"clip_grad_norm": self.clip_grad_norm, "clip_grad_value": self.clip_grad_value}

    @classmethod
    def from_config(cls, config: Mapping) -> StandardStep:
        return cls(**config)

    def __repr__(self) -> str:
        return f"StandardStep(clip_grad_norm={self.clip_grad_norm}, clip_grad_value={self.clip_grad_value})"

    def clip(self, ctx: StepContext) -> None:
        """torch's ``clip_grad_norm_`` / ``clip_grad_value_`` on the model's true gradients (unscaled first)."""
        if self.clip_grad_norm is None and self.clip_grad_value is None:
            return
        ctx.unscale_()
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(ctx.model.parameters(), self.clip_grad_norm)
        else:
            torch.nn.utils.clip_grad_value_(ctx.model.parameters(), self.clip_grad_value)

    def __call__(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        with ctx.autocast():
            logits = ctx.forward(x)
            loss = ctx.add_terms(ctx.loss(logits, y))
        return ctx.update(loss, logits, before_apply=self.clip)
