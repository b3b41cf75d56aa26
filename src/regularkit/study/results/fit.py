"""How the baseline fits its data, read from what the study measured: the errors and the curves.

Deck 003's picture: training error high -> under-fitting (bias: capacity, epochs, the
learning rate come first, and regularization, which trades training error for
generalization, cannot help it); a large gap between test and training error ->
over-fitting (variance: room for regularization).  Both can hold at once.  The rules,
with the baseline's mean curves over seeds (errors as fractions):

*Under-fits* when any of
  1. the training error is at least half of chance (``1 - share of the commonest class``);
  2. the training error is still falling at the end: over the last quarter of the epochs
     (at least the last two) it dropped by more than 0.5 points and more than 10 % of its
     final value, which is above 1 % (more epochs would lower it);
  3. the training error is above 5 % and more than twice the gap: what the model cannot
     fit dominates what it fails to generalize (a gap at or below zero is said as such: the
     training error is as high as the test error).
*Over-fits* when either of
  4. the gap is above 2 points and above a quarter of the test error;
  5. the validation error turned up: its final value is more than 0.5 points and 10 %
     above its minimum, reached before the last quarter (the curve early stopping reads).
*Fits* otherwise.  The rules use no test-split curve, only the final test error for the gap.
The fraction-of-chance rule alone (rule 1, the only one before) called a model with 20-30 %
training error well fitted; rule 3 catches it.  A user's Bayes error is unknown: a model on
noisy labels may be right to stop at 20 %, which the sentence leaves to the reader.

**Regression** (:func:`diagnose_regression_fit`; RMSEs in the target's units, R² on the training
rows, ``1 - SS_res / SS_tot``):

*Under-fits* when either of
  R1. the training R² is below 0.5: the network explains less than half of the training targets'
      variance, which more capacity, epochs or a better learning rate address first;
  R2. the training RMSE is still falling: over the last quarter of the epochs (at least two) it
      dropped by more than 10 % of its final value, while the training R² is below 0.9 (above it,
      little is left to fit: a curve falling towards 0 is memorization, which R3 reads).
*Over-fits* when either of
  R3. the gap (test RMSE - training RMSE) is more than a quarter of the test RMSE (the test
      error is more than 4/3 of the training error);
  R4. the validation RMSE turned up: its final value is more than 10 % above a minimum reached
      before the last quarter.
*Fits* otherwise.  The thresholds are relative, since RMSE has the target's units.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from regularkit._util.fmt import pct
from regularkit.study.results.summary import RecipeSummary

__all__ = ["Fit", "diagnose_fit", "diagnose_regression_fit", "still_falling", "turned_up", "LOW_R2"]

#: Rule R1: a training R² below this under-fits.
LOW_R2 = 0.5
#: Rule R2 applies below this training R² (above it there is little left to fit).
FITTED_R2 = 0.9


@dataclass(frozen=True)
class Fit:
    call: str         # "under-fits" | "over-fits" | "under- and over-fits" | "fits"
    reasons: tuple[str, ...]
    sentence: str


def _tail(curve: Sequence[float]) -> int:
    return max(2, math.ceil(len(curve) / 4))


def still_falling(curve: Sequence[float]) -> bool:
    """Rule 2: the training error dropped over the last quarter by > 0.5 points and > 10 % of its final value."""
    if len(curve) < 3 or curve[-1] <= 0.01:
        return False
    drop = curve[-_tail(curve)] - curve[-1]
    return drop > 0.005 and drop > 0.1 * curve[-1]


def turned_up(curve: Sequence[float]) -> bool:
    """Rule 5: the validation error ends > 0.5 points and > 10 % above a minimum reached before the last quarter."""
    if len(curve) < 4:
        return False
    head = curve[:-_tail(curve)]
    low = min(head)
    return curve[-1] - low > 0.005 and curve[-1] > 1.1 * low


def diagnose_fit(base: RecipeSummary, chance: float) -> Fit:
    """The baseline's fit by the rules of the module docstring, with the reasons that fired."""
    train, test = base.stats["train_error"][0], base.stats["test_error"][0]
    gap = test - train
    under, over = [], []
    if train >= 0.5 * chance:
        under.append(f"its training error {pct(train)}% is at least half of guessing's {pct(chance)}%")
    if still_falling(base.curves.get("train_error", [])):
        under.append("its training error was still falling when training stopped")
    if train > 0.05 and train > 2 * gap:
        under.append(f"its training error {pct(train)}% is more than twice the gap of {pct(gap)} points" if gap > 0
                     else f"its training error {pct(train)}% is as high as its test error (a gap of {pct(gap)} points)")
    if gap > max(0.02, 0.25 * test):
        over.append(f"{pct(train)}% training error against {pct(test)}% test error, a gap of {pct(gap)} points")
    if turned_up(base.curves.get("val_error", [])):
        over.append("its validation error rose from its minimum before training ended")
    return _sentence(under, over, f"training error {pct(train)}%, test error {pct(test)}%, a gap of {pct(gap)} points",
                     reason=f"training error {pct(train)}%, gap {pct(gap)} points")


def _relative_drop(curve: Sequence[float]) -> bool:
    """Rule R2: the curve dropped over its last quarter by more than 10 % of its final value."""
    return len(curve) >= 3 and curve[-_tail(curve)] - curve[-1] > 0.1 * curve[-1]


def _relative_rise(curve: Sequence[float]) -> bool:
    """Rule R4: the final value is more than 10 % above a minimum reached before the last quarter."""
    return len(curve) >= 4 and curve[-1] > 1.1 * min(curve[:-_tail(curve)])


def diagnose_regression_fit(base: RecipeSummary) -> Fit:
    """The baseline's fit on a regression task by rules R1-R4 of the module docstring."""
    train, test = base.stats["train_error"][0], base.stats["test_error"][0]
    r2 = base.stats.get("train_r2", (math.nan,))[0]
    gap = test - train
    under, over = [], []
    if r2 < LOW_R2:
        under.append(f"its training R² is {r2:.2f}, below {LOW_R2}")
    if r2 < FITTED_R2 and _relative_drop(base.curves.get("train_error", [])):
        under.append("its training RMSE was still falling when training stopped")
    if gap > 0.25 * test:
        over.append(f"training RMSE {train:.4g} against test RMSE {test:.4g}, a gap of {gap:.4g}")
    if _relative_rise(base.curves.get("val_error", [])):
        over.append("its validation RMSE rose from its minimum before training ended")
    return _sentence(under, over, f"training RMSE {train:.4g} (R² {r2:.2f}), test RMSE {test:.4g}")


def _sentence(under: list[str], over: list[str], fine: str, *, reason: str | None = None) -> Fit:
    """The fit call and its sentence from the rules that fired (classification and regression alike);
    ``fine`` describes a baseline that fits (``reason``: its short form for ``fit_reason``, default ``fine``)."""
    if under and over:
        return Fit("under- and over-fits", tuple(under + over),
                   f"The baseline both under-fits ({'; '.join(under)}) and over-fits ({'; '.join(over)}): "
                   "regularization can close the gap, but more capacity, epochs or a better learning rate address "
                   "the training error.")
    if under:
        return Fit("under-fits", tuple(under),
                   f"The baseline under-fits: {'; '.join(under)}. Regularization trades training error for "
                   "generalization, so it is not what this model needs first: give it more capacity, more epochs "
                   "or a better learning rate.")
    if over:
        return Fit("over-fits", tuple(over),
                   f"The baseline over-fits: {'; '.join(over)}, so there is room for regularization.")
    return Fit("fits", (reason or fine,), f"The baseline generalizes well already ({fine}): expect small gains "
                                          "from regularization.")
