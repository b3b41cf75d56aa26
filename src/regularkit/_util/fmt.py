"""Numbers as people read them in tables and captions: one formatter each."""
from __future__ import annotations

__all__ = ["pct", "pct_pm"]


def pct(fraction: float, digits: int = 2) -> str:
    """A fraction as a percentage without the sign: ``pct(0.0567) == "5.67"``."""
    return f"{100 * fraction:.{digits}f}"


def pct_pm(mean: float, spread: float, digits: int = 2) -> str:
    """``mean ± spread`` as percentages: ``pct_pm(0.05, 0.01) == "5.00 ± 1.00"``."""
    return f"{pct(mean, digits)} ± {pct(spread, digits)}"
