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
"""
from __future__ import annotations

import math

import torch
from torch import nn

from regularkit._util.checks import check_instance, check_int
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
