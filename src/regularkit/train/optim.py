"""Optimizers and learning-rate schedules from an :class:`OptimConfig`.

Decoupled weight decay (Loshchilov & Hutter 2019, "AdamW") is applied by the
optimizer to the *weights only*: parameters are split into a decay and a
no-decay group by rank, as nanoGPT does -- matrices and conv kernels decay,
biases and normalization scales/shifts (rank <= 1) do not.  For SGD the
decoupled update ``w <- w - lr * (grad + wd * w)`` is what torch's
``weight_decay`` does; for AdamW it is ``w <- w - lr * wd * w`` outside the
adaptive scaling.  The *coupled* L2 penalty (``reg.l2``) is a loss term
instead; see :mod:`regularkit.penalties`.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from regularkit.errors import check_int


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """``[{"params": weights, "weight_decay": wd}, {"params": biases and norms, "weight_decay": 0}]``."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def make_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def schedule_factor(cfg, epoch: int) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch``."""
    epoch = check_int("epoch", epoch, minimum=0)
    if cfg.schedule == "step":
        return cfg.gamma ** (epoch // cfg.step_size)
    if cfg.schedule == "cosine":
        # Cosine annealing to 0 over the run (Loshchilov & Hutter 2017, no restarts).
        return 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))
    return 1.0


def make_scheduler(optimizer: torch.optim.Optimizer, cfg) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-epoch scheduler: call ``scheduler.step()`` once at the end of each epoch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: schedule_factor(cfg, e))
