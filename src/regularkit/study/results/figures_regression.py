"""The regression study's figures: differences in RMSE, learning curves in RMSE, predictions and residuals.

* ``forest.png`` -- each recipe's paired difference in test RMSE and in the gap to the baseline,
  in the target's units, with its (adjusted) interval; filled where it excludes 0.
* ``learning_curves.png`` -- train (dashed) and validation (solid) RMSE per epoch, one panel per
  recipe, the baseline in grey on every panel, the same axes everywhere.
* ``predicted.png`` -- predicted against true test targets (the first output) for the baseline and
  the recommended recipe, the seeds' mean prediction, the diagonal y_hat = y, and each one's RMSE.
* ``residuals.png`` -- residuals y_hat - y against the prediction for the same two, with 0 drawn:
  a funnel or a curve is structure the model missed.

No reliability diagram: it reads class probabilities.  Figures are matplotlib ``Figure`` objects on
an Agg canvas (``_util.io.figure``), written atomically.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator

from regularkit._util.io import atomic_savefig, figure
from regularkit.metrics.paired import Interval
from regularkit.metrics.regression import rmse
from regularkit.study.results.figures import BLUE, GREY, plot_forest
from regularkit.study.results.summary import RecipeSummary

__all__ = ["plot_regression_forest", "plot_rmse_curves", "plot_predicted", "plot_residuals", "regression_figures"]

_FOREST = (("test_error", "test RMSE"), ("gap", "gap (test − train RMSE)"))


def plot_regression_forest(comparisons: dict[str, dict[str, Interval]], path: Path) -> Path:
    """Paired differences in RMSE to the baseline (target units), one panel per metric (lower is better):
    the classification forest plot in other units."""
    return plot_forest(comparisons, path, panels=_FOREST, scale=1.0, unit="target units", width=9)


def plot_rmse_curves(summaries: Sequence[RecipeSummary], path: Path) -> Path:
    """Train (dashed) and validation (solid) RMSE per epoch, one panel per recipe, the baseline in grey."""
    shown = [s for s in summaries if s.curves.get("val_error")]
    cols = min(3, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig = figure(4 * cols, 3 * rows)
    base = next((s for s in shown if s.recipe == "baseline"), None)
    top = max((max(s.curves["val_error"][len(s.curves["val_error"]) // 4:] or [1.0]) for s in shown), default=1.0)
    for i, s in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        for summary, color, lw in ((base, GREY, 1.0), (s, BLUE, 1.6)):
            if summary is None or (summary is base and s is base and color == GREY):
                continue
            for key, style in (("train_error", "--"), ("val_error", "-")):
                ys = summary.curves.get(key, [])
                ax.plot(range(1, len(ys) + 1), ys, style, color=color, lw=lw)
        ax.set_title(s.recipe, fontsize=10)
        ax.set_ylim(0, 1.3 * top)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("RMSE")
        ax.grid(alpha=0.3)
    fig.suptitle("RMSE per epoch: train dashed, validation solid, baseline grey", fontsize=10)
    return atomic_savefig(fig, path, dpi=100)


def _pairs(summaries: Sequence[RecipeSummary], recommended: str | None) -> list[RecipeSummary]:
    names = ["baseline"] + ([recommended] if recommended and recommended != "baseline" else [])
    return [s for n in names for s in summaries if s.recipe == n and s.pooled_probs is not None]


def plot_predicted(summaries: Sequence[RecipeSummary], path: Path, recommended: str | None) -> Path:
    """Predicted against true test targets (first output) for the baseline and the recommended recipe."""
    shown = _pairs(summaries, recommended)
    fig = figure(5 * max(1, len(shown)), 4.6)
    for i, s in enumerate(shown):
        pred, true = (np.asarray(a, dtype=np.float64).reshape(len(a), -1)[:, 0] for a in s.pooled_probs)
        ax = fig.add_subplot(1, len(shown), i + 1)
        lo, hi = float(min(pred.min(), true.min())), float(max(pred.max(), true.max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=1)
        ax.scatter(true, pred, s=12, alpha=0.6, color=BLUE)
        ax.set_title(f"{s.recipe}: test RMSE {rmse(pred, true):.4g} (seeds' mean)", fontsize=10)
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.grid(alpha=0.3)
    return atomic_savefig(fig, path, dpi=100)


def plot_residuals(summaries: Sequence[RecipeSummary], path: Path, recommended: str | None) -> Path:
    """Residuals (predicted - true) against the prediction on test, for the same recipes as ``plot_predicted``."""
    shown = _pairs(summaries, recommended)
    fig = figure(5 * max(1, len(shown)), 4.0)
    for i, s in enumerate(shown):
        pred, true = (np.asarray(a, dtype=np.float64).reshape(len(a), -1)[:, 0] for a in s.pooled_probs)
        ax = fig.add_subplot(1, len(shown), i + 1)
        ax.axhline(0, color="0.3", lw=1)
        ax.scatter(pred, pred - true, s=12, alpha=0.6, color=BLUE)
        ax.set_title(f"{s.recipe}: residuals on test", fontsize=10)
        ax.set_xlabel("predicted")
        ax.set_ylabel("predicted − true")
        ax.grid(alpha=0.3)
    return atomic_savefig(fig, path, dpi=100)


def regression_figures(summaries: Sequence[RecipeSummary], comparisons, out: Path,
                       recommended: str | None) -> dict[str, Path]:
    """Every figure of a regression study, by the names the report orders them with."""
    nets = [s for s in summaries if s.seeds and s.recipe != "ridge (linear)"]
    files = {"forest": plot_regression_forest(comparisons, out / "forest.png")} if comparisons else {}
    files.update(curves=plot_rmse_curves(nets, out / "learning_curves.png"),
                 predicted=plot_predicted(nets, out / "predicted.png", recommended),
                 residuals=plot_residuals(nets, out / "residuals.png", recommended))
    return files
