"""Exponential moving average of the weights (Polyak averaging) for evaluation.

Polyak & Juditsky 1992 average the iterates of SGD; the exponential form is
the one in deck 004 ("Model ensembles: tips and tricks", cs231n)::

    w_test = 0.995 * w_test + 0.005 * w        # after every optimizer step

so after ``n`` updates, starting from the copy ``w_0`` taken at construction,

    w_test = d^n w_0 + sum_{k=1..n} (1 - d) d^(n-k) w_k.

The average is never trained; it is what you evaluate.  ``decay`` close to 1
averages over about ``1 / (1 - decay)`` recent steps.

Warm-up (``warmup=True``, TensorFlow's ``ExponentialMovingAverage(num_updates=)``)
uses ``decay_t = min(decay, (1 + t) / (10 + t))`` at the ``t``-th update
(``t = 0, 1, ...``), so the random initial weights are forgotten fast
(``decay_0 = 0.1``) and the nominal decay is reached at update
``t = (10 d - 1) / (1 - d)`` (1790 for ``d = 0.995``).

Buffers (BatchNorm running statistics) are handled explicitly:
``buffers="copy"`` takes the live model's buffers at each update (they were
estimated for the live weights, not the average: recalibrate with
:func:`regularkit.averaging.recalibrate_bn` if that matters);
``buffers="average"`` averages floating-point buffers with the same decay
and copies integer ones (``num_batches_tracked``).
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from regularkit._util.checks import check_choice, check_in_range, check_int
from regularkit.averaging._config import AveragerConfig
from regularkit.errors import RegularkitError

BUFFER_MODES = ("copy", "average")


def ema_decay(num_updates: int, decay: float, warmup: bool = False) -> float:
    """The decay used at update number ``num_updates`` (0-based): ``decay``, or with warm-up
    ``min(decay, (1 + t) / (10 + t))``."""
    t = check_int("num_updates", num_updates, minimum=0)
    decay = check_in_range("decay", decay, 0.0, 1.0)
    return min(decay, (1.0 + t) / (10.0 + t)) if warmup else decay


def _matched(kind: str, averaged: dict[str, torch.Tensor], live: dict[str, torch.Tensor]):
    if averaged.keys() != live.keys():
        missing = sorted(averaged.keys() ^ live.keys())
        raise RegularkitError(f"model does not match the averaged copy: {kind} {missing[0]!r} is in one "
                              f"but not the other ({len(missing)} differ)")
    return ((averaged[name], live[name]) for name in averaged)


@torch.no_grad()
def ema_update_(averaged: nn.Module, model: nn.Module, decay: float, *, buffers: str = "copy") -> None:
    """In place on ``averaged``: ``w_avg <- decay * w_avg + (1 - decay) * w`` for each parameter.

    Parameters are matched by name, so the two modules must have the same
    structure.  Buffers follow ``buffers`` (see the module docstring).
    """
    decay = check_in_range("decay", decay, 0.0, 1.0)
    check_choice("buffers", buffers, BUFFER_MODES)
    for avg, live in _matched("parameter", dict(averaged.named_parameters()), dict(model.named_parameters())):
        # lerp_(w, 1 - d) = w_avg + (1 - d)(w - w_avg): one fused op, exact at d = 0 and d = 1
        avg.lerp_(live.detach().to(device=avg.device, dtype=avg.dtype), 1.0 - decay)
    for avg, live in _matched("buffer", dict(averaged.named_buffers()), dict(model.named_buffers())):
        live = live.detach().to(avg.device)
        if buffers == "average" and avg.dtype.is_floating_point:
            avg.lerp_(live.to(avg.dtype), 1.0 - decay)
        else:
            avg.copy_(live)


class EMA(AveragerConfig):
    """Keep ``module``, an exponential moving average of ``model``'s weights; call ``update(model)`` per step.

    ``EMA(model, decay=0.995)`` is the slide's ``w_test = 0.995 w_test + 0.005 w``.
    ``module`` is a deep copy in eval mode with ``requires_grad=False``;
    evaluate it (``ema.module(x)``), never train it.  ``device`` keeps the
    copy elsewhere (e.g. ``"cpu"`` to save accelerator memory).  ``get_config()``
    holds the settings, not the model: ``EMA.from_config(config, model)``.
    """

    def __init__(self, model: nn.Module, decay: float = 0.995, *, warmup: bool = False, buffers: str = "copy",
                 device: torch.device | str | None = None):
        if not isinstance(model, nn.Module):
            raise RegularkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.decay = check_in_range("decay", decay, 0.0, 1.0)
        if not isinstance(warmup, bool):
            raise RegularkitError(f"warmup must be True or False, got {warmup!r}")
        self.warmup = warmup
        self.buffers = check_choice("buffers", buffers, BUFFER_MODES)
        self.device = device
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module.to(device)
        self.module.eval().requires_grad_(False)
        self.num_updates = 0

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        return ema_decay(self.num_updates, self.decay, self.warmup)

    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average (call after ``optimizer.step()``)."""
        ema_update_(self.module, model, self.current_decay(), buffers=self.buffers)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates,
                "decay": self.decay, "warmup": self.warmup, "buffers": self.buffers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the average and the update count; the settings stay the constructor's."""
        self.module.load_state_dict(state["module"])
        self.num_updates = check_int("num_updates", state["num_updates"], minimum=0)

    def __repr__(self) -> str:
        return (f"EMA(decay={self.decay}, warmup={self.warmup}, buffers={self.buffers!r}, "
                f"num_updates={self.num_updates})")


__all__ = ["EMA", "ema_decay", "ema_update_"]
