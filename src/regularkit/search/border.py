""""Careful with best values on border" (cs231n, hyper-parameter selection).

If the best learning rate of a search is the largest one tried, the optimum
may well lie beyond the range: the search did not bracket it.  A numeric
parameter whose best value lies in the outer ``edge_fraction`` of its range,
measured in search units (log10 for log ranges, so 9.7e-4 in [1e-6, 1e-3] is
at 99.6%, not "somewhere in the middle"), gets one line::

    careful: best lr=9.7e-04 is at the upper border of [1e-06, 1e-03]; widen the range
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from regularkit._util.checks import check_in_range
from regularkit.search.distributions import Int, Numeric
from regularkit.search.space import SearchSpace


def border_position(dist: Numeric, value: float, edge_fraction: float = 0.1) -> str | None:
    """"lower", "upper" or None: whether ``value`` sits in an outer ``edge_fraction`` of ``dist``."""
    pos = dist.position(value)
    if pos <= edge_fraction:
        return "lower"
    if pos >= 1.0 - edge_fraction:
        return "upper"
    return None


def check_edge_fraction(edge_fraction: Any) -> float:
    return check_in_range("edge_fraction", edge_fraction, 0.0, 0.5, low_inclusive=False, high_inclusive=False)


def border_warnings(space: SearchSpace, best_params: Mapping[str, Any], edge_fraction: float = 0.1
                    ) -> list[str]:
    """One warning per numeric parameter whose best value is near a border of its range."""
    edge_fraction = check_edge_fraction(edge_fraction)
    out = []
    for name in space.numeric:
        if name not in best_params:
            continue
        dist = space[name]
        side = border_position(dist, best_params[name], edge_fraction)
        if side is not None:
            value = _fmt(dist, best_params[name], exact=False)
            lo, hi = _fmt(dist, dist.low), _fmt(dist, dist.high)
            out.append(f"careful: best {name}={value} is at the {side} border of [{lo}, {hi}]; widen the range")
    return out


def _fmt(dist: Numeric, x: float, *, exact: bool = True) -> str:
    """Scientific notation for log ranges (shortest that shows the bound), plain otherwise."""
    if isinstance(dist, Int):
        return str(int(x))
    if not dist.log:
        return f"{x:.4g}" if exact else f"{x:.2g}"
    if not exact:
        return f"{x:.1e}"
    for digits in range(4):
        text = f"{x:.{digits}e}"
        if float(text) == x:
            return text
    return f"{x:.3e}"
