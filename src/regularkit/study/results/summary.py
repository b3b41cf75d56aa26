"""From run records to the study's numbers: per recipe, mean and spread over seeds and mean curves.

The gap and the spread have one definition each, in :mod:`regularkit.metrics.summary`:
the gap is ``test error - train error``, both measured by the same ``evaluate``
function in eval mode at the end of training (after early stopping restored its
best weights); the spread is the sample standard deviation (ddof = 1).

A recipe with a diverged run (a non-finite or exploding loss) has no numbers:
its row says "diverged" with how many of its seeds did, never an error rate
computed from NaN outputs or from the seeds that happened to survive.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from regularkit.metrics.summary import mean_std

METRICS = ("train_error", "val_error", "test_error", "gap")


@dataclass
class RecipeSummary:
    recipe: str
    description: str
    seeds: list[int]
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)  # mean per epoch over seeds
    pooled_probs: Any = None  # (test probabilities of all seeds stacked, matching labels), for calibration
    diverged: list[dict[str, Any]] = field(default_factory=list)  # {"seed", "epoch", "step", "value"} per run
    warnings: list[str] = field(default_factory=list)
    strength: dict[str, Any] | None = None   # {"field", "value", "tuned", ...}: the recipe's main strength
    deltas: dict[str, Any] = field(default_factory=dict)  # metric -> paired Interval against the baseline
    seeds_needed: Any = None  # undecided on test: seeds for 80 % power at the observed difference ("" for ~0)
    task: str = "classification"  # "regression": the errors are RMSEs in the target's units

    @property
    def with_tta(self) -> bool:
        """Whether the recipe predicts with test-time augmentation (its Δ test compares the TTA error)."""
        return "tta_test_error" in self.stats

    @property
    def status(self) -> str:
        """``"ok"``, or ``"diverged (k of n seeds)"``."""
        return f"diverged ({len(self.diverged)} of {len(self.seeds)} seeds)" if self.diverged else "ok"

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"recipe": self.recipe, "n_seeds": len(self.seeds), "status": self.status}
        if self.strength is not None:
            value = self.strength["value"]  # a joint search (--combine): its fields as a JSON object
            row.update(strength_field=self.strength["field"],
                       strength_value=json.dumps(value) if isinstance(value, dict) else value,
                       strength_tuned=self.strength.get("tuned", False))
        for name, (m, s) in self.stats.items():
            row[f"{name}_mean"], row[f"{name}_std"] = round(m, 6), round(s, 6)
        for name, iv in self.deltas.items():  # recipe - baseline, paired by seed: raw 95% and adjusted
            raw = iv.at(0.95, 1)
            row.update({f"delta_{name}_mean": round(iv.mean, 6), f"delta_{name}_low": round(iv.low, 6),
                        f"delta_{name}_high": round(iv.high, 6), f"delta_{name}_method": iv.method,
                        f"delta_{name}_p": _round(iv.p_value), f"delta_{name}_p_adjusted": _round(iv.adjusted_p),
                        f"delta_{name}_comparisons": iv.comparisons,
                        f"delta_{name}_raw_low": round(raw.low, 6), f"delta_{name}_raw_high": round(raw.high, 6),
                        f"delta_{name}_beyond_noise": iv.excludes_zero,
                        f"delta_{name}_beyond_noise_raw": raw.excludes_zero})
            if name == "test_error" and self.seeds_needed is not None:
                row["seeds_needed"] = self.seeds_needed
        if "test_error" in self.deltas:
            row["delta_test_error_with_tta"] = self.with_tta
        return row


def _round(p: float) -> float:
    return p if p != p else float(f"{p:.4g}")  # NaN stays NaN; p-values keep 4 significant digits


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
        s.diverged = [{"seed": r["seed"], **r["diverged"]} for r in runs if r.get("diverged")]
        s.task = runs[0].get("task", "classification")
        if s.diverged:
            out.append(s)
            continue
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
