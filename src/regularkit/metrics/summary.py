"""The numbers every report reduces runs to: the gap, and mean ± spread with one definition.

The gap is ``test error - train error`` (deck 003: regularization is "any
modification ... intended to reduce its generalization error but not its
training error"), both measured by the same ``evaluate`` function in eval mode.
The spread is the *sample* standard deviation (ddof = 1) everywhere: over seeds
in the study, over folds in k-fold, over repeats in the demos and benchmarks.
A difference between two recipes is a *paired* difference by seed with an
interval: :mod:`regularkit.metrics.paired`.
"""
from __future__ import annotations

import math
from typing import Sequence

__all__ = ["gap", "mean_std"]


def gap(train_error: float, test_error: float) -> float:
    """``test_error - train_error``: what regularization is meant to shrink."""
    return test_error - train_error


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value, NaN for none)."""
    vals = [float(v) for v in values]
    if not vals:
        return float("nan"), float("nan")
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))
