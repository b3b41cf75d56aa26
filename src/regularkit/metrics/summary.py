"""The numbers every report reduces runs to: the gap, and mean ± spread with one definition.

The gap is ``test error - train error`` (deck 003: regularization is "any
modification ... intended to reduce its generalization error but not its
training error"), both measured by the same ``evaluate`` function in eval mode.
The spread is the *sample* standard deviation (ddof = 1) everywhere: over seeds
in the study, over folds in k-fold, over repeats in the demos and benchmarks.
A difference between two recipes is a *paired* difference by seed with a 95%
interval (:func:`paired_interval`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from regularkit.errors import RegularkitError

__all__ = ["gap", "mean_std", "Interval", "paired_interval", "BOOTSTRAP_FROM"]


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


@dataclass(frozen=True)
class Interval:
    """A paired difference ``mean(a - b)`` with its ``confidence`` interval ``[low, high]``."""

    mean: float
    low: float
    high: float
    n: int
    method: str          # "t", "bootstrap" or "none" (fewer than two pairs)
    confidence: float = 0.95

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of 0 (the difference is beyond noise)."""
        return self.n >= 2 and (self.low > 0 or self.high < 0)


#: From this many pairs on, the interval is a percentile bootstrap instead of Student's t.
BOOTSTRAP_FROM = 5
BOOTSTRAP_RESAMPLES = 10_000


def paired_interval(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                    seed: int = 0) -> Interval:
    """The mean of the paired differences ``a_i - b_i`` (seed i of a recipe minus seed i of the baseline)
    and its ``confidence`` interval.

    Fewer than :data:`BOOTSTRAP_FROM` pairs: Student's t interval over the differences,
    ``mean +- t(n-1, (1+c)/2) * s / sqrt(n)`` with ``s`` the sample std (ddof = 1).  From
    :data:`BOOTSTRAP_FROM` pairs: the percentile bootstrap of the mean difference
    (``scipy.stats.bootstrap``, :data:`BOOTSTRAP_RESAMPLES` resamples, seeded: same data,
    same interval), which assumes no normality.  One pair: the difference, no interval.
    Pairing by seed removes what the seeds share (the split, the initial weights' draw), so
    the interval is narrower than comparing two unpaired means.
    """
    from scipy import stats  # heavy import, only when intervals are asked for

    if len(a) != len(b):
        raise RegularkitError(f"paired_interval needs two sequences of the same length, got {len(a)} and {len(b)}")
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n, mean = len(d), float(d.mean()) if len(d) else float("nan")
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n, "none", confidence)
    if np.all(d == d[0]):
        return Interval(mean, mean, mean, n, "t" if n < BOOTSTRAP_FROM else "bootstrap", confidence)
    if n < BOOTSTRAP_FROM:
        half = stats.t.ppf((1 + confidence) / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
        return Interval(mean, float(mean - half), float(mean + half), n, "t", confidence)
    res = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=BOOTSTRAP_RESAMPLES,
                          method="percentile", random_state=np.random.default_rng(seed))
    return Interval(mean, float(res.confidence_interval.low), float(res.confidence_interval.high), n, "bootstrap",
                    confidence)
