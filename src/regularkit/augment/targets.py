"""Soft targets for mixing ops: one-hot encoding, then label smoothing, then mixing.

Mixing ops (MixUp, CutMix) blend two label vectors, so their output is one
soft-target tensor N x K whatever came in.  Label smoothing composes with
mixing *exactly* only in one order: smooth each one-hot first,

    y_soft = (1 - alpha) * y_hot + alpha / K                      (deck 002, "Label smoothing")

then mix, ``y~ = lam * y_soft_i + (1 - lam) * y_soft_j`` (Zhang et al. 2018).
Because the smoothing is affine and ``lam + (1 - lam) = 1``, this equals
smoothing the mixed one-hots; the order matters only in that smoothing must
happen once.  So a mixing op smooths *class indices* as it converts them and
takes incoming soft targets as they are (they may already be smoothed or
mixed by an earlier op); :func:`to_soft_targets` itself smooths whatever it is
given.

This is the uniform formula of the lecture (deck 002; Szegedy et al. 2016).
``regularkit.losses`` offers both formulas for losses; this module keeps its
own private copy of the uniform one so the augmentations do not depend on it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from regularkit.errors import RegularkitError, check_in_range, check_int


def _smooth(y_soft: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1 - alpha) * y + alpha / K: rows that summed to 1 still do, every entry >= alpha / K."""
    if alpha == 0.0:
        return y_soft
    return y_soft * (1.0 - alpha) + alpha / y_soft.shape[1]


def to_soft_targets(y: torch.Tensor, num_classes: int, label_smoothing: float = 0.0, *,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Class indices (N,) or soft targets N x K -> soft targets N x K, optionally smoothed.

    Args:
        y: integer class indices in ``[0, num_classes)``, or float soft targets
            with ``num_classes`` columns (returned as they are, cast to ``dtype``,
            then smoothed).
        num_classes: K.
        label_smoothing: alpha in [0, 1]; 0 (the default) never smooths.
        dtype: float dtype of the result (soft targets keep their own float dtype).

    Raises:
        RegularkitError: a class index out of range (checked for CPU tensors;
            on accelerators ``F.one_hot``'s device-side check applies, to avoid a
            host sync per batch), or soft targets with the wrong number of columns.
    """
    k = check_int("num_classes", num_classes, minimum=1)
    alpha = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
    if not isinstance(y, torch.Tensor):
        raise RegularkitError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() == 2 and y.is_floating_point():
        if y.shape[1] != k:
            raise RegularkitError(f"soft targets y must have num_classes={k} columns, got {y.shape[1]}")
        return _smooth(y, alpha)
    if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise RegularkitError(
            f"y must be class indices (N,) of an integer dtype or soft targets N x K, "
            f"got shape {tuple(y.shape)} and dtype {y.dtype}")
    if y.device.type == "cpu" and y.numel() > 0:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= k:
            bad = lo if lo < 0 else hi
            raise RegularkitError(f"class index {bad} is out of range for num_classes={k}")
    return _smooth(F.one_hot(y.long(), k).to(dtype), alpha)


def soft_targets_for(y: torch.Tensor, num_classes: int, label_smoothing: float) -> torch.Tensor:
    """The mixing ops' rule: smooth class indices as they are encoded; soft targets pass as given."""
    if y.dim() == 2:
        if y.shape[1] != num_classes:
            raise RegularkitError(f"soft targets y must have num_classes={num_classes} columns, got {y.shape[1]}")
        return y
    return to_soft_targets(y, num_classes, label_smoothing)
