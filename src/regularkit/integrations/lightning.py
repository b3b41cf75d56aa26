"""Lightning callbacks: regularkit's penalties, constraints, weight averages and schedules in a ``Trainer``.

What :func:`regularkit.train.fit` does at its hook points, done by callbacks on a
``LightningModule`` (which is an ``nn.Module``, so every regularkit piece takes it as
the model), with the same math and the same order within a step::

    loss.backward()                       # Lightning (scaled and then unscaled under AMP)
    PenaltyCallback      on_before_optimizer_step: term.add_grad_(module)   (the fused gradient)
    optimizer.step()                      # Lightning
    ConstraintCallback   on_train_batch_end: project(module, spec)          (max-norm, ...)
    EMACallback          on_train_batch_end: ema.update(module)
    PenaltyCallback / ScheduleCallback: per-step schedules advance; per-epoch ones in on_train_epoch_end
    SWACallback          on_train_epoch_end: swa.update(module) from its start_epoch (1-based, as fit)

Why these hooks.  The fused penalty gradient goes in ``on_before_optimizer_step``, not
``on_after_backward``: Lightning calls it once per optimizer step, after the last
accumulated backward and after the AMP loss scaler has unscaled the gradients, so the
penalty is added once per step (``accumulate_grad_batches > 1`` would add it once per
micro-batch in ``on_after_backward``) and never multiplied by the loss scale -- what
``fit`` does with ``scaler.unscale_`` before its fused terms.  Constraints and averages
go in ``on_train_batch_end``, gated on ``trainer.global_step`` having advanced (Lightning's
own ``WeightAveraging`` does the same): it runs right after the step of its batch, so
validation and every checkpoint see projected weights and an up-to-date average.
``on_before_zero_grad`` is not "after the step": Lightning 2 zeroes the gradients inside
the *next* step's closure, so after an epoch's last step it would run only when the next
epoch starts, after validation and the checkpoint.

State: every callback has ``state_dict`` / ``load_state_dict``, so a ``Trainer`` resumed
with ``fit(ckpt_path=...)`` continues exactly: the penalties' schedule counters
(``step_count``), the EMA's average and update count, the SWA average and its count.
The averages are created in ``on_fit_start`` from the module, once it is on its device
(Lightning restores a checkpoint's callback states before that: they wait and are loaded
into the new average); ``callback.ema`` / ``callback.swa`` are the
:class:`~regularkit.averaging.EMA` / :class:`~regularkit.averaging.SWA` objects to
evaluate (``callback.ema.module``; ``callback.swa.finalize(batches)`` for BatchNorm).
Each class's ``state_key`` includes ``name=`` when given: two callbacks of one class in
one ``Trainer`` need different names.

Both packages: the callbacks derive from ``lightning.pytorch.Callback`` and, where it is
installed, ``pytorch_lightning.Callback``, so ``lightning.Trainer`` and
``pytorch_lightning.Trainer`` both accept them.  With several optimizers, the penalty is
added before each optimizer's step (to every selected parameter): use one optimizer,
or give each penalty a ``pattern`` that matches its optimizer's parameters.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from regularkit._util.checks import check_str
from regularkit.averaging import EMA, SWA
from regularkit.constraints import Projector
from regularkit.errors import RegularkitError

_BASES: list[type] = []
try:
    import lightning.pytorch as _lightning

    _BASES.append(_lightning.Callback)
except ImportError:  # pragma: no cover - the test extra installs lightning
    pass
try:
    import pytorch_lightning as _pytorch_lightning

    _BASES.append(_pytorch_lightning.Callback)
except ImportError:  # pragma: no cover
    pass
if not _BASES:  # pragma: no cover
    raise ImportError("regularkit.integrations.lightning needs Lightning: pip install 'regularkit[lightning]' "
                      "(the 'lightning' or 'pytorch-lightning' package, 2.1 or later)")

__all__ = ["PenaltyCallback", "ScheduleCallback", "ConstraintCallback", "EMACallback", "SWACallback"]


class _Callback(*_BASES):
    """Base: a stable ``state_key`` (class and ``name``), and :meth:`after_step` once per optimizer step."""

    def __init__(self, name: str | None = None):
        self.name = None if name is None else check_str("name", name)
        self._seen_step = 0

    @property
    def state_key(self) -> str:
        return self._generate_state_key(name=self.name)

    def on_train_start(self, trainer, pl_module) -> None:
        self._seen_step = trainer.global_step  # a resumed Trainer starts from its restored step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self._seen_step:  # an optimizer step happened in this batch
            self._seen_step = trainer.global_step
            self.after_step(pl_module)

    def after_step(self, pl_module) -> None:
        """What runs right after each optimizer step (nothing by default)."""


def _check_terms(terms: Sequence[Any]) -> list:
    if isinstance(terms, (str, bytes)) or not hasattr(terms, "__iter__"):
        raise RegularkitError(f"terms must be a list of penalties, got {terms!r}")
    terms = list(terms)
    if not terms:
        raise RegularkitError("terms must hold at least one penalty, got an empty list")
    for i, term in enumerate(terms):
        if not all(callable(getattr(term, m, None)) for m in ("step", "state_dict", "load_state_dict")):
            raise RegularkitError(f"terms[{i}] must be a regularkit penalty (step, state_dict, load_state_dict), "
                                  f"got {term!r}")
    return terms


class ScheduleCallback(_Callback):
    """Advances the schedules of penalties you add to the loss yourself, and saves their counters.

    ``training_step`` returns ``loss_fn(...) + sum(term(self) for term in terms)`` (an
    ``ActivityPenalty``, a penalty with ``fused=False``); this callback calls each
    ``term.step()`` after every optimizer step (``schedule_unit="step"``) or after every
    epoch (``"epoch"``), as ``fit`` does, and puts every ``step_count`` in the checkpoint.
    """

    def __init__(self, terms: Sequence[Any], *, name: str | None = None):
        super().__init__(name)
        self.terms = _check_terms(terms)

    def _unit(self, unit: str) -> list:
        return [t for t in self.terms if getattr(t, "schedule_unit", "step") == unit]

    def after_step(self, pl_module) -> None:
        for term in self._unit("step"):
            term.step()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        for term in self._unit("epoch"):
            term.step()

    def state_dict(self) -> dict[str, Any]:
        return {"terms": [t.state_dict() for t in self.terms]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("terms") if isinstance(state_dict, dict) else None
        if not isinstance(saved, list) or len(saved) != len(self.terms):
            raise RegularkitError(f"{type(self).__name__} state must hold {len(self.terms)} penalties' states, "
                                  f"got {state_dict!r}")
        for term, state in zip(self.terms, saved):
            term.load_state_dict(state)


class PenaltyCallback(ScheduleCallback):
    """Weight penalties on the fused path: their gradient added to ``p.grad`` before each optimizer step.

    ``PenaltyCallback([L2(1e-4)])`` is ``fit(loss_terms=[L2(1e-4)])``: the closed-form gradient
    of every term (:mod:`regularkit.penalties.fused`) is added in ``on_before_optimizer_step``
    (see the module docstring for why that hook), its schedule advances as in
    :class:`ScheduleCallback`, and its counter is in the checkpoint.  ``last_value`` holds
    the penalties' summed value at the last step (detached); ``log_name="train/penalty"`` also
    logs it with ``pl_module.log``.  A term with ``fused=False`` (or no ``add_grad_``) is
    refused: add it to the loss in ``training_step`` and give it to :class:`ScheduleCallback`.
    """

    def __init__(self, terms: Sequence[Any], *, log_name: str | None = None, name: str | None = None):
        super().__init__(terms, name=name)
        for i, term in enumerate(self.terms):
            if getattr(term, "fused", False) is not True or not callable(getattr(term, "add_grad_", None)):
                raise RegularkitError(f"terms[{i}] is not a fused penalty (fused=True with add_grad_), got {term!r}: "
                                      "add it to the loss in training_step and pass it to ScheduleCallback")
        self.log_name = None if log_name is None else check_str("log_name", log_name)
        self.last_value: torch.Tensor | None = None

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        value = sum(term.add_grad_(pl_module) for term in self.terms)
        self.last_value = value
        if self.log_name is not None:
            pl_module.log(self.log_name, value, on_step=True, on_epoch=True)


class ConstraintCallback(_Callback):
    """``project(module, spec)`` right after every optimizer step (``fit(after_step=[Projector(spec)])``).

    ``spec`` is a constraint (``MaxNorm(3.0)``: every weight of the penalties' rule) or a
    dict ``{selector: constraint}``, as :func:`regularkit.constraints.project` takes, or a
    :class:`~regularkit.constraints.Projector`.  Constraints have no state.
    """

    def __init__(self, spec, *, name: str | None = None):
        super().__init__(name)
        self.projector = spec if isinstance(spec, Projector) else Projector(spec)

    def after_step(self, pl_module) -> None:
        self.projector(pl_module)


class _Averaging(_Callback):
    """Builds its average in ``on_fit_start`` (the module is on its device then); a state loaded before waits."""

    attribute = ""

    def __init__(self, name: str | None):
        super().__init__(name)
        self._pending: dict[str, Any] | None = None

    def _build(self, pl_module):  # pragma: no cover - abstract
        raise NotImplementedError

    def on_fit_start(self, trainer, pl_module) -> None:
        if getattr(self, self.attribute) is None:
            setattr(self, self.attribute, self._build(pl_module))
            if self._pending is not None:
                getattr(self, self.attribute).load_state_dict(self._pending)
                self._pending = None

    def state_dict(self) -> dict[str, Any]:
        average = getattr(self, self.attribute)
        return {} if average is None else {self.attribute: average.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not isinstance(state_dict, dict):
            raise RegularkitError(f"{type(self).__name__} state must be a dict, got {state_dict!r}")
        if self.attribute not in state_dict:
            return  # saved before the average existed
        average = getattr(self, self.attribute)
        if average is None:
            self._pending = state_dict[self.attribute]
        else:
            average.load_state_dict(state_dict[self.attribute])


class EMACallback(_Averaging):
    """An :class:`~regularkit.averaging.EMA` of the module, updated after every optimizer step.

    The arguments are :class:`~regularkit.averaging.EMA`'s.  ``callback.ema`` is built in
    ``on_fit_start`` (a copy of the module as it is then); its average and ``num_updates`` are in
    the checkpoint.  Evaluate ``callback.ema.module`` (or ``callback.ema(x)``).
    """

    attribute = "ema"

    def __init__(self, decay: float = 0.995, *, warmup: bool = False, buffers: str = "copy",
                 device: torch.device | str | None = None, name: str | None = None):
        super().__init__(name)
        self.settings = {"decay": decay, "warmup": warmup, "buffers": buffers, "device": device}
        EMA(torch.nn.Linear(1, 1), **self.settings)  # check the arguments now, not at the first fit
        self.ema: EMA | None = None

    def _build(self, pl_module) -> EMA:
        return EMA(pl_module, **self.settings)

    def after_step(self, pl_module) -> None:
        self.ema.update(pl_module)


class SWACallback(_Averaging):
    """An :class:`~regularkit.averaging.SWA` average, updated at the end of each epoch from ``start_epoch`` on.

    Epochs are counted from 1, as in ``fit`` (Lightning's ``current_epoch + 1``).  The
    arguments are :class:`~regularkit.averaging.SWA`'s; ``callback.swa`` is built in
    ``on_fit_start`` and its average (with ``n_averaged``) is in the checkpoint.  After training,
    ``callback.swa.finalize(batches)`` recomputes BatchNorm statistics of the average.
    """

    attribute = "swa"

    def __init__(self, start_epoch: int, *, lr: float | None = None, anneal_epochs: int = 0,
                 anneal_strategy: str = "cos", device: torch.device | str | None = None, name: str | None = None):
        super().__init__(name)
        self.settings = {"start_epoch": start_epoch, "lr": lr, "anneal_epochs": anneal_epochs,
                         "anneal_strategy": anneal_strategy, "device": device}
        SWA(torch.nn.Linear(1, 1), **self.settings)  # check the arguments now
        self.swa: SWA | None = None

    def _build(self, pl_module) -> SWA:
        return SWA(pl_module, **self.settings)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.swa.should_average(trainer.current_epoch + 1):
            self.swa.update(pl_module)
