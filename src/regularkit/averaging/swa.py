"""Stochastic Weight Averaging with BatchNorm recalibration (Izmailov et al. 2018).

SWA ("Averaging Weights Leads to Wider Optima and Better Generalization")
trains as usual until ``start_epoch``, then keeps a constant (or cyclic)
learning rate ``lr`` and averages the weights reached at the end of every
epoch with equal weights::

    w_swa = (1 / n) * sum_{i=1..n} w_i

A BatchNorm layer's running statistics belong to the weights that produced
them, and the averaged weights were never run: :meth:`SWA.finalize` makes one
pass over training data to recompute them (:func:`recalibrate_bn`).  The
averaging itself is ``torch.optim.swa_utils.AveragedModel`` with
:func:`swa_average_` as its ``multi_avg_fn``: torch's own update,
``w_swa + (w - w_swa) / (n + 1)``, in three ``torch._foreach_*`` ops over all
parameters instead of a loop with a copy per parameter (what ``AveragedModel``
does on the CPU; on CUDA it uses ``_foreach_lerp_``, which rounds differently
in the last bit).

Learning rate (:meth:`SWA.scheduler`): a base schedule until the anneal,
then ``anneal_epochs`` epochs of cosine (or linear) annealing from the lr in
effect to ``lr``, ending so that the first averaged epoch trains at ``lr``;
constant ``lr`` from there on.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.optim.swa_utils import AveragedModel

from regularkit._util.checks import check_choice, check_int, check_positive
from regularkit._util.distributed import bare_model, unwrap_model
from regularkit.averaging._config import AveragerConfig
from regularkit.errors import RegularkitError
from regularkit.transfer import bn_frozen

ANNEAL = ("cos", "linear")


def swa_anneal_lr(k: int, lr_start: float, swa_lr: float, anneal_epochs: int, strategy: str = "cos") -> float:
    """Learning rate after ``k`` anneal steps: ``t = min(1, k / anneal_epochs)`` (1 when there
    is no anneal), ``cos``: ``swa_lr + (lr_start - swa_lr)(1 + cos(pi t)) / 2``, ``linear``:
    ``lr_start + t (swa_lr - lr_start)``."""
    check_choice("anneal_strategy", strategy, ANNEAL)
    t = 1.0 if anneal_epochs == 0 else min(1.0, k / anneal_epochs)
    if strategy == "cos":
        return swa_lr + (lr_start - swa_lr) * (1.0 + math.cos(math.pi * t)) / 2.0
    return lr_start + t * (swa_lr - lr_start)


@torch.no_grad()
def swa_average_(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor | int) -> None:
    """``w_swa <- w_swa + (w - w_swa) / (n + 1)`` for every tensor at once (``n``: weights averaged so far).

    Per element the arithmetic of torch's ``get_swa_avg_fn()`` (so the same bits as
    ``AveragedModel``'s loop on the CPU), as ``_foreach_sub`` / ``_foreach_div_`` /
    ``_foreach_add_``.  ``AveragedModel`` calls it with the tensors of one device and dtype.
    """
    count = float(num_averaged) + 1.0  # an integer count: exact as a float
    if averaged[0].is_floating_point() or averaged[0].is_complex():
        delta = torch._foreach_sub(current, averaged)
        torch._foreach_div_(delta, count)
        torch._foreach_add_(averaged, delta)
    else:  # integer tensors: torch's formula, the result cast back on copy
        for a, c in zip(averaged, current):
            a.copy_(a + (c - a) / count)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Any] | torch.Tensor, *,
                   device: torch.device | str | None = None) -> nn.Module:
    """Recompute BatchNorm running statistics with one pass over ``batches`` (in place).

    torch's ``update_bn`` semantics: statistics are reset, then every batch
    contributes equally (``momentum=None``, a cumulative average), so one
    batch holding all the data gives its exact mean and unbiased variance.
    ``batches``: a DataLoader or iterable of tensors or ``(x, y, ...)``
    tuples (``x`` is fed), or one tensor (a single batch).  Unlike
    ``update_bn`` it leaves layers held by ``transfer.freeze(bn="eval")``
    as they are.  The model's train/eval mode is restored.
    """
    if isinstance(batches, torch.Tensor):
        batches = [batches]
    layers = [m for m in model.modules() if isinstance(m, _NormBase) and m.track_running_stats
              and not bn_frozen(m)]
    if not layers:
        return model
    momenta = {m: m.momentum for m in layers}
    # a failed pass (no batch, a bad batch, Ctrl-C) puts the old statistics back
    saved = {m: [b.clone() for b in m.buffers()] for m in layers}
    was_training = model.training
    try:
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        seen = 0
        for batch in batches:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            if device is not None:
                x = x.to(device)
            model(x)
            seen += 1
        if seen == 0:
            raise RegularkitError("recalibrate_bn needs at least one batch, got an empty iterable")
    except BaseException:
        for m, buffers in saved.items():
            for b, old in zip(m.buffers(), buffers):
                b.copy_(old)
        raise
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        model.train(was_training)
    return model


class SWA(AveragerConfig):
    """Equal-weight average of ``model`` at the end of each epoch ``>= start_epoch`` (1-based).

    ``update(model)`` adds the current weights; :meth:`on_epoch_end` does it
    when ``state.epoch >= start_epoch`` (the training loop's callback
    contract), ``finalize(batches)`` recalibrates BatchNorm, and ``module``
    is the averaged network to evaluate (a copy of the bare model: DDP and
    ``torch.compile`` wrappers of ``model`` are peeled, here and in
    :meth:`update`; a wrapper nested inside it is refused).  ``lr`` (with ``anneal_epochs``,
    ``anneal_strategy``) drives :meth:`scheduler`.  ``get_config()`` holds the
    settings, not the model: ``SWA.from_config(config, model)``.
    """

    def __init__(self, model: nn.Module, start_epoch: int, *, lr: float | None = None, anneal_epochs: int = 0,
                 anneal_strategy: str = "cos", device: torch.device | str | None = None):
        bare = bare_model(model)  # refuses a non-module, and a wrapper nested inside the model
        self.start_epoch = check_int("start_epoch", start_epoch, minimum=1)
        self.lr = None if lr is None else check_positive("lr", lr)
        self.anneal_epochs = check_int("anneal_epochs", anneal_epochs, minimum=0)
        if self.anneal_epochs > self.start_epoch - 1:
            raise RegularkitError(f"anneal_epochs must be <= start_epoch - 1 = {self.start_epoch - 1} "
                                  f"(the anneal ends when averaging starts), got {anneal_epochs}")
        self.anneal_strategy = check_choice("anneal_strategy", anneal_strategy, ANNEAL)
        self.device = device
        # use_buffers=False: BN statistics are recomputed by finalize, not averaged; AveragedModel
        # deep-copies what it is given: the bare model, never a DDP / compile wrapper
        self.averaged = AveragedModel(bare, device=device, use_buffers=False, multi_avg_fn=swa_average_)
        self.averaged.eval().requires_grad_(False)

    @property
    def module(self) -> nn.Module:
        return self.averaged.module

    @property
    def n_averaged(self) -> int:
        return int(self.averaged.n_averaged)

    def should_average(self, epoch: int) -> bool:
        return epoch >= self.start_epoch

    def update(self, model: nn.Module) -> None:
        """Add ``model``'s current weights to the average (the first call copies them); wrappers are peeled."""
        self.averaged.update_parameters(unwrap_model(model))

    # The training loop's callback contract (duck-typed: on_train_begin / on_epoch_end / on_train_end).
    def on_train_begin(self, state) -> None: ...

    def on_epoch_end(self, state) -> None:
        if self.should_average(state.epoch):
            self.update(state.model)

    def on_train_end(self, state) -> None: ...

    def finalize(self, batches: Iterable[Any] | torch.Tensor, *, device: torch.device | str | None = None) -> nn.Module:
        """Recompute BatchNorm statistics of the average on ``batches``; returns :attr:`module` (eval mode)."""
        if self.n_averaged == 0:
            raise RegularkitError(f"SWA has averaged no weights yet (start_epoch={self.start_epoch}), "
                                  f"got n_averaged=0")
        recalibrate_bn(self.module, batches, device=device)
        return self.module.eval()

    def scheduler(self, optimizer: torch.optim.Optimizer, base=None) -> SWAScheduler:
        """A per-epoch scheduler: ``base`` (any torch scheduler, or none) then the SWA anneal and lr."""
        if self.lr is None:
            raise RegularkitError("SWA has no learning rate to schedule: construct it with lr=..., got lr=None")
        return SWAScheduler(optimizer, start_epoch=self.start_epoch, swa_lr=self.lr,
                            anneal_epochs=self.anneal_epochs, anneal_strategy=self.anneal_strategy, base=base)

    def state_dict(self) -> dict[str, Any]:
        return {"averaged": self.averaged.state_dict(), "start_epoch": self.start_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.averaged.load_state_dict(state["averaged"])


class SWAScheduler:
    """Call ``step()`` once at the end of every epoch, like a torch scheduler.

    After ``e`` calls (``e`` epochs done) the anneal step is
    ``k = e - (start_epoch - 1 - anneal_epochs)``: before it starts ``base``
    steps (if given); from then on every group's lr is
    :func:`swa_anneal_lr` from the lr it had when the anneal began to
    ``swa_lr`` scaled by that group's share of the largest lr (one group:
    exactly ``swa_lr``), so epoch ``start_epoch`` trains at ``swa_lr``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, start_epoch: int, swa_lr: float, anneal_epochs: int = 0,
                 anneal_strategy: str = "cos", base=None):
        self.optimizer = optimizer
        self.start_epoch, self.swa_lr = start_epoch, swa_lr
        self.anneal_epochs, self.anneal_strategy = anneal_epochs, anneal_strategy
        self.base = base
        self.epochs_done = 0
        self.anneal_from: list[float] | None = None
        self._apply()  # start_epoch=1, anneal_epochs=0: the very first epoch trains at swa_lr

    def _anneal_step(self) -> int | None:
        """``k``, or None while the base schedule still rules (``k = 0`` counts only without anneal)."""
        k = self.epochs_done - (self.start_epoch - 1 - self.anneal_epochs)
        return k if k >= (1 if self.anneal_epochs else 0) else None

    def _apply(self) -> None:
        k = self._anneal_step()
        if k is None:
            return
        groups = self.optimizer.param_groups
        if self.anneal_from is None:
            self.anneal_from = [float(g["lr"]) for g in groups]
        top = max(self.anneal_from)
        for g, lr0 in zip(groups, self.anneal_from):
            target = self.swa_lr * (lr0 / top if top > 0 else 1.0)
            g["lr"] = swa_anneal_lr(k, lr0, target, self.anneal_epochs, self.anneal_strategy)

    def step(self) -> None:
        self.epochs_done += 1
        if self.base is not None and self._anneal_step() is None:
            self.base.step()
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"epochs_done": self.epochs_done, "anneal_from": self.anneal_from,
                "base": None if self.base is None else self.base.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epochs_done, self.anneal_from = state["epochs_done"], state["anneal_from"]
        if self.base is not None and state["base"] is not None:
            self.base.load_state_dict(state["base"])


__all__ = ["SWA", "SWAScheduler", "recalibrate_bn", "swa_anneal_lr", "swa_average_"]
