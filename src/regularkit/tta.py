"""Test-time augmentation: moved to :mod:`regularkit.augment.tta`; this path is kept for the README's readers."""
from regularkit.augment.tta import NAMED, SETS, TTA, crop_view, scale_view, tta_views

__all__ = ["TTA", "tta_views", "crop_view", "scale_view", "NAMED", "SETS"]
