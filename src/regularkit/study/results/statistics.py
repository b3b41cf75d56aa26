"""Differences with confidence: each recipe against the baseline, paired by seed.

Seed ``k`` of a recipe and seed ``k`` of the baseline share the data split and
the seed of everything random, so their difference removes what the seeds
share.  For each recipe and each of test error, the gap and ECE (and validation
error, which is what the study may base a choice on), the mean paired difference
``recipe - baseline`` gets Student's t interval over the differences
(:func:`regularkit.metrics.paired.paired_interval`).  The k recipes compared with
one baseline are one family: each metric's k intervals are put at ``1 - 0.05 / k``
(:func:`regularkit.metrics.paired.adjust`, Bonferroni), so the chance that any
recipe with no real effect is called "beyond seed noise" stays at most 5 %.  A
difference whose adjusted interval excludes 0 is *beyond seed noise*; negative is
better for all four metrics.  ``Interval.at(0.95, 1)`` gives back the raw,
per-comparison interval (results.csv has both).

Test error is the error of the predictions the recipe makes: for a recipe that
predicts with test-time augmentation (its runs record ``tta_test_error``), the
TTA error is what is compared with the baseline's test error (the table, the
verdict and ``results.csv``'s ``delta_test_error_with_tta`` say so).  Comparing
its plain test error would judge the model without the step the recipe is about.
"""
from __future__ import annotations

from typing import Any, Sequence

from regularkit.metrics.paired import Interval, adjust, paired_interval
from regularkit.study.results.summary import RecipeSummary

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
    """recipe -> metric -> paired interval of ``recipe - baseline``, adjusted for the family of recipes
    compared on that metric (empty when there is no baseline, or it diverged)."""
    base = next((s for s in summaries if s.recipe == baseline), None)
    if base is None or base.diverged:
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
    for metric in COMPARED:  # each metric's comparisons are one family
        family = adjust({n: c[metric] for n, c in out.items() if metric in c})
        for n, iv in family.items():
            out[n][metric] = iv
    return out
