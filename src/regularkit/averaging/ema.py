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

:class:`EMA` is an ``nn.Module`` holding the average as its submodule
``module`` (as timm's ``ModelEmaV3``): assigned to a model or a
``LightningModule`` it is in that owner's ``state_dict`` (so in Lightning's
checkpoints), follows its ``.to(device / dtype)``, and ``ema(x)`` evaluates
the average.  Where it differs from ``ModelEmaV3``, on purpose:

* warm-up: timm's ``update(model, step)`` takes the caller's step count and
  uses decay 0 (a plain copy) up to step ``update_after_step + 1``, then
  ``decay`` or, with ``use_warmup``, ``1 - (1 + s / gamma)^-power`` clamped to
  ``[min_decay, decay]``; without ``step`` it never warms up.  Here the count is
  the EMA's own (``num_updates``, saved in its state), so a resumed run goes on
  where it was, and the schedule is TensorFlow's, which keeps 10 % of the
  construction copy at the first update;
* buffers: timm averages every floating entry of the state dict by default
  (``exclude_buffers=True`` copies buffers), i.e. our ``"average"`` (or
  ``"copy"``); our default stays ``"copy"``; timm's default ``decay`` is 0.9999,
  ours the slide's 0.995;
* timm pairs tensors by position; here by name, and a mismatch is an error;
* timm's copy keeps ``requires_grad`` and follows its owner's ``.train()``
  (a ``LightningModule`` going back to training would put the average in
  training mode: batch statistics, dropout); here it is frozen and stays in
  eval mode whatever the owner's mode (call ``ema.module.train()`` yourself
  to change it);
* timm deep-copies what it is given (its docstring warns about wrappers);
  here a DDP / DataParallel / ``torch.compile`` wrapper is peeled
  (:func:`regularkit._util.distributed.unwrap_model`) at construction and at
  every update, and a wrapper nested inside the model is refused.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from torch import nn

from regularkit._util.checks import check_choice, check_in_range, check_int
from regularkit._util.distributed import bare_model, unwrap_model
from regularkit.averaging._config import AveragerConfig
from regularkit.errors import RegularkitError

BUFFER_MODES = ("copy", "average")


def ema_decay(num_updates: int, decay: float, warmup: bool = False) -> float:
    """The decay used at update number ``num_updates`` (0-based): ``decay``, or with warm-up
    ``min(decay, (1 + t) / (10 + t))`` (TensorFlow's; timm's differs, see the module docstring)."""
    t = check_int("num_updates", num_updates, minimum=0)
    decay = check_in_range("decay", decay, 0.0, 1.0)
    return min(decay, (1.0 + t) / (10.0 + t)) if warmup else decay


def _matched(kind: str, averaged: dict[str, torch.Tensor], live: dict[str, torch.Tensor]):
    """Two lists paired by name; each live tensor on its average's device and dtype (moved only if it is not)."""
    if averaged.keys() != live.keys():
        missing = sorted(averaged.keys() ^ live.keys())
        raise RegularkitError(f"model does not match the averaged copy: {kind} {missing[0]!r} is in one "
                              f"but not the other ({len(missing)} differ)")
    avg = list(averaged.values())
    src = [live[name] for name in averaged]
    src = [s if s.device == a.device and s.dtype == a.dtype else s.to(device=a.device, dtype=a.dtype)
           for a, s in zip(avg, src)]
    return avg, src


@torch.no_grad()
def ema_update_(averaged: nn.Module, model: nn.Module, decay: float, *, buffers: str = "copy") -> None:
    """In place on ``averaged``: ``w_avg <- decay * w_avg + (1 - decay) * w`` for each parameter.

    Parameters are matched by name, so the two modules must have the same
    structure (DDP and ``torch.compile`` wrappers of either are peeled first).
    Buffers follow ``buffers`` (see the module docstring).  One
    ``torch._foreach_lerp_`` over all parameters (and one over the averaged
    buffers, one ``_foreach_copy_`` over the copied ones): per element the same
    ``lerp`` as a loop over the tensors, without the loop.
    """
    decay = check_in_range("decay", decay, 0.0, 1.0)
    check_choice("buffers", buffers, BUFFER_MODES)
    averaged, model = unwrap_model(averaged), unwrap_model(model)
    avg, live = _matched("parameter", dict(averaged.named_parameters()), dict(model.named_parameters()))
    if avg:  # lerp_(w, 1 - d) = w_avg + (1 - d)(w - w_avg): one fused op, exact at d = 0 and d = 1
        torch._foreach_lerp_(avg, live, 1.0 - decay)
    avg, live = _matched("buffer", dict(averaged.named_buffers()), dict(model.named_buffers()))
    mean = [buffers == "average" and a.dtype.is_floating_point for a in avg]  # else copied (num_batches_tracked)
    if any(mean):
        torch._foreach_lerp_([a for a, m in zip(avg, mean) if m], [b for b, m in zip(live, mean) if m], 1.0 - decay)
    if not all(mean):
        torch._foreach_copy_([a for a, m in zip(avg, mean) if not m], [b for b, m in zip(live, mean) if not m])


class EMA(AveragerConfig, nn.Module):
    """Keep ``module``, an exponential moving average of ``model``'s weights; call ``update(model)`` per step.

    ``EMA(model, decay=0.995)`` is the slide's ``w_test = 0.995 w_test + 0.005 w``.
    ``module`` is a deep copy of the bare model (wrappers peeled) in eval mode
    with ``requires_grad=False``; evaluate it (``ema.module(x)`` or ``ema(x)``),
    never train it.  ``device`` places the copy at construction (e.g. ``"cpu"``
    to save accelerator memory); as a submodule it then moves with its owner's
    ``.to()``.  The buffer mode is ``buffer_mode`` (``buffers`` is ``nn.Module``'s
    method).  ``state_dict()`` is the module's: ``module.<name>`` tensors and
    ``_extra_state`` holding ``num_updates``; :meth:`load_state_dict` also reads
    the dict older versions saved (``{"module": ..., "num_updates": ...}``).
    ``get_config()`` holds the settings, not the model: ``EMA.from_config(config, model)``.
    """

    _config_attributes = {"buffers": "buffer_mode"}

    def __init__(self, model: nn.Module, decay: float = 0.995, *, warmup: bool = False, buffers: str = "copy",
                 device: torch.device | str | None = None):
        super().__init__()
        bare = bare_model(model)  # refuses a non-module, and a wrapper nested inside the model
        self.decay = check_in_range("decay", decay, 0.0, 1.0)
        if not isinstance(warmup, bool):
            raise RegularkitError(f"warmup must be True or False, got {warmup!r}")
        self.warmup = warmup
        self.buffer_mode = check_choice("buffers", buffers, BUFFER_MODES)
        self.device = device
        average = copy.deepcopy(bare)
        if device is not None:
            average.to(device)
        self.module = average.eval().requires_grad_(False)
        self.num_updates = 0

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        return ema_decay(self.num_updates, self.decay, self.warmup)

    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average (call after ``optimizer.step()``)."""
        ema_update_(self.module, model, self.current_decay(), buffers=self.buffer_mode)
        self.num_updates += 1

    def forward(self, *args, **kwargs):
        """The averaged network's output: ``ema(x) == ema.module(x)``."""
        return self.module(*args, **kwargs)

    def train(self, mode: bool = True) -> EMA:
        """Set this module's flag only: the average stays in eval mode when its owner trains."""
        if not isinstance(mode, bool):
            raise RegularkitError(f"mode must be True or False, got {mode!r}")
        self.training = mode
        return self

    def get_extra_state(self) -> dict[str, int]:
        return {"num_updates": self.num_updates}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, Mapping) or "num_updates" not in state:
            raise RegularkitError(f"EMA extra state must be a dict with 'num_updates', got {state!r}")
        self.num_updates = check_int("num_updates", state["num_updates"], minimum=0)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """Restore the average and the update count; the settings stay the constructor's."""
        if isinstance(state_dict.get("module"), Mapping):  # the format before EMA was an nn.Module
            state_dict = {**{f"module.{k}": v for k, v in state_dict["module"].items()},
                          "_extra_state": {"num_updates": state_dict.get("num_updates")}}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def extra_repr(self) -> str:
        return (f"decay={self.decay}, warmup={self.warmup}, buffers={self.buffer_mode!r}, "
                f"num_updates={self.num_updates}")


__all__ = ["EMA", "ema_decay", "ema_update_"]
