"""From run records to the study's numbers: mean and spread over seeds, one gap definition.

The gap is ``test error - train error``, both measured by the same
``evaluate`` function in eval mode at the end of training (after early
stopping restored its best weights): what regularization is meant to shrink.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

METRICS = ("train_error", "val_error", "test_error", "gap")


def gap(train_error: float, test_error: float) -> float:
    return test_error - train_error


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    vals = [float(v) for v in values]
    if not vals:
        return float("nan"), float("nan")
    m = sum(vals) / len(vals)
    if len(vals) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1))


@dataclass
class RecipeSummary:
    recipe: str
    description: str
    seeds: list[int]
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)  # mean per epoch over seeds
    pooled_probs: Any = None  # (test probabilities of all seeds stacked, matching labels), for calibration

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"recipe": self.recipe, "n_seeds": len(self.seeds)}
        for name, (m, s) in self.stats.items():
            row[f"{name}_mean"], row[f"{name}_std"] = round(m, 6), round(s, 6)
        return row


def summarize(records: Sequence[dict[str, Any]], order: Sequence[str]) -> list[RecipeSummary]:
    """Group run records by recipe (in ``order``) and reduce over seeds."""
    by_recipe: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_recipe.setdefault(r["recipe"], []).append(r)
    out = []
    for name in order:
        runs = sorted(by_recipe.get(name, []), key=lambda r: r["seed"])
        if not runs:
            continue
        s = RecipeSummary(recipe=name, description=runs[0].get("description", ""), seeds=[r["seed"] for r in runs])
        keys = list(METRICS) + sorted({k for r in runs for k in r.get("extra", {})})
        for k in keys:
            vals = [r["final"][k] if k in r["final"] else r.get("extra", {}).get(k) for r in runs]
            vals = [v for v in vals if v is not None]
            if vals:
                s.stats[k] = mean_std(vals)
        for k in ("train_error", "val_error", "test_error"):
            series = [[e[k] for e in r["history"] if k in e] for r in runs]
            length = min((len(x) for x in series), default=0)
            # Early stopping ends seeds at different epochs: average over the common prefix.
            s.curves[k] = [sum(x[i] for x in series) / len(series) for i in range(length)]
        out.append(s)
    return out
