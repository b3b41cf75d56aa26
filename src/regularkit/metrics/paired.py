"""Paired differences by seed: an interval that keeps its promise, a family correction, and seeds needed.

A study compares each recipe with the baseline seed by seed: seed ``i`` of both
shares the split and the draws, so the differences ``d_i = a_i - b_i`` remove what
the seeds share.  Everything here works on those differences.

**The interval** is Student's t at every number of seeds (Student 1908; Hogg & Tanis
§7): ``mean(d) +- t(n-1, 1 - alpha/2) * s / sqrt(n)`` with ``s`` the sample std
(ddof = 1), and the two-sided p-value ``2 * P(T_{n-1} > |mean(d)| / (s / sqrt(n)))``;
the interval excludes 0 exactly when ``p < alpha``.  Earlier versions switched to
the percentile bootstrap from five seeds; at 5-10 seeds that bootstrap is too
narrow (16.5 % of null differences "beyond noise" at 5 seeds, 11 % at 10, where 5 %
is promised), so it is gone.  The suite checks the t interval by simulation
(tests/metrics/test_paired.py): false claims <= 6 % and coverage >= 94 % at 3, 5, 10
and 20 seeds for normal, heavy-tailed t(3) and moderately skewed differences
(lognormal, sigma = 0.25, skewness 0.78).  No test holds its level for *every*
skewed distribution at a handful of seeds (Bahadur & Savage 1956): for strongly
skewed differences (lognormal sigma = 1) the t interval claims 13-18 %; docs/results.md
says so.

**Zero spread** (every difference identical, e.g. two seeds each one image better):
the t interval would have zero width and claim certainty from no evidence of noise.
Such differences get the exact sign test instead (p = 2 * 0.5^n for a non-zero
difference; method ``"sign"``), valid whatever the distribution of the differences:
with n <= 5 seeds it can never reach 5 %, so the interval is the whole line.

**Many recipes, one family.**  A study compares k recipes with one baseline; at 95 %
each, the chance that some null recipe is called "beyond noise" grows with k.
:func:`adjust` puts each of the k intervals at ``1 - 0.05 / k`` (Bonferroni 1936):
the family-wise false-claim rate is <= 5 % whatever the dependence between the
comparisons (they share the baseline).  Holm's step-down test (Holm 1979) would call
a few more recipes when several have real effects, but its calls have no matching
intervals; here the star and the interval never disagree.

**Seeds needed** (:func:`seeds_needed`): for a difference the study could not call,
the number of seeds at which a paired t test at the adjusted level would detect the
*observed* mean difference with 80 % power, if the observed mean and spread were the
true ones (noncentral t; Cohen 1988 ch. 2).  A post-hoc figure, said as such.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from regularkit.errors import RegularkitError

__all__ = ["Interval", "paired_interval", "t_bounds", "adjust", "seeds_needed", "FAMILY_CONFIDENCE"]

#: The family-wise confidence of a study's calls (and the per-comparison one of a single interval).
FAMILY_CONFIDENCE = 0.95
#: Beyond this many seeds, a difference is "not detectable" for practical purposes.
MAX_SEEDS = 1000


@dataclass(frozen=True)
class Interval:
    """``mean(a - b)`` over ``n`` pairs with its ``confidence`` interval ``[low, high]``.

    ``sd`` is the sample std of the differences; ``p_value`` the two-sided p-value of "no
    difference" (t test, or the sign test when every difference is identical); ``comparisons``
    the size of the family the confidence was adjusted for (1: not adjusted).
    """

    mean: float
    low: float
    high: float
    n: int
    method: str          # "t", "sign" (zero spread) or "none" (fewer than two pairs)
    confidence: float = FAMILY_CONFIDENCE
    sd: float = float("nan")
    p_value: float = float("nan")
    comparisons: int = 1

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @property
    def excludes_zero(self) -> bool:
        """Whether the difference is beyond seed noise at this interval's confidence (0 is outside it)."""
        return self.n >= 2 and self.p_value < self.alpha and (self.low > 0 or self.high < 0)

    @property
    def adjusted_p(self) -> float:
        """The p-value adjusted for the family (Bonferroni: ``min(1, k * p)``)."""
        return min(1.0, self.p_value * self.comparisons) if not math.isnan(self.p_value) else self.p_value

    def at(self, confidence: float, comparisons: int | None = None) -> "Interval":
        """The same differences at another confidence (e.g. the raw 95 % of an adjusted interval)."""
        comparisons = self.comparisons if comparisons is None else comparisons
        if self.method == "none":
            return replace(self, confidence=confidence, comparisons=comparisons)
        if self.method == "sign":
            low, high = _sign_bounds(self.mean, self.p_value, 1.0 - confidence)
        else:
            low, high = t_bounds(self.mean, self.sd, self.n, confidence)
        return replace(self, low=low, high=high, confidence=confidence, comparisons=comparisons)


def t_bounds(mean, sd, n: int, confidence: float):
    """``mean -+ t(n-1, (1+c)/2) * sd / sqrt(n)``; works elementwise on arrays of means and sds."""
    half = stats.t.ppf((1.0 + confidence) / 2.0, n - 1) * np.asarray(sd) / math.sqrt(n)
    low, high = np.asarray(mean) - half, np.asarray(mean) + half
    return (float(low), float(high)) if np.ndim(low) == 0 else (low, high)


def _sign_bounds(mean: float, p: float, alpha: float) -> tuple[float, float]:
    return (mean, mean) if p < alpha else (-math.inf, math.inf)


def paired_interval(a: Sequence[float], b: Sequence[float], *,
                    confidence: float = FAMILY_CONFIDENCE) -> Interval:
    """The paired differences ``a_i - b_i`` (seed i of a recipe minus seed i of the baseline):
    their mean, Student's t interval at ``confidence`` and the t test's p-value (see the module
    docstring; identical differences get the sign test, one pair no interval)."""
    if len(a) != len(b):
        raise RegularkitError(f"paired_interval needs two sequences of the same length, got {len(a)} and {len(b)}")
    if not 0.0 < confidence < 1.0:
        raise RegularkitError(f"confidence must be in (0, 1), got {confidence!r}")
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), n, "none", confidence)
    sd = float(d.std(ddof=1))
    if np.all(d == d[0]):  # zero spread: the exact sign test, no claim from no evidence of noise
        p = 1.0 if mean == 0.0 else min(1.0, 2.0 * 0.5 ** n)
        low, high = _sign_bounds(mean, p, 1.0 - confidence)
        return Interval(mean, low, high, n, "sign", confidence, 0.0, p)
    p = float(2.0 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))
    low, high = t_bounds(mean, sd, n, confidence)
    return Interval(mean, low, high, n, "t", confidence, sd, p)


def adjust(intervals: Mapping[str, Interval], *,
           family_confidence: float = FAMILY_CONFIDENCE) -> dict[str, Interval]:
    """Each of the k intervals at ``1 - (1 - family_confidence) / k`` (Bonferroni), so that the chance of
    any false "beyond noise" in the family is at most ``1 - family_confidence``."""
    k = max(1, len(intervals))
    level = 1.0 - (1.0 - family_confidence) / k
    return {name: iv.at(level, comparisons=k) for name, iv in intervals.items()}


def seeds_needed(iv: Interval, *, power: float = 0.8, max_seeds: int = MAX_SEEDS) -> int | None:
    """Seeds at which a paired t test at ``iv``'s level detects ``iv.mean`` with ``power``, taking the
    observed mean and spread as the truth; None when the difference is ~0 (more than ``max_seeds``) or
    there is no spread or fewer than two pairs to measure it."""
    if iv.method != "t" or iv.mean == 0.0 or not iv.sd > 0:
        return None
    effect, alpha = abs(iv.mean) / iv.sd, iv.alpha

    def achieved(n: int) -> float:
        crit = stats.t.ppf(1 - alpha / 2, n - 1)
        nc = effect * math.sqrt(n)
        far = float(stats.nct.cdf(-crit, n - 1, nc))  # the wrong tail: negligible, NaN where it underflows
        return float(stats.nct.sf(crit, n - 1, nc)) + (far if math.isfinite(far) else 0.0)

    if achieved(max_seeds) < power:
        return None
    low, high = 2, max_seeds  # the power grows with n: bisect for the smallest n reaching it
    while low < high:
        mid = (low + high) // 2
        if achieved(mid) >= power:
            high = mid
        else:
            low = mid + 1
    return low
