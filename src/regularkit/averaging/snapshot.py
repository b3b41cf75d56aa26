"""Snapshot ensembles: M models for the price of one run (Huang et al. 2017, "Train 1, get M for free").

Deck 004: "use multiple snapshots of a single model during training ...
cyclic learning rate schedules can make this work even better".  The
learning rate follows cyclic cosine annealing, restarted ``M`` times over
``T`` steps (eq. 2 of the paper, ``t = 1 .. T``)::

    lr(t) = lr_max / 2 * (cos(pi * mod(t - 1, ceil(T / M)) / ceil(T / M)) + 1)

Each cycle ends at a learning-rate minimum, where the model sits in a local
minimum; a snapshot is taken there, at ``t = c * ceil(T / M)``, so exactly
``M`` snapshots are collected.  The ensemble averages their predictions.

A "step" is whatever unit you schedule in: ``steps_per_epoch=1`` schedules
per epoch, ``steps_per_epoch=len(loader)`` per optimizer step (the paper).
"""
from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from regularkit._util.checks import check_int, check_positive
from regularkit._util.distributed import bare_model, unwrap_model
from regularkit.averaging._config import AveragerConfig
from regularkit.averaging.ensemble import Ensemble
from regularkit.errors import RegularkitError


def snapshot_lr(t: int, total_steps: int, cycles: int, lr_max: float) -> float:
    """Huang et al.'s ``lr(t)`` for step ``t`` in ``1 .. total_steps``."""
    total_steps = check_int("total_steps", total_steps, minimum=1)
    cycles = check_int("cycles", cycles, minimum=1)
    t = check_int("t", t, minimum=1)
    lr_max = check_positive("lr_max", lr_max)
    length = math.ceil(total_steps / cycles)
    return lr_max / 2.0 * (math.cos(math.pi * ((t - 1) % length) / length) + 1.0)


class CyclicCosineLR(LRScheduler):
    """torch scheduler for :func:`snapshot_lr`: step ``k`` (0-based, after ``k`` calls to ``step()``)
    trains at ``lr(k + 1)``.  Groups keep their ratio to the largest initial lr."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr_max: float, cycle_length: int, last_epoch: int = -1):
        self.lr_max = check_positive("lr_max", lr_max)
        self.cycle_length = check_int("cycle_length", cycle_length, minimum=1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        top = max(float(b) for b in self.base_lrs)
        t = self.last_epoch % self.cycle_length
        lr = self.lr_max / 2.0 * (math.cos(math.pi * t / self.cycle_length) + 1.0)
        return [lr * float(b) / top for b in self.base_lrs]


class SnapshotEnsemble(AveragerConfig):
    """Cyclic cosine schedule plus a snapshot at the end of each of ``cycles`` cycles.

    ``scheduler(optimizer)`` gives the lr schedule; call its ``step()`` and
    this object's ``step(model)`` once per step (after ``optimizer.step()``).
    With ``steps_per_epoch=1``, :meth:`on_epoch_end` does the latter as a
    training-loop callback.  ``ensemble()`` returns the :class:`Ensemble`.
    Snapshots are copies of the bare model's ``state_dict()`` (on ``device`` if given): DDP and
    ``torch.compile`` wrappers are peeled, so keys never carry ``module.`` / ``_orig_mod.``,
    and the members are built from a copy of the bare model (a wrapper inside it is refused).
    ``get_config()`` holds the settings, not the model: ``SnapshotEnsemble.from_config(config, model)``.
    """

    def __init__(self, model: nn.Module, cycles: int, epochs_per_cycle: int, lr_max: float, *,
                 steps_per_epoch: int = 1, device: torch.device | str | None = None):
        bare = bare_model(model)  # refuses a non-module, and a wrapper nested inside the model
        self.cycles = check_int("cycles", cycles, minimum=1)
        self.epochs_per_cycle = check_int("epochs_per_cycle", epochs_per_cycle, minimum=1)
        self.lr_max = check_positive("lr_max", lr_max)
        self.steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, minimum=1)
        self.device = device
        self.cycle_length = self.epochs_per_cycle * self.steps_per_epoch  # = ceil(T / M), exactly
        self.total_steps = self.cycles * self.cycle_length
        self._template = copy.deepcopy(bare)  # builds the members; its weights are never used
        self.steps_done = 0
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def lr_at(self, step: int) -> float:
        """Learning rate of 0-based step ``step`` (the paper's ``t = step + 1``)."""
        return snapshot_lr(check_int("step", step, minimum=0) + 1, self.total_steps, self.cycles, self.lr_max)

    def is_snapshot_step(self, step: int) -> bool:
        """Whether 0-based step ``step`` ends a cycle (the lowest lr of its cycle)."""
        return (step + 1) % self.cycle_length == 0

    def scheduler(self, optimizer: torch.optim.Optimizer) -> CyclicCosineLR:
        return CyclicCosineLR(optimizer, self.lr_max, self.cycle_length)

    def step(self, model: nn.Module) -> bool:
        """Count one step; at a cycle's end store a snapshot of ``model``. Returns whether it did."""
        if self.steps_done >= self.total_steps:
            raise RegularkitError(f"the snapshot schedule is over: {self.cycles} snapshots were taken in "
                                  f"total_steps={self.total_steps}; got step {self.steps_done + 1}")
        step, self.steps_done = self.steps_done, self.steps_done + 1
        if not self.is_snapshot_step(step):
            return False
        self.snapshots.append({k: v.detach().to(self.device or v.device, copy=True)
                               for k, v in unwrap_model(model).state_dict().items()})
        return True

    # The training loop's callback contract, for per-epoch schedules.
    def on_train_begin(self, state) -> None: ...

    def on_epoch_end(self, state) -> None:
        if self.steps_per_epoch == 1:
            self.step(state.model)

    def on_train_end(self, state) -> None: ...

    def ensemble(self, average: str = "probs", *, log: bool = False) -> Ensemble:
        if not self.snapshots:
            raise RegularkitError(f"no snapshot yet: the first is taken at step {self.cycle_length}, "
                                  f"got steps_done={self.steps_done}")
        return Ensemble.from_state_dicts(lambda: copy.deepcopy(self._template), self.snapshots, average,
                                         log=log).eval()

    def state_dict(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done, "snapshots": self.snapshots}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps_done = check_int("steps_done", state["steps_done"], minimum=0)
        self.snapshots = [dict(sd) for sd in state["snapshots"]]


__all__ = ["SnapshotEnsemble", "CyclicCosineLR", "snapshot_lr"]
