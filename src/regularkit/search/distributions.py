"""The four distributions of a search space: Uniform, LogUniform, Int, Categorical.

Each knows how to draw through Optuna (``suggest``), its grid points, and its
TOML form.  Numeric ones also know their *search units* (log10 for log ranges),
which coarse-to-fine narrowing and the border warning measure in:
``LogUniform(1e-5, 1e5)`` is the lecture's ``10**uniform(-5, 5)``, so each
decade gets the same share of the draws.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from regularkit._util.checks import check_int, check_number, check_positive
from regularkit.errors import RegularkitError


def _check_order(kind: str, low: float, high: float) -> None:
    if not low < high:
        raise RegularkitError(f"{kind} needs low < high, got low={low}, high={high}")


@dataclass(frozen=True)
class Numeric:
    """A range ``[low, high]``; ``log`` says whether it is searched in log10 units."""

    low: float
    high: float
    log: ClassVar[bool] = False

    def transform(self, value: float) -> float:
        """Search units: log10 for log ranges (narrowing and border checks use these)."""
        return math.log10(value) if self.log else float(value)

    def inverse(self, t: float) -> float:
        return 10.0 ** t if self.log else float(t)

    def position(self, value: float) -> float:
        """Where ``value`` lies in the range, 0 at ``low`` and 1 at ``high``, in search units."""
        lo, hi = self.transform(self.low), self.transform(self.high)
        return (self.transform(value) - lo) / (hi - lo)

    def between(self, low: float, high: float) -> Numeric:
        """The same kind of range over ``[low, high]`` (clipped to this one)."""
        return type(self)(max(self.low, low), min(self.high, high))


@dataclass(frozen=True)
class Uniform(Numeric):
    """A float drawn uniformly from ``[low, high]``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", check_number("Uniform low", self.low))
        object.__setattr__(self, "high", check_number("Uniform high", self.high))
        _check_order("Uniform", self.low, self.high)

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high)

    def grid(self, n: int) -> list[float]:
        return [self.low + (self.high - self.low) * i / (n - 1) for i in range(n)]

    def to_toml(self) -> dict[str, Any]:
        return {"uniform": [self.low, self.high]}


@dataclass(frozen=True)
class LogUniform(Numeric):
    """A positive float whose log10 is uniform: ``10**uniform(log10(low), log10(high))``."""

    log: ClassVar[bool] = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", check_positive("LogUniform low", self.low))
        object.__setattr__(self, "high", check_positive("LogUniform high", self.high))
        _check_order("LogUniform", self.low, self.high)

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def grid(self, n: int) -> list[float]:
        # Evenly spaced exponents; the end points are set exactly, not via 10**log10(x).
        a, b = math.log10(self.low), math.log10(self.high)
        inner = [10.0 ** (a + (b - a) * i / (n - 1)) for i in range(1, n - 1)]
        return [self.low, *inner, self.high]

    def to_toml(self) -> dict[str, Any]:
        return {"log_uniform": [self.low, self.high]}


@dataclass(frozen=True)
class Int(Numeric):
    """An integer in ``[low, high]`` (both included), optionally log-spaced (``low >= 1``)."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", check_int("Int low", self.low, minimum=1 if self.log else None))
        object.__setattr__(self, "high", check_int("Int high", self.high))
        if not isinstance(self.log, bool):
            raise RegularkitError(f"Int log must be true or false, got {self.log!r}")
        _check_order("Int", self.low, self.high)

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)

    def grid(self, n: int) -> list[int]:
        points = (LogUniform if self.log else Uniform)(self.low, self.high).grid(n)
        return sorted({int(round(p)) for p in points})

    def between(self, low: float, high: float) -> Int:
        # Round outward so the narrowed range still holds every kept value.
        lo = max(self.low, math.floor(low + 1e-9))
        hi = min(self.high, math.ceil(high - 1e-9))
        if lo >= hi:  # never collapse to a point: keep one neighbour inside the old range
            lo, hi = (lo, lo + 1) if lo < self.high else (hi - 1, hi)
        return Int(lo, hi, log=self.log)

    def to_toml(self) -> dict[str, Any]:
        return {"int": [self.low, self.high], **({"log": True} if self.log else {})}


_PLAIN = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Categorical:
    """One of ``choices``.  Non-scalar choices (``[256, 256]``) reach Optuna as JSON labels."""

    choices: tuple

    def __post_init__(self) -> None:
        if isinstance(self.choices, (str, bytes)) or not hasattr(self.choices, "__iter__"):
            raise RegularkitError(f"Categorical choices must be a list, got {self.choices!r}")
        choices = tuple(_freeze(c) for c in self.choices)
        if not choices:
            raise RegularkitError("Categorical needs at least one choice, got []")
        labels = [self._label(c) for c in choices]
        if len(set(labels)) != len(labels):
            raise RegularkitError(f"Categorical choices must be distinct, got {list(self.choices)!r}")
        object.__setattr__(self, "choices", choices)

    @staticmethod
    def _label(choice: Any) -> Any:
        return choice if isinstance(choice, _PLAIN) else json.dumps(choice)

    @property
    def labels(self) -> list[Any]:
        """What Optuna stores: the choice itself, or its JSON text for lists."""
        return [self._label(c) for c in self.choices]

    def decode(self, label: Any) -> Any:
        return self.choices[self.labels.index(label)]

    def suggest(self, trial, name: str) -> Any:
        return self.decode(trial.suggest_categorical(name, self.labels))

    def grid(self, n: int) -> list[Any]:
        return self.labels

    def to_toml(self) -> dict[str, Any]:
        return {"categorical": [_thaw(c) for c in self.choices]}


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, (list, tuple)) else value


def _thaw(value: Any) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


Distribution = Uniform | LogUniform | Int | Categorical

# The TOML keys, one literal registry: {"log_uniform": [1e-4, 1e-1]} -> LogUniform(1e-4, 1e-1).
KINDS: dict[str, type] = {"uniform": Uniform, "log_uniform": LogUniform, "int": Int,
                          "categorical": Categorical}
