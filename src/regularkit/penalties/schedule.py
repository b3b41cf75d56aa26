"""Strengths that change during training: a number, or a schedule ``f(step) -> float``.

Every penalty keeps its own step counter ``step_count``, advanced by
``penalty.step()`` once per optimizer step (like an LR scheduler) and saved by
``state_dict()``, so a resumed run continues the schedule exactly.
"""
from __future__ import annotations

from typing import Callable, Union

from regularkit._util.checks import check_int, check_non_negative

__all__ = ["Strength", "Scheduled", "check_strength"]

Strength = Union[float, Callable[[int], float]]


def check_strength(name: str, value: Strength) -> Strength:
    """A non-negative number, or a callable schedule (checked at each step it is read)."""
    if callable(value):
        return value
    return check_non_negative(name, value)


class Scheduled:
    """Step counter shared by every penalty: strengths may be schedules ``f(step)``."""

    step_count: int = 0

    def step(self) -> None:
        """Advance the schedule by one optimizer step."""
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
