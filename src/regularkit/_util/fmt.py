"""Numbers as people read them in tables and captions: one formatter each."""
from __future__ import annotations

__all__ = ["pct", "pct_pm"]


def pct(fraction: float, digits: int = 2) -> str:
    """A fraction as a percentage without the sign: ``pct(0.0567) == "5.67"``; a value that rounds to
    zero is ``"0.00"``, never ``"-0.00"``."""
    text = f"{100 * fraction:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


def pct_pm(mean: float, spread: float, digits: int = 2) -> str:
    """``mean ± spread`` as percentages: ``pct_pm(0.05, 0.01) == "5.00 ± 1.00"``."""
    return f"{pct(mean, digits)} ± {pct(spread, digits)}"
