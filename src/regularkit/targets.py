"""Targets: one-hot encoding and label smoothing, in both of the lectures' formulas.

Label smoothing (Szegedy et al. 2016, "Rethinking the Inception Architecture")
replaces a one-hot target by

* ``formula="uniform"``: ``y_soft = (1 - alpha) * y_hot + alpha / K`` (deck 002;
  Keras' ``label_smoothing=`` and torch's ``F.cross_entropy(label_smoothing=)``);
* ``formula="others"``: ``(eps/(K-1), ..., 1 - eps, ..., eps/(K-1))`` (the
  cookbook, deck 003): the true class keeps ``1 - eps`` exactly, i.e.
  ``(1 - eps) * y + eps / (K - 1) * (1 - y)``.

The two coincide when ``eps = alpha * (K - 1) / K``.  Both keep rows summing to 1.

This module is the only place the formula is written: the losses
(:func:`regularkit.losses.cross_entropy`) and the mixing augmentations
(MixUp, CutMix) both call it.  Mixing composes with smoothing exactly only if
the one-hots are smoothed once: a mixing op smooths *class indices* as it
encodes them and takes incoming soft targets as they are
(:func:`soft_targets_for`); because smoothing is affine and
``lam + (1 - lam) = 1``, smoothing then mixing equals mixing then smoothing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from regularkit._util.checks import check_choice, check_in_range, check_int
from regularkit.errors import RegularkitError

__all__ = ["FORMULAS", "hard_labels", "check_class_indices", "smooth", "smooth_targets", "to_soft_targets",
           "soft_targets_for"]

FORMULAS = ("uniform", "others")


def smooth(targets: torch.Tensor, alpha: float, formula: str = "uniform") -> torch.Tensor:
    """The formula itself on soft targets N x K (``alpha = 0`` returns them unchanged)."""
    if alpha == 0.0:
        return targets
    k = targets.shape[1]
    if formula == "uniform":
        return targets * (1.0 - alpha) + alpha / k
    return targets * (1.0 - alpha) + (1.0 - targets) * (alpha / (k - 1))


def hard_labels(y):
    """Class indices: ``y`` itself, or the argmax of soft targets N x K (a tensor or a NumPy array)."""
    return y.argmax(1) if y.ndim == 2 else y


def check_class_indices(y: torch.Tensor, k: int, *, everywhere: bool = True) -> None:
    """Class indices in ``[0, k)``; on accelerators only when ``everywhere`` (it costs a host sync)."""
    k = check_int("num_classes", k, minimum=1)
    if y.numel() == 0 or not (everywhere or y.device.type == "cpu"):
        return
    bad = (y < 0) | (y >= k)
    if bool(bad.any()):
        raise RegularkitError(f"class index {y[bad][0].item()} is out of range for num_classes={k}")


def _soft(y: torch.Tensor, k: int, dtype: torch.dtype | None, *, everywhere: bool) -> torch.Tensor:
    """Class indices (N,) one-hot encoded, or float soft targets N x K checked; cast to ``dtype``."""
    if not isinstance(y, torch.Tensor):
        raise RegularkitError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() == 2 and y.is_floating_point():
        if y.shape[1] != k:
            raise RegularkitError(f"soft targets y must have num_classes={k} columns, got {y.shape[1]}")
        return y if dtype is None else y.to(dtype)
    if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise RegularkitError(
            f"y must be class indices (N,) of an integer dtype or soft targets N x K, "
            f"got shape {tuple(y.shape)} and dtype {y.dtype}")
    check_class_indices(y, k, everywhere=everywhere)
    return F.one_hot(y.long(), k).to(dtype or torch.get_default_dtype())


def smooth_targets(y: torch.Tensor, num_classes: int, alpha: float, formula: str = "uniform", *,
                   dtype: torch.dtype | None = None) -> torch.Tensor:
    """Smoothed targets N x K from class indices (N,) or soft targets (N x K).

    ``uniform``: ``(1 - alpha) * y + alpha / K`` (Szegedy et al. 2016; deck 002).
    ``others``: ``(1 - alpha) * y + alpha / (K - 1) * (1 - y)`` (deck 003), which
    for a one-hot ``y`` is ``1 - alpha`` on the true class and ``alpha / (K - 1)``
    on every other one.  ``alpha = 0`` returns the one-hot / given targets.
    Class indices are checked on every device (one host sync per call).
    """
    num_classes = check_int("num_classes", num_classes, minimum=2)  # "others" divides by K - 1
    alpha = check_in_range("alpha", alpha, 0.0, 1.0)
    check_choice("formula", formula, FORMULAS)
    return smooth(_soft(y, num_classes, dtype, everywhere=True), alpha, formula)


def to_soft_targets(y: torch.Tensor, num_classes: int, label_smoothing: float = 0.0, *,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Class indices (N,) or soft targets N x K -> soft targets N x K, smoothed by the uniform formula.

    Soft targets keep their own float dtype; indices are encoded in ``dtype``.
    Indices are range-checked for CPU tensors only: on accelerators
    ``F.one_hot``'s device-side check applies, to avoid a host sync per batch.
    """
    k = check_int("num_classes", num_classes, minimum=1)
    alpha = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
    is_soft = isinstance(y, torch.Tensor) and y.dim() == 2 and y.is_floating_point()
    return smooth(_soft(y, k, None if is_soft else dtype, everywhere=False), alpha)


def soft_targets_for(y: torch.Tensor, num_classes: int, label_smoothing: float) -> torch.Tensor:
    """The mixing ops' rule: smooth class indices as they are encoded; soft targets pass as given."""
    if isinstance(y, torch.Tensor) and y.dim() == 2:
        return to_soft_targets(y, num_classes, 0.0)
    return to_soft_targets(y, num_classes, label_smoothing)
