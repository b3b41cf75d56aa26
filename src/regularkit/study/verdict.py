"""The verdict: what the numbers say, in a paragraph a newcomer can act on.

1. **The baseline's fit.**  Chance error is ``1 - (share of the most common test class)``.
   The baseline *under-fits* when its training error is above half of chance: more
   capacity, more epochs or a better learning rate come before regularization, which
   trades training error for generalization.  It *over-fits* when the gap (test minus
   train error) is above 2 points and above a quarter of its test error: there is room for
   regularization.  Otherwise it generalizes well already and gains will be small.
2. **What helps, what hurts.**  A recipe helps (hurts) when its paired difference in test
   error to the baseline (its error with TTA, for a recipe that predicts with it) has a
   95% interval entirely below (above) zero
   (:mod:`~regularkit.study.statistics`); the others cannot be told apart from the
   baseline with this many seeds.
3. **One recommendation**, chosen on the *validation* split, never on test: among the
   recipes whose validation error is lower than the baseline's beyond seed noise, the one
   with the lowest mean validation error; its test difference is then reported, test being
   the honest check of the choice (and said to be within seed noise when its interval
   holds zero).  When none qualifies, the recommendation is the recipe
   with the lowest validation error if it is not the baseline, flagged as within noise, or
   the baseline itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from regularkit._util.fmt import pct
from regularkit.metrics.summary import Interval
from regularkit.study.summary import RecipeSummary

__all__ = ["Verdict", "make_verdict", "points"]


def points(iv: Interval) -> str:
    """``"1.20 points (95% CI 0.40 to 2.00)"``: the size of a difference of error rates, in its direction."""
    low, high = (-iv.high, -iv.low) if iv.mean < 0 else (iv.low, iv.high)
    return f"{pct(abs(iv.mean))} points (95% CI {pct(low)} to {pct(high)})"


@dataclass(frozen=True)
class Verdict:
    fit: str                                  # "under-fits" | "over-fits" | "fits"
    lines: list[str] = field(default_factory=list)
    recommended: str | None = None
    helped: list[str] = field(default_factory=list)
    hurt: list[str] = field(default_factory=list)
    helped_on_val: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def _fit(base: RecipeSummary, chance: float) -> tuple[str, str]:
    train, test = base.stats["train_error"][0], base.stats["test_error"][0]
    gap = test - train
    if train > 0.5 * chance:
        return "under-fits", (f"The baseline under-fits: its training error is {pct(train)}% where guessing gives "
                              f"{pct(chance)}%. Regularization trades training error for generalization, so it is "
                              "not what this model needs first: give it more capacity, more epochs or a better "
                              "learning rate.")
    if gap > max(0.02, 0.25 * test):
        return "over-fits", (f"The baseline over-fits: {pct(train)}% training error against {pct(test)}% test error, "
                             f"a gap of {pct(gap)} points, so there is room for regularization.")
    return "fits", (f"The baseline generalizes well already (training error {pct(train)}%, test error {pct(test)}%, "
                    f"a gap of {pct(gap)} points): expect small gains from regularization.")


def make_verdict(summaries: Sequence[RecipeSummary], comparisons: dict[str, dict[str, Interval]], *,
                 chance_error: float, seeds: int) -> Verdict | None:
    """The verdict of a study with a baseline (None without one)."""
    by_name = {s.recipe: s for s in summaries}
    base = by_name.get("baseline")
    if base is None or base.diverged:
        return None
    fit, first = _fit(base, chance_error)
    lines = [first]
    helped = [n for n, c in comparisons.items() if "test_error" in c and c["test_error"].excludes_zero
              and c["test_error"].mean < 0]
    hurt = [n for n, c in comparisons.items() if "test_error" in c and c["test_error"].excludes_zero
            and c["test_error"].mean > 0]
    helped.sort(key=lambda n: comparisons[n]["test_error"].mean)

    def error(n: str) -> str:  # a recipe that predicts with TTA is judged by its TTA error
        return "test error (with TTA)" if by_name[n].with_tta else "test error"

    for n in helped:
        lines.append(f"{n} lowers {error(n)} by {points(comparisons[n]['test_error'])}.")
    for n in hurt:
        lines.append(f"{n} raises {error(n)} by {points(comparisons[n]['test_error'])}.")
    unclear = [n for n in comparisons if n not in helped and n not in hurt]
    if unclear:
        lines.append(f"{', '.join(unclear)} cannot be told apart from the baseline with {seeds} seed"
                     f"{'s' if seeds != 1 else ''}" + (" (more seeds narrow the intervals)." if seeds < 5 else "."))
    diverged = [s.recipe for s in summaries if s.diverged]
    if diverged:
        lines.append(f"{', '.join(diverged)} diverged: lower the learning rate or the strength.")
    on_val = [n for n, c in comparisons.items() if "val_error" in c and c["val_error"].excludes_zero
              and c["val_error"].mean < 0]
    candidates = on_val or [n for n in comparisons if "val_error" in comparisons[n]]
    best = min(candidates, key=lambda n: by_name[n].stats["val_error"][0], default=None)
    if best is not None and not on_val and by_name[best].stats["val_error"][0] >= base.stats["val_error"][0]:
        best = None
    if best is None:
        lines.append("Recommendation: keep the baseline; no recipe lowers the validation error.")
    else:
        test = comparisons[best].get("test_error")
        sure = "" if best in on_val else " (its advantage on validation is within seed noise)"
        told = "" if test is None else (
            f"; on test it {'lowers' if test.mean < 0 else 'raises'} the error"
            f"{' (with TTA)' if by_name[best].with_tta else ''} by {points(test)}"
            + ("" if test.excludes_zero else ", within seed noise"))
        lines.append(f"Recommendation: {best}, the lowest validation error{sure}{told}.")
    return Verdict(fit=fit, lines=lines, recommended=best or "baseline", helped=helped, hurt=hurt,
                   helped_on_val=on_val)
