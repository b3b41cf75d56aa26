"""The checks every validation goes through: each raises :class:`~regularkit.errors.RegularkitError`.

Messages name the parameter and the value received, e.g. ``max_norm must be
> 0, got -1.0``.
"""
from __future__ import annotations

import math
import os
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


def check_probability(name: str, value: Any) -> float:
    """A probability, ``0 <= value <= 1``: of applying an augmentation, or a drop rate where ``p = 1`` is defined
    (dropout and drop-path give zeros in training, as torch and timm do).  The one closed-interval check."""
    return check_in_range(name, value, 0, 1)


def check_rate(name: str, value: Any) -> float:
    """A rate where ``1`` means nothing, ``0 <= value < 1``: Gaussian dropout's variance ``p / (1 - p)``, alpha
    dropout's affine correction, a recipe's dropout or label smoothing (a network with every unit dropped, or
    targets that are all uniform, trains nothing).  The one half-open check; :func:`check_probability` is
    the closed one."""
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


def describe(value: Any) -> str:
    """A received value for a one-line message: plain values as written, anything else by its type.

    ``str()`` of an object can span lines (a tensor, a module); its type name never does.
    """
    if value is None or isinstance(value, (str, bytes, bool, int, float, np.generic)):
        return _fmt(value)
    if isinstance(value, type):
        return f"the class {value.__name__}"
    return a_or_an(type(value).__name__)


def a_or_an(noun: str) -> str:
    """``"a Tensor"``, ``"an OptimConfig"``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def check_path(name: str, value: Any) -> "os.PathLike[str] | str":
    """A file path: a string or an ``os.PathLike`` (a number or a file object is refused)."""
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)) or value == "":
        raise RegularkitError(f"{name} must be a file path (a string or a pathlib.Path), got {_fmt(value)}")
    return value


def check_optional_number(name: str, value: Any) -> float | None:
    """``None``, or a finite number (:func:`check_number`)."""
    return None if value is None else check_number(name, value)


def check_instance(name: str, value: Any, types, what: str) -> Any:
    """``isinstance(value, types)``; ``what`` says in words what was expected (``"a torch.nn.Module"``)."""
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise RegularkitError(f"{name} must be {what}, got {_fmt(value)}")
    if not isinstance(value, types):
        raise RegularkitError(f"{name} must be {what}, got {describe(value)}")
    return value


def check_callable(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """A callable (or ``None`` when allowed); a class is a callable too."""
    if value is None and allow_none:
        return None
    if not callable(value):
        raise RegularkitError(f"{name} must be callable, got {describe(value)}")
    return value


def check_callables(name: str, value: Any, what: str = "callables") -> tuple:
    """A list or tuple of callables (each named ``name[i]`` in a message); returned as a tuple."""
    if not isinstance(value, (list, tuple)):
        raise RegularkitError(f"{name} must be a list of {what}, got {describe(value)}")
    return tuple(check_callable(f"{name}[{i}]", v) for i, v in enumerate(value))


def check_monitor(name: str, value: Any) -> str:
    """A metric name to watch, never one of the test split (``test_loss``, ``test_error``, ...).

    Metrics are recorded as ``{split}_{metric}``; a choice made by watching the test
    split (when to stop, which epoch to keep) makes the test error a biased estimate.
    """
    value = check_str(name, value)
    if value.lower() == "test" or value.lower().startswith("test_"):
        raise RegularkitError(
            f"{name} must not watch the test split: early stopping (or any choice) monitoring the test split is "
            f"refused, got {value!r}; watch a validation metric such as 'val_loss'")
    return value
