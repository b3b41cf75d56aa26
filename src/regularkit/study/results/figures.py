"""The study's figures: differences with intervals first, then curves one recipe at a time.

* ``forest.png`` -- each recipe's paired difference to the baseline (test error, the gap,
  ECE) with its 95% interval; filled where the interval excludes 0.  The first figure: it
  answers "what does each recipe buy, beyond seed noise?".
* ``learning_curves.png`` / ``test_curves.png`` -- small multiples: one panel per recipe,
  train (dashed) and validation or test (solid) error over integer epochs, the baseline in
  grey on every panel, the same axes everywhere so panels compare at a glance.
* ``gap.png`` -- train error, test error and the gap per recipe (mean ± std over seeds).
* ``reliability.png`` -- accuracy against confidence on the test set, seeds pooled.

Every figure is a matplotlib ``Figure`` on an Agg canvas (``_util.io.figure``), written
atomically.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
from matplotlib.ticker import MaxNLocator

from regularkit._util.io import atomic_savefig, figure
from regularkit.metrics.calibration import calibration_bins
from regularkit.metrics.paired import Interval
from regularkit.study.results.summary import RecipeSummary

__all__ = ["plot_forest", "plot_curves", "plot_gap", "plot_reliability"]

_FOREST = (("test_error", "test error"), ("gap", "gap (test − train)"), ("ece", "calibration error (ECE)"))
GREY, BLUE, RED, GREEN = "0.6", "#1f77b4", "#d62728", "#2ca02c"


def plot_forest(comparisons: dict[str, dict[str, Interval]], path: Path, *,
                labels: dict[str, str] | None = None, panels: Sequence[tuple[str, str]] = _FOREST,
                scale: float = 100.0, unit: str = "points", width: float = 11) -> Path:
    """Paired differences to the baseline with their intervals (adjusted for the number of recipes), one
    panel per metric of ``panels`` (lower is better), in ``unit`` (error rates x 100: points; a regression's
    RMSE x 1: target units); ``labels`` renames rows (``"tta (test error with TTA)"``)."""
    names = list(comparisons)
    shown = [(labels or {}).get(n, n) for n in names]
    fig = figure(width, 1.2 + 0.42 * max(1, len(names)))
    for j, (metric, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), j + 1)
        ax.axvline(0, color="0.3", lw=1)
        for i, name in enumerate(names):
            iv = comparisons[name].get(metric)
            if iv is None or math.isnan(iv.mean):
                continue
            y = len(names) - 1 - i
            sure = iv.excludes_zero
            color = (GREEN if iv.mean < 0 else RED) if sure else GREY
            if iv.n >= 2 and math.isfinite(iv.low) and math.isfinite(iv.high):
                ax.plot([scale * iv.low, scale * iv.high], [y, y], color=color, lw=2)
            ax.plot([scale * iv.mean], [y], "o", ms=7, color=color, mfc=color if sure else "white")
        ax.set_yticks(range(len(names)), shown[::-1] if j == 0 else [""] * len(names))
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.set_xlabel(f"Δ {label}, {unit}")
        ax.grid(axis="x", alpha=0.3)
    k = max((iv.comparisons for c in comparisons.values() for iv in c.values()), default=1)
    level = "95% interval" if k == 1 else f"interval adjusted for {k} recipes (95% for all together)"
    fig.suptitle(f"Each recipe minus the baseline, paired by seed, {level} "
                 "(green: better beyond noise, red: worse, grey: within noise)", fontsize=10)
    return atomic_savefig(fig, path, dpi=110)


def _ylim(summaries: Sequence[RecipeSummary], key: str) -> float:
    later = [y for s in summaries for k in ("train_error", key)
             for y in (s.curves.get(k) or [])[max(1, len(s.curves.get(k) or []) // 10):]]
    # the first epochs' errors (near chance) would squash the part worth reading
    return 100 * min(1.0, 1.3 * max(later)) + 0.5 if later else 100.0


def plot_curves(summaries: Sequence[RecipeSummary], path: Path, *, against: str = "val") -> Path:
    """Small multiples: train (dashed) and ``against`` error (solid), the baseline in grey on each panel."""
    shown = [s for s in summaries if not s.diverged]
    key = f"{against}_error"
    cols = min(3, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig = figure(4.2 * cols, 2.9 * rows)
    base = next((s for s in shown if s.recipe == "baseline"), None)
    top = _ylim(shown, key)
    for i, s in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        if base is not None and s is not base:
            for k, style in (("train_error", "--"), (key, "-")):
                ys = base.curves.get(k) or []
                ax.plot(range(1, len(ys) + 1), [100 * y for y in ys], style, color=GREY, lw=1)
        for k, style in (("train_error", "--"), (key, "-")):
            ys = s.curves.get(k) or []
            ax.plot(range(1, len(ys) + 1), [100 * y for y in ys], style, color=BLUE, lw=1.6)
        ax.set_title(s.recipe, fontsize=10)
        ax.set_ylim(0, top)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if i % cols == 0:
            ax.set_ylabel("error %")
        if i >= len(shown) - cols:
            ax.set_xlabel("epoch")
    name = {"val": "validation", "test": "test"}[against]
    fig.suptitle(f"train (dashed) and {name} (solid) error per epoch, mean over seeds; baseline in grey",
                 fontsize=10)
    return atomic_savefig(fig, path, dpi=100)


def plot_gap(summaries: Sequence[RecipeSummary], path: Path) -> Path:
    """Train error, test error and the gap per recipe (mean ± std over seeds)."""
    shown = [s for s in summaries if not s.diverged]
    fig = figure(max(6.0, 1.1 * len(shown) + 2), 4.2)
    ax = fig.add_subplot()
    xs = range(len(shown))
    for j, (key, label, color) in enumerate((("train_error", "train", "#9ecae1"), ("test_error", "test", BLUE),
                                             ("gap", "gap", "#ff7f0e"))):
        ax.bar([x + (j - 1) * 0.27 for x in xs], [100 * s.stats[key][0] for s in shown], 0.27,
               yerr=[100 * s.stats[key][1] for s in shown], capsize=3, label=label, color=color)
    ax.set_xticks(list(xs), [s.recipe for s in shown], rotation=20, ha="right")
    ax.set_ylabel("error %")
    ax.set_title("Train error, test error and the gap (mean ± std over seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return atomic_savefig(fig, path, dpi=110)


def plot_reliability(summaries: Sequence[RecipeSummary], path: Path, n_bins: int = 15) -> Path:
    """Reliability diagram: accuracy vs confidence per recipe (test set, all seeds pooled)."""
    fig = figure(6, 6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ":", color="gray", label="perfect calibration")
    for s in summaries:
        if s.pooled_probs is None:
            continue
        probs, y = s.pooled_probs
        bins = calibration_bins(torch.as_tensor(probs, dtype=torch.float64), torch.as_tensor(y), n_bins)
        keep = bins.counts > 0
        ece = s.stats.get("ece", (float("nan"),))[0]
        ax.plot(bins.confidence[keep].numpy(), bins.accuracy[keep].numpy(), "o-", ms=3,
                label=f"{s.recipe} (ECE {100 * ece:.1f}%)")
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability on the test set (seeds pooled)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return atomic_savefig(fig, path, dpi=110)
