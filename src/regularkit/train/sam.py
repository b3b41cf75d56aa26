"""Sharpness-aware minimization (SAM) and its adaptive variant (ASAM), as a training step.

Foret, Kleiner, Mobahi & Neyshabur (2021), "Sharpness-Aware Minimization for Efficiently
Improving Generalization" (ICLR), Algorithm 1; Kwon, Kim, Park & Choi (2021), "ASAM:
Adaptive Sharpness-Aware Minimization for Scale-Invariant Learning of Deep Neural
Networks" (ICML), Algorithm 1.  SAM minimises ``max_{||e|| <= rho} L(w + e)``; to first
order the inner maximum is at::

    SAM:   e(w) = rho * g / ||g||                       g = grad L(w)
    ASAM:  e(w) = rho * T_w^2 g / ||T_w g||              T_w = |w| + eta   (element-wise)

and one step is::

    g   = grad L_B(w)                 first forward/backward: the loss we record and check
    e   = e(w)                        the ascent step (no update)
    g'  = grad L_B(w + e)             second forward/backward, at the perturbed weights
    w  <- optimizer step from g'      applied at w (the perturbation is taken back first)

``||.||`` is the L2 norm over every parameter the optimizer updates, taken together (the
paper's m = 1: the whole batch; no m-sharpness split).  A zero gradient perturbs nothing
(``e = 0``, where ``g / ||g||`` would be 0/0).  ASAM's element-wise ``T_w`` is applied to
every parameter, biases included (as the davda54/sam port does); the authors' code
(SamsungLabs/ASAM) applies it to parameters whose name contains "weight" and leaves the
others, biases, with ``T = 1``: a rule by name we do not copy.  ``eta = 0.01`` is the
paper's default, and ASAM wants a larger ``rho`` than SAM (the authors use 0.5 and more).

What the step does with regularkit's parts:

* the loss is ``loss_fn`` plus every loss term, in both passes: graph terms in the graph,
  fused weight penalties (:mod:`regularkit.penalties.fused`) through their closed-form
  gradient at ``w`` (first pass) and at ``w + e`` (second), so a fused penalty trains as
  the same penalty in the graph does;
* batch norm: the second pass normalizes with its own batch statistics (train mode) but
  the running statistics keep the first pass's update only (Foret et al.'s reference code
  and the PyTorch ports freeze them for the second pass; here they are restored, which is
  exact where momentum 0 would turn a non-finite batch variance into NaN);
* dropout draws new masks in the second pass (the global RNG, seeded by ``fit``);
* precision: both passes under autocast; under fp16 the first gradient is divided by the
  scale (its direction is all SAM needs; a non-finite first gradient, fp16 overflow,
  perturbs nothing and the scaler then skips the step the second pass overflows too), the
  second is unscaled and checked by the scaler as usual;
* divergence: the first pass's objective is recorded and checked before anything moves;
  the second pass's is checked too, after the weights are restored;
* ``after_step`` hooks (EMA, constraints) see the updated weights, never ``w + e``.

Where we differ from peers: the widely used PyTorch port (davda54/sam) wraps the base
optimizer and takes ASAM's ``eta`` as 0; here SAM is a step, so the optimizer, its
schedule and ``fit``'s checks stay as they are, and ``eta`` defaults to the paper's 0.01
(``eta=0`` gives the port's ASAM).
"""
from __future__ import annotations

import contextlib
import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase

from regularkit._util.checks import check_bool, check_non_negative, check_positive
from regularkit.train.step import StepContext, StepOutput

__all__ = ["SAM", "frozen_norm_statistics", "sam_perturbation"]


def sam_perturbation(params: Sequence[Tensor], grads: Sequence[Tensor], rho: float, *, adaptive: bool = False,
                     eta: float = 0.01) -> list[Tensor]:
    """The ascent step ``e`` for each parameter: ``rho g/||g||`` (SAM) or ``rho T^2 g/||T g||`` (ASAM, T = |w| + eta).

    The norm is over all tensors together; ``e = 0`` where the norm is 0.
    """
    grads = list(grads)
    if not grads:
        return []
    with torch.no_grad():
        if adaptive:
            t = torch._foreach_add(torch._foreach_abs(list(params)), eta)
            direction = torch._foreach_mul(grads, t)              # T g
        else:
            t, direction = None, grads
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(direction, 2)), 2)
        scale = rho / torch.where(norm > 0, norm, torch.ones_like(norm))
        e = torch._foreach_mul(direction, t) if adaptive else [g.clone() for g in grads]   # T^2 g, or g
        torch._foreach_mul_(e, scale)
    return e


@contextlib.contextmanager
def frozen_norm_statistics(model: nn.Module):
    """Run a forward pass that leaves every normalization layer's running statistics as they were."""
    saved = [(m, {k: b.clone() for k, b in m.named_buffers(recurse=False) if b is not None})
             for m in model.modules() if isinstance(m, _NormBase) and m.track_running_stats]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, buffers in saved:
                for name, value in buffers.items():
                    getattr(m, name).copy_(value)


class SAM:
    """The SAM / ASAM training step: two forward/backward passes, the update from the gradient at ``w + e``.

    ``rho``: the neighbourhood radius (Foret et al.: 0.05 on CIFAR-10); ``adaptive``: ASAM;
    ``eta``: ASAM's offset in ``T_w = |w| + eta`` (Kwon et al.: 0.01).
    """

    def __init__(self, rho: float = 0.05, *, adaptive: bool = False, eta: float = 0.01):
        self.rho = check_positive("rho", rho)
        self.adaptive = check_bool("adaptive", adaptive)
        self.eta = check_non_negative("eta", eta)

    def get_config(self) -> dict:
        return {"rho": self.rho, "adaptive": self.adaptive, "eta": self.eta}

    @classmethod
    def from_config(cls, config: Mapping) -> SAM:
        return cls(**config)

    def __repr__(self) -> str:
        return f"SAM(rho={self.rho}, adaptive={self.adaptive}, eta={self.eta})"

    def _objective(self, ctx: StepContext, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        with ctx.autocast():
            logits = ctx.forward(x)
            loss = ctx.add_terms(ctx.loss(logits, y))
        ctx.zero_grad()
        ctx.backward(loss)
        return loss, logits

    def __call__(self, ctx: StepContext, x: Tensor, y: Tensor) -> StepOutput:
        loss, logits = self._objective(ctx, x, y)
        ctx.unscale_(record=False)                       # the direction needs the true gradient
        objective = ctx.add_fused(loss.detach(), record=False)
        ctx.check(objective)
        params = [p for p in ctx.params if p.grad is not None]
        grads = [p.grad for p in params]
        e = sam_perturbation(params, grads, self.rho, adaptive=self.adaptive, eta=self.eta)
        if ctx.scaler is not None and e and not math.isfinite(float(torch.stack(torch._foreach_norm(e)).sum())):
            e = []                                       # fp16 overflow: no ascent; the scaler skips the step
            params = []
        saved = [p.detach().clone() for p in params]
        try:
            with torch.no_grad():
                if e:
                    torch._foreach_add_(params, e)
            with frozen_norm_statistics(ctx.model):
                loss2, _ = self._objective(ctx, x, y)
            objective2 = ctx.add_fused(loss2.detach())
        finally:
            with torch.no_grad():
                for p, w in zip(params, saved):
                    p.copy_(w)
        ctx.check(objective2)
        ctx.apply()
        return StepOutput(objective, logits)
