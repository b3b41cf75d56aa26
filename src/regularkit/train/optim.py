"""Optimizers and learning-rate schedules from an :class:`OptimConfig`.

``optim.weight_decay`` is applied by the optimizer to the *weights only*
(:func:`regularkit.penalties.decay_param_groups`: every trainable parameter with
``ndim >= 2`` decays -- Linear/Conv kernels, attention projections, embeddings,
recurrent matrices -- except those a ``no_weight_decay()`` method names; biases
and normalization parameters do not: timm's and nanoGPT's split).  What it means depends on the
optimizer: torch's SGD adds ``wd * w`` to the gradient before momentum, which
is the *coupled* L2 penalty (the same as ``reg.l2`` with the "half"
convention); AdamW shrinks ``w <- w - lr * wd * w`` outside the adaptive
scaling, the *decoupled* decay of Loshchilov & Hutter (2019).

Decoupled weight decay for any optimizer (:func:`decoupled_weight_decay`):
Loshchilov & Hutter (2019), "Decoupled Weight Decay Regularization", SGDW and AdamW::

    w <- w - lr * u - lr * wd * w          (u: the optimizer's update from the gradient)

The decay acts on the *pre-step* weights, as in the paper's Algorithms 1-2 and in
``torch.optim.AdamW`` (``w.mul_(1 - lr * wd)`` before the Adam update).  It is a step
pre-hook on the optimizer: before every ``optimizer.step()`` the chosen weights shrink by
``1 - lr * wd`` (one ``torch._foreach_mul_`` per parameter group, with that group's
current ``lr``); the optimizer then subtracts ``lr * u``, and ``u`` does not depend on the
weights (the optimizer itself has ``weight_decay=0``), so the result is the formula above.
``Adam`` plus this hook is ``AdamW`` bit for bit; ``SGD(momentum)`` plus it is SGDW.  A
step skipped by fp16's GradScaler (inf/NaN gradients) skips the decay too.  Where we differ
from the paper on purpose: its decay is ``eta_t * lambda * w`` with ``eta_t`` the schedule
multiplier only; ours (and torch's) is ``lr * wd * w`` with ``lr = alpha * eta_t``, so
``wd = lambda / alpha``.  Decaying *after* the step instead, ``(1 - lr*wd) (w - lr*u)``,
differs by ``lr^2 * wd * u``.
"""
from __future__ import annotations

import math

from typing import Iterable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from regularkit._util.checks import check_instance, check_int, check_non_negative, describe
from regularkit.errors import RegularkitError
from regularkit.penalties import decay_param_groups
from regularkit.train.config import OptimConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """``[{"params": weights, "weight_decay": wd}, {"params": biases and norms, "weight_decay": 0}]``, if not empty."""
    groups = decay_param_groups(model, weight_decay)
    return [g for g in groups if g["params"]]


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    check_instance("cfg", cfg, OptimConfig, "an OptimConfig")
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def schedule_factor(cfg, epoch: int) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch``."""
    check_instance("cfg", cfg, OptimConfig, "an OptimConfig")
    epoch = check_int("epoch", epoch, minimum=0)
    if cfg.schedule == "step":
        return cfg.gamma ** (epoch // cfg.step_size)
    if cfg.schedule == "cosine":
        # Cosine annealing to 0 over the run (Loshchilov & Hutter 2017, no restarts).
        return 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
    return 1.0


def make_scheduler(optimizer: torch.optim.Optimizer, cfg) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-epoch scheduler: call ``scheduler.step()`` once at the end of each epoch."""
    check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    check_instance("cfg", cfg, OptimConfig, "an OptimConfig")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: schedule_factor(cfg, e))


def decoupled_decay_(params: list[torch.Tensor], lr: float, weight_decay: float) -> None:
    """``w <- (1 - lr * weight_decay) * w`` in place for every tensor (one foreach kernel): the decoupled decay."""
    if params and weight_decay != 0:
        with torch.no_grad():
            torch._foreach_mul_(params, 1 - lr * weight_decay)


class DecoupledWeightDecay:
    """An optimizer step pre-hook: decays ``params`` by ``1 - lr * weight_decay`` with each group's current lr.

    Build it with :func:`decoupled_weight_decay`; ``groups`` holds, per parameter group of
    the optimizer, the decayed parameters that group updates.
    """

    def __init__(self, weight_decay: float, groups: list[list[torch.Tensor]]):
        self.weight_decay = check_non_negative("weight_decay", weight_decay)
        self.groups = groups

    def get_config(self) -> dict:
        return {"weight_decay": self.weight_decay}

    def __call__(self, optimizer, args, kwargs) -> None:
        for group, params in zip(optimizer.param_groups, self.groups):
            decoupled_decay_(params, group["lr"], self.weight_decay)


def decoupled_weight_decay(optimizer: torch.optim.Optimizer, params: Iterable[torch.Tensor],
                           weight_decay: float) -> RemovableHandle:
    """Give ``optimizer`` decoupled weight decay on ``params`` (pre-step: ``w - lr*u - lr*wd*w``); returns the handle.

    ``params``: the weights to decay, each one the optimizer updates (typically
    ``decay_param_groups(model, wd)[0]["params"]``: kernels, not biases or norms).  Build the
    optimizer itself with ``weight_decay=0`` (torch's SGD would add the coupled ``wd * w``
    to the gradient as well).  ``handle.remove()`` takes the decay off again.
    """
    check_instance("optimizer", optimizer, torch.optim.Optimizer, "a torch.optim.Optimizer")
    weight_decay = check_non_negative("weight_decay", weight_decay)
    if isinstance(params, torch.Tensor) or not hasattr(params, "__iter__"):
        raise RegularkitError(f"params must be a list of parameters, got {describe(params)}")
    chosen = {id(p): p for p in params}
    groups = [[p for p in g["params"] if id(p) in chosen] for g in optimizer.param_groups]
    missing = len(chosen) - sum(len(g) for g in groups)
    if missing:
        raise RegularkitError(f"params holds {missing} tensor(s) the optimizer does not update; decoupled decay "
                              f"needs the optimizer's own parameters")
    return optimizer.register_step_pre_hook(DecoupledWeightDecay(weight_decay, groups))
