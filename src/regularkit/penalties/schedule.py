"""Strengths that change during training: a number, or a schedule ``f(step) -> float``.

Every penalty keeps its own counter ``step_count``, saved by ``state_dict()`` so a
resumed run continues the schedule exactly, and declares how often it advances:
``schedule_unit="step"`` (default: once per optimizer step, like a per-step LR
scheduler) or ``"epoch"`` (once per epoch, so ``f`` receives the epoch number).
:func:`regularkit.train.loop.fit` advances every loss term that has ``step()``
itself -- after each optimizer step, or after each epoch for ``"epoch"`` -- so
with ``fit`` you never call ``penalty.step()``; in your own loop, call it at the
point ``schedule_unit`` names.
"""
from __future__ import annotations

from typing import Callable, Union

from regularkit._util.checks import check_choice, check_int, check_non_negative

__all__ = ["Strength", "Scheduled", "check_strength", "SCHEDULE_UNITS"]

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
        self.step_count = check_int("step_count", state["step_count"], minimum=0)

    def strength_now(self, name: str, value: Strength) -> float:
        """``value`` at the current step (a number is returned as it is)."""
        if not callable(value):
            return value
        return check_non_negative(f"{name} at step {self.step_count}", value(self.step_count))
