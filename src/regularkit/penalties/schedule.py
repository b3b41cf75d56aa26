"""Strengths that change during training: a number, or a schedule ``f(step) -> float``.

Every penalty keeps its own counter ``step_count``, saved by ``state_dict()`` so a
resumed run continues the schedule exactly, and declares how often it advances:
``schedule_unit="step"`` (default: once per optimizer step, like a per-step LR
scheduler) or ``"epoch"`` (once per epoch, so ``f`` receives the epoch number).
:func:`regularkit.train.loop.fit` advances every loss term that has ``step()``
itself -- after each optimizer step, or after each epoch for ``"epoch"`` -- so
with ``fit`` you never call ``penalty.step()``; in your own loop, call it at the
point ``schedule_unit`` names.

Where the counter is saved.  A penalty is a callable ``term(model) -> scalar``, not an
``nn.Module`` (its ``parameters(model)`` and value-based ``==`` would clash with
``Module``'s), so a model's ``state_dict`` does not see it.  Two ways to put the counter
in a checkpoint: :class:`ScheduleState`, an ``nn.Module`` holding the penalties whose
``state_dict`` carries every ``step_count`` as extra state (assign it to the model or the
``LightningModule``: ``self.schedules = ScheduleState([l2])``), or, in a Lightning
``Trainer``, :class:`regularkit.integrations.lightning.PenaltyCallback`, whose own
state is in the checkpoint.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence, Union

from torch import nn

from regularkit._util.checks import check_choice, check_int, check_non_negative
from regularkit.errors import RegularkitError

__all__ = ["Strength", "Scheduled", "ScheduleState", "check_strength", "SCHEDULE_UNITS"]

Strength = Union[float, Callable[[int], float]]

#: What one ``step()`` of a penalty's schedule counts: optimizer steps or epochs.
SCHEDULE_UNITS = ("step", "epoch")


def check_strength(name: str, value: Strength) -> Strength:
    """A non-negative number, or a callable schedule (checked at each step it is read)."""
    if callable(value):
        return value
    return check_non_negative(name, value)


class Scheduled:
    """Step counter shared by every penalty: strengths may be schedules ``f(step)``."""

    step_count: int = 0
    schedule_unit: str = "step"

    def init_schedule(self, schedule_unit: str) -> None:
        """Validate ``schedule_unit`` ("step" | "epoch") and start the counter at 0."""
        self.schedule_unit = check_choice("schedule_unit", schedule_unit, SCHEDULE_UNITS)
        self.step_count = 0

    def step(self) -> None:
        """Advance the schedule by one ``schedule_unit`` (``fit`` calls this; a hand-written loop must)."""
        self.step_count += 1

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or "step_count" not in state:
            raise RegularkitError(f"a penalty's state must be a dict with 'step_count', got {state!r}")
        self.step_count = check_int("step_count", state["step_count"], minimum=0)

    def strength_now(self, name: str, value: Strength) -> float:
        """``value`` at the current step (a number is returned as it is)."""
        if not callable(value):
            return value
        return check_non_negative(f"{name} at step {self.step_count}", value(self.step_count))


class ScheduleState(nn.Module):
    """The schedule counters of ``terms`` in a module's ``state_dict`` (as ``_extra_state``).

    ``model.schedules = ScheduleState([l2, l1])``: ``model.state_dict()`` then holds
    ``schedules._extra_state = {"step_count": [..]}``, a ``torch.save`` / ``load_state_dict``
    round trip restores every counter, and the next strength read is the one the saved run
    would have read.  The penalties stay what they are (``term(model)`` still works and
    ``fit`` still advances them); this module only carries their state.  It has no
    parameters and no forward.
    """

    def __init__(self, terms: Sequence[Scheduled]):
        super().__init__()
        terms = list(terms) if isinstance(terms, (list, tuple)) else None
        if not terms or not all(isinstance(t, Scheduled) for t in terms):
            raise RegularkitError(f"terms must be a non-empty list of regularkit penalties, got {terms!r}")
        self.terms = terms

    def get_extra_state(self) -> dict[str, Any]:
        return {"step_count": [t.step_count for t in self.terms]}

    def set_extra_state(self, state: Any) -> None:
        counts = state.get("step_count") if isinstance(state, dict) else None
        if not isinstance(counts, list) or len(counts) != len(self.terms):
            raise RegularkitError(f"ScheduleState holds {len(self.terms)} penalties, got the saved state {state!r}")
        for term, count in zip(self.terms, counts):
            term.load_state_dict({"step_count": count})

    def extra_repr(self) -> str:
        return ", ".join(f"{type(t).__name__}(step_count={t.step_count})" for t in self.terms)
