"""Calibration: expected calibration error and the reliability diagram (Guo et al. 2017).

A model is *overconfident* when its confidence is higher than its accuracy
(deck 002).  Guo et al. 2017 ("On Calibration of Modern Neural Networks")
sort the predictions into ``M`` equal-width confidence bins
``B_m = ((m - 1)/M, m/M]`` by their confidence ``max_k p_k`` and measure

    ECE = sum_m |B_m| / n * |acc(B_m) - conf(B_m)|

where ``acc`` is the fraction of correct argmax predictions in the bin and
``conf`` the mean confidence there.  Label smoothing's main benefit is
calibration (Müller et al. 2019): this is the number that shows it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch

from regularkit._util.checks import check_bool, check_int
from regularkit._util.io import atomic_savefig, figure
from regularkit.errors import RegularkitError
from regularkit.targets import hard_labels

# Rows of a probability matrix must sum to 1 within this; float32 softmax is well inside it.
_SUM_TOL = 1e-3


class CalibrationBins(NamedTuple):
    """Per-bin statistics; ``accuracy`` and ``confidence`` are NaN in empty bins."""

    edges: torch.Tensor       # M + 1 bin edges, 0 ... 1
    counts: torch.Tensor      # examples per bin
    accuracy: torch.Tensor    # fraction correct per bin
    confidence: torch.Tensor  # mean confidence per bin


def _probabilities(probs: torch.Tensor, from_logits: bool) -> torch.Tensor:
    if not isinstance(probs, torch.Tensor):
        raise RegularkitError(f"probs must be a torch.Tensor, got {type(probs).__name__}")
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise RegularkitError(f"probs must be N x K with K >= 2, got shape {tuple(probs.shape)}")
    probs = probs.detach().to(torch.float64)
    if not bool(torch.isfinite(probs).all()):
        what = "logits" if from_logits else "probs"
        raise RegularkitError(f"{what} hold {int((~torch.isfinite(probs)).sum())} non-finite values (NaN or inf)")
    if from_logits:
        return probs.softmax(dim=1)
    if probs.numel():
        row_sums = probs.sum(dim=1)
        worst = int((row_sums - 1).abs().argmax())
        if bool((probs < 0).any()) or abs(float(row_sums[worst]) - 1) > _SUM_TOL:
            # an explicit flag rather than guessing: logits can happen to look like probabilities
            raise RegularkitError(
                "probs must be probabilities (non-negative rows summing to 1; pass from_logits=True "
                f"for logits), got a row summing to {float(row_sums[worst]):.4g}")
    return probs


def _labels(y: torch.Tensor, n: int, k: int) -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        raise RegularkitError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.ndim == 2 and y.shape[1] != k:
        raise RegularkitError(f"soft targets y must have the {k} columns of probs, got shape {tuple(y.shape)}")
    y = hard_labels(y)  # soft targets (mixup, smoothing): the hard label is the argmax
    if y.ndim != 1 or y.shape[0] != n:
        raise RegularkitError(f"y must be class indices of shape ({n},) or N x K soft targets, "
                              f"got shape {tuple(y.shape)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise RegularkitError(f"y must be class indices of an integer dtype, got dtype {y.dtype}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= k):
        bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
        raise RegularkitError(f"class index {bad} in y is out of range for the {k} columns of probs")
    return y


def calibration_bins(probs: torch.Tensor, y: torch.Tensor, n_bins: int = 15, *,
                     from_logits: bool = False) -> CalibrationBins:
    """Bin the predictions by confidence into ``n_bins`` equal-width bins ``((m-1)/M, m/M]``."""
    n_bins = check_int("n_bins", n_bins, minimum=1)
    probs = _probabilities(probs, check_bool("from_logits", from_logits))
    y = _labels(y, probs.shape[0], probs.shape[1]).to(probs.device)
    confidence, prediction = probs.max(dim=1)
    correct = (prediction == y).to(torch.float64)
    # m / M, correctly rounded (linspace may be off by an ulp), so a confidence of exactly 0.6 lands in (0.4, 0.6]
    edges = torch.arange(n_bins + 1, dtype=torch.float64, device=probs.device) / n_bins
    # right=False: bin m holds edges[m] < c <= edges[m + 1], Guo et al.'s half-open bins
    index = torch.bucketize(confidence, edges[1:-1], right=False)
    counts = torch.bincount(index, minlength=n_bins).to(torch.float64)
    hits = torch.bincount(index, weights=correct, minlength=n_bins)
    conf_sum = torch.bincount(index, weights=confidence, minlength=n_bins)
    accuracy = hits / counts          # 0/0 = NaN marks an empty bin
    mean_conf = conf_sum / counts
    return CalibrationBins(edges.cpu(), counts.cpu(), accuracy.cpu(), mean_conf.cpu())


def expected_calibration_error(probs_or_logits: torch.Tensor, y: torch.Tensor, n_bins: int = 15, *,
                               from_logits: bool = False) -> float:
    """``ECE = sum_m |B_m|/n * |acc(B_m) - conf(B_m)|`` (Guo et al. 2017), in [0, 1].

    ``probs_or_logits``: N x K probabilities, or logits with ``from_logits=True``
    (the flag is explicit: the function never guesses which one it got).
    ``y``: class indices (N,) or soft targets (their argmax is the label).
    """
    return _ece(calibration_bins(probs_or_logits, y, n_bins, from_logits=from_logits))


def _ece(bins: CalibrationBins) -> float:
    n = float(bins.counts.sum())
    if n == 0:
        raise RegularkitError("expected_calibration_error needs at least one example, got 0")
    filled = bins.counts > 0
    gaps = (bins.accuracy[filled] - bins.confidence[filled]).abs()
    return float((bins.counts[filled] / n * gaps).sum())


def reliability_diagram(probs: torch.Tensor, y: torch.Tensor, path: str | os.PathLike, n_bins: int = 15, *,
                        from_logits: bool = False, title: str | None = None) -> Path:
    """Plot accuracy against confidence per bin and write a PNG atomically (temp file, then rename).

    A perfectly calibrated model has its bars on the diagonal; bars below it
    mean overconfidence.  The title carries the ECE.  Returns the path.
    """
    bins = calibration_bins(probs, y, n_bins, from_logits=from_logits)
    ece = _ece(bins)
    fig = figure(4.5, 4.5, layout=None)
    ax = fig.add_subplot(1, 1, 1)
    width = 1.0 / n_bins
    left = bins.edges[:-1].numpy()
    filled = (bins.counts > 0).numpy()
    acc = bins.accuracy.numpy()
    conf = bins.confidence.numpy()
    ax.bar(left[filled], acc[filled], width=width, align="edge", color="tab:blue",
           edgecolor="black", label="accuracy")
    ax.bar(left[filled], conf[filled] - acc[filled], bottom=acc[filled], width=width, align="edge",
           color="none", edgecolor="tab:red", hatch="//", label="gap to confidence")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title or f"Reliability diagram (ECE = {ece:.3f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return atomic_savefig(fig, path, dpi=100)


__all__ = ["CalibrationBins", "calibration_bins", "expected_calibration_error", "reliability_diagram"]
