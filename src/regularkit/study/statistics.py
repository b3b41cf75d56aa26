"""Differences with confidence: each recipe against the baseline, paired by seed.

Seed ``k`` of a recipe and seed ``k`` of the baseline share the data split and
the seed of everything random, so their difference removes what the seeds
share.  For each recipe and each of test error, the gap and ECE (and validation
error, which is what the study may base a choice on), the mean paired difference
``recipe - baseline`` gets a 95% interval (:func:`regularkit.metrics.summary.paired_interval`:
Student's t over the differences below five seeds, a seeded percentile bootstrap
from five).  A difference whose interval excludes 0 is *beyond seed noise*;
negative is better for all four metrics.

Test error is the error of the predictions the recipe makes: for a recipe that
predicts with test-time augmentation (its runs record ``tta_test_error``), the
TTA error is what is compared with the baseline's test error (the table, the
verdict and ``results.csv``'s ``delta_test_error_with_tta`` say so).  Comparing
its plain test error would judge the model without the step the recipe is about.
"""
from __future__ import annotations

from typing import Any, Sequence

from regularkit.metrics.summary import Interval, paired_interval
from regularkit.study.summary import RecipeSummary

__all__ = ["COMPARED", "compare_to_baseline", "by_seed"]

#: metric -> where it is in a run record (``final`` or ``extra``)
COMPARED = {"test_error": "final", "gap": "final", "ece": "extra", "val_error": "final"}
_WHERE = {**COMPARED, "tta_test_error": "extra"}


def by_seed(records: Sequence[dict[str, Any]], recipe: str, metric: str) -> dict[int, float]:
    """seed -> the metric's value, for the runs of ``recipe`` that did not diverge."""
    where = _WHERE[metric]
    return {r["seed"]: r[where][metric] for r in records
            if r["recipe"] == recipe and not r.get("diverged") and metric in r.get(where, {})}


def compare_to_baseline(summaries: list[RecipeSummary], records: Sequence[dict[str, Any]],
                        baseline: str = "baseline") -> dict[str, dict[str, Interval]]:
    """recipe -> metric -> paired interval of ``recipe - baseline`` (empty when there is no baseline)."""
    names = {s.recipe for s in summaries}
    if baseline not in names:
        return {}
    out: dict[str, dict[str, Interval]] = {}
    for s in summaries:
        if s.recipe == baseline or s.diverged:
            continue
        out[s.recipe] = {}
        for metric in COMPARED:
            own = "tta_test_error" if metric == "test_error" and s.with_tta else metric
            a, b = by_seed(records, s.recipe, own), by_seed(records, baseline, metric)
            seeds = sorted(set(a) & set(b))
            if seeds:
                out[s.recipe][metric] = paired_interval([a[k] for k in seeds], [b[k] for k in seeds])
    return out
