"""The checks every validation goes through: each raises :class:`~regularkit.errors.RegularkitError`.

Messages name the parameter and the value received, e.g. ``max_norm must be
> 0, got -1.0``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from regularkit.errors import RegularkitError


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_number(name: str, value: Any) -> float:
    """Return ``value`` as a finite float, or raise naming it.

    Numbers only: Python ints and floats, NumPy scalars and 0-d tensors.  A bool or
    a string is refused even when it would convert (``"0.1"``, ``True``): a quoted
    number in a config file is a mistake to report, not to guess around.
    """
    if isinstance(value, (bool, str, bytes)) or isinstance(value, np.bool_):
        raise RegularkitError(f"{name} must be a number, got {_fmt(value)}")
    if not isinstance(value, (int, float)):
        if not (isinstance(value, np.number) or (hasattr(value, "ndim") and getattr(value, "ndim", 1) == 0
                                                 and hasattr(value, "item"))):
            raise RegularkitError(f"{name} must be a number, got {_fmt(value)}")
        value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RegularkitError(f"{name} must be a number, got {_fmt(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise RegularkitError(f"{name} must be finite, got {value}")
    return value


def check_positive(name: str, value: Any) -> float:
    """``value > 0``."""
    v = check_number(name, value)
    if v <= 0:
        raise RegularkitError(f"{name} must be > 0, got {_fmt(value)}")
    return v


def check_non_negative(name: str, value: Any) -> float:
    """``value >= 0``."""
    v = check_number(name, value)
    if v < 0:
        raise RegularkitError(f"{name} must be >= 0, got {_fmt(value)}")
    return v


def check_rate(name: str, value: Any) -> float:
    """A drop probability: ``0 <= value < 1``."""
    v = check_number(name, value)
    if not 0.0 <= v < 1.0:
        raise RegularkitError(f"{name} must be in [0, 1), got {_fmt(value)}")
    return v


def check_in_range(name: str, value: Any, low: float, high: float,
                   *, low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """``low <= value <= high`` with the stated inclusiveness."""
    v = check_number(name, value)
    ok_low = v >= low if low_inclusive else v > low
    ok_high = v <= high if high_inclusive else v < high
    if not (ok_low and ok_high):
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        raise RegularkitError(f"{name} must be in {lb}{low}, {high}{hb}, got {_fmt(value)}")
    return v


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """An integer (not a bool), optionally ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        if not (hasattr(value, "__index__") and not isinstance(value, bool)):
            raise RegularkitError(f"{name} must be an integer, got {_fmt(value)}")
        value = int(value)
    if minimum is not None and value < minimum:
        raise RegularkitError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_choice(name: str, value: Any, choices) -> Any:
    """``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        listed = ", ".join(_fmt(c) for c in choices)
        raise RegularkitError(f"{name} must be one of {listed}; got {_fmt(value)}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """A real boolean: ``"false"`` (a string) or ``0`` is refused, never read as a truth value."""
    if not isinstance(value, (bool, np.bool_)):
        raise RegularkitError(f"{name} must be true or false, got {_fmt(value)}")
    return bool(value)


def check_str(name: str, value: Any, *, allow_none: bool = False) -> str | None:
    """A non-empty string (or ``None`` when allowed)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RegularkitError(f"{name} must be a non-empty string, got {_fmt(value)}")
    return value


def check_int_tuple(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> tuple[int, ...]:
    """A non-empty tuple (or list) of integers in ``[minimum, maximum]``."""
    if not isinstance(value, (tuple, list)) or not value:
        raise RegularkitError(f"{name} must be a non-empty list of integers, got {_fmt(value)}")
    out = tuple(check_int(name, v, minimum=minimum) for v in value)
    if maximum is not None and max(out) > maximum:
        raise RegularkitError(f"{name} must be at most {maximum}, got {max(out)}")
    return out
