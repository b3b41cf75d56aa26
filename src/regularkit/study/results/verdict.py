"""The verdict: what the numbers say, in a paragraph a newcomer can act on.

1. **The baseline's fit** (:mod:`~regularkit.study.results.fit`): under-fits, over-fits, both or
   fits, read from its training error, its gap and its curves, with the reasons.
2. **What helps, what hurts.**  A recipe helps (hurts) when its paired difference in test
   error to the baseline (its error with TTA, for a recipe that predicts with it) lies
   entirely below (above) zero at the family's adjusted level
   (:mod:`~regularkit.study.results.statistics`: k recipes compared, each at ``1 - 0.05/k``, so all
   calls together are wrong at most 5 % of the time).  The others cannot be told apart
   from the baseline with this many seeds; for each, the seeds that would detect its
   observed difference with 80 % power (:func:`~regularkit.metrics.paired.seeds_needed`).
3. **One recommendation**, chosen on the *validation* split, never on test: among the
   recipes whose validation error is lower than the baseline's beyond seed noise (same
   adjustment), the one with the lowest mean validation error; its test difference is
   then reported, test being the honest check of the choice (said to be within seed
   noise when its interval holds zero).  When none qualifies, the recommendation is the
   recipe with the lowest validation error if it is not the baseline, flagged as within
   noise, or the baseline itself.  A recommendation that worsens calibration (ECE) beyond
   noise (its own 95 % interval) is flagged.
4. **No baseline to compare with** (it was not asked for, or it diverged): the verdict says
   why, ranks the recipes by validation error and recommends the lowest, within noise.
5. **Regression** (``task="regression"``): the errors are RMSEs in the target's units, so the same
   rules read them (helps / hurts from the paired RMSE intervals, the recommendation on validation
   RMSE); the fit is :func:`~regularkit.study.results.fit.diagnose_regression_fit`, the numbers are written
   in units (:data:`REGRESSION`), and the study adds the ridge row's sentence
   (:func:`~regularkit.study.results.ridge_row.ridge_sentence`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from regularkit._util.fmt import pct
from regularkit.metrics.paired import FAMILY_CONFIDENCE, Interval, seeds_needed
from regularkit.study.results.fit import diagnose_fit, diagnose_regression_fit
from regularkit.study.results.summary import RecipeSummary

__all__ = ["Verdict", "make_verdict", "points", "units", "Words", "CLASSIFICATION", "REGRESSION"]


def units(value: float) -> str:
    """A regression difference or RMSE in the target's units, 4 significant digits: ``units(12.345) == "12.35"``."""
    text = f"{value:.4g}"
    return text[1:] if text.startswith("-") and float(text) == 0.0 else text


@dataclass(frozen=True)
class Words:
    """How the verdict names and writes its metric: error rates in points, or RMSE in the target's units."""

    error: str = "error"          # "test error" / "test RMSE"
    fmt: Callable[[float], str] = pct
    suffix: str = "%"             # after a value of the metric
    size: str = " points"         # after a difference


CLASSIFICATION, REGRESSION = Words(), Words(error="RMSE", fmt=units, suffix="", size="")


def _ci(iv: Interval, w: Words = CLASSIFICATION) -> str:
    """``"95% CI 0.40 to 2.00"`` in the difference's direction (``"adjusted 95% CI"`` for one of a family)."""
    low, high = (-iv.high, -iv.low) if iv.mean < 0 else (iv.low, iv.high)
    return f"{'95% CI' if iv.comparisons == 1 else 'adjusted 95% CI'} {w.fmt(low)} to {w.fmt(high)}"


def points(iv: Interval, w: Words = CLASSIFICATION) -> str:
    """``"1.20 points (95% CI 0.40 to 2.00)"``: the size of a difference of error rates (or RMSEs), in its direction."""
    return f"{w.fmt(abs(iv.mean))}{w.size} ({_ci(iv, w)})"


@dataclass(frozen=True)
class Verdict:
    fit: str                                  # "under-fits" | "over-fits" | "under- and over-fits" | "fits" | "unknown"
    lines: list[str] = field(default_factory=list)
    recommended: str | None = None
    helped: list[str] = field(default_factory=list)
    hurt: list[str] = field(default_factory=list)
    helped_on_val: list[str] = field(default_factory=list)
    fit_reason: list[str] = field(default_factory=list)
    within_noise: bool = True                 # the recommendation's validation advantage is within seed noise
    seeds_needed: dict[str, int | None] = field(default_factory=dict)  # undecided recipe -> seeds (None: ~0)
    comparisons: int = 0                      # recipes compared with the baseline (the family's size)
    calibration_worse: bool = False           # the recommendation's ECE is higher beyond noise

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def _seeds_sentence(unclear: list[str], needed: dict[str, int | None], seeds: int) -> str:
    plural = "s" if seeds != 1 else ""
    head = f"{', '.join(unclear)} cannot be told apart from the baseline with {seeds} seed{plural}"
    more = [f"{n} {needed[n]}" for n in unclear if needed.get(n)]
    none = [n for n in unclear if needed.get(n) is None]
    parts = []
    if more:
        parts.append("if the observed differences are real, these numbers of seeds would show them (80% power): "
                     + ", ".join(more))
    if none:
        parts.append(f"{', '.join(none)} show{'s' if len(none) == 1 else ''} no detectable difference")
    return head + ("; " + "; ".join(parts) if parts else "") + "."


def _no_baseline(summaries: Sequence[RecipeSummary], w: Words = CLASSIFICATION) -> "Verdict":
    base = next((s for s in summaries if s.recipe == "baseline"), None)
    if base is None:
        why = ("There is no baseline run, so no recipe can be compared with one: add baseline to the recipes to "
               "know what each buys.")
    else:
        why = (f"The baseline diverged ({len(base.diverged)} of {len(base.seeds)} seeds), so no recipe can be "
               "compared with it: lower the learning rate.")
    lines = [why]
    ranked = sorted((s for s in summaries if not s.diverged and "val_error" in s.stats),
                    key=lambda s: s.stats["val_error"][0])
    diverged = [s.recipe for s in summaries if s.diverged and s.recipe != "baseline"]
    if diverged:
        lines.append(f"{', '.join(diverged)} diverged: lower the learning rate or the strength.")
    if not ranked:
        lines.append("No recipe finished without diverging, so there is nothing to recommend.")
        return Verdict(fit="unknown", lines=lines, recommended=None, fit_reason=["no baseline"])
    lines.append(f"By validation {w.error}: " + ", ".join(f"{s.recipe} {w.fmt(s.stats['val_error'][0])}{w.suffix}"
                                                           for s in ranked) + ".")
    lines.append(f"Recommendation: {ranked[0].recipe}, the lowest validation {w.error} (not compared with a baseline, "
                 "so within noise as far as this study can tell).")
    return Verdict(fit="unknown", lines=lines, recommended=ranked[0].recipe, fit_reason=["no baseline"])


def make_verdict(summaries: Sequence[RecipeSummary], comparisons: dict[str, dict[str, Interval]], *,
                 chance_error: float, seeds: int, task: str = "classification") -> Verdict:
    """The verdict of a study (see the module docstring); ``comparisons`` as from ``compare_to_baseline``.
    ``task="regression"``: the errors are RMSEs in the target's units, the fit is read by
    :func:`~regularkit.study.results.fit.diagnose_regression_fit`, the rest is the same rules."""
    w = REGRESSION if task == "regression" else CLASSIFICATION
    by_name = {s.recipe: s for s in summaries}
    base = by_name.get("baseline")
    if base is None or base.diverged:
        return _no_baseline(summaries, w)
    fit = diagnose_regression_fit(base) if task == "regression" else diagnose_fit(base, chance_error)
    lines = [fit.sentence]
    tested = {n: c["test_error"] for n, c in comparisons.items() if "test_error" in c}
    helped = sorted((n for n, iv in tested.items() if iv.excludes_zero and iv.mean < 0), key=lambda n: tested[n].mean)
    hurt = [n for n, iv in tested.items() if iv.excludes_zero and iv.mean > 0]

    def error(n: str) -> str:  # a recipe that predicts with TTA is judged by its TTA error
        return f"test {w.error} (with TTA)" if by_name[n].with_tta else f"test {w.error}"

    for n in helped:
        lines.append(f"{n} lowers {error(n)} by {points(tested[n], w)}.")
    for n in hurt:
        lines.append(f"{n} raises {error(n)} by {points(tested[n], w)}.")
    unclear = [n for n in comparisons if n not in helped and n not in hurt]
    needed = {n: seeds_needed(tested[n]) for n in unclear if n in tested}
    if unclear:
        lines.append(_seeds_sentence(unclear, needed, seeds))
    k = len(tested)
    if k > 1:
        lines.append(f"Intervals are adjusted for the {k} recipes compared (each at "
                     f"{100 * (1 - (1 - FAMILY_CONFIDENCE) / k):.4g}%), so all these calls together are wrong at "
                     "most 5% of the time.")
    diverged = [s.recipe for s in summaries if s.diverged]
    if diverged:
        lines.append(f"{', '.join(diverged)} diverged: lower the learning rate or the strength.")
    on_val = [n for n, c in comparisons.items() if "val_error" in c and c["val_error"].excludes_zero
              and c["val_error"].mean < 0]
    candidates = on_val or [n for n in comparisons if "val_error" in comparisons[n]]
    best = min(candidates, key=lambda n: by_name[n].stats["val_error"][0], default=None)
    if best is not None and not on_val and by_name[best].stats["val_error"][0] >= base.stats["val_error"][0]:
        best = None
    worse_ece = False
    if best is None:
        lines.append(f"Recommendation: keep the baseline; no recipe lowers the validation {w.error}.")
    else:
        test = comparisons[best].get("test_error")
        sure = "" if best in on_val else " (its advantage on validation is within seed noise)"
        told = "" if test is None else _on_test(test, by_name[best].with_tta, w)
        lines.append(f"Recommendation: {best}, the lowest validation {w.error}{sure}{told}.")
        ece = comparisons[best].get("ece")
        if ece is not None and (raw := ece.at(FAMILY_CONFIDENCE, 1)).excludes_zero and raw.mean > 0:
            worse_ece = True
            lines.append(f"Note: {best} worsens calibration, its ECE is higher by {points(raw)}; if you use its "
                         "probabilities, recalibrate (temperature scaling) or weigh this against its error.")
    return Verdict(fit=fit.call, lines=lines, recommended=best or "baseline", helped=helped, hurt=hurt,
                   helped_on_val=on_val, fit_reason=list(fit.reasons),
                   within_noise=best is None or best not in on_val, seeds_needed=needed, comparisons=k,
                   calibration_worse=worse_ece)


def _on_test(test: Interval, with_tta: bool, w: Words = CLASSIFICATION) -> str:
    tta = " (with TTA)" if with_tta else ""
    if test.mean == 0:
        return f"; on test it leaves the {w.error}{tta} unchanged on average ({_ci(test, w)})"
    return (f"; on test it {'lowers' if test.mean < 0 else 'raises'} the {w.error}{tta} by {points(test, w)}"
            + ("" if test.excludes_zero else ", within seed noise"))
