"""Split tags: refuse to fit preprocessing (or anything else) on validation or test data.

``mark_split(x_test, "test")`` tags a tensor, array or dataset; ``check_fit_split``
raises when asked to fit on a tagged object or an explicit ``split="val"/"test"``.
A tensor or NumPy array is tagged by the memory range it occupies, so views of a
tagged test set (``x_test[:100]``) are caught while a sibling slice of the same
buffer is not; the entry goes away when the tagged object is collected.  Any other
object gets an attribute ``regularkit_split``.  Copies carry no tag: the guard
catches mistakes, it is not a sandbox.
"""
from __future__ import annotations

import weakref
from typing import Any, Dict, Tuple

import numpy as np
import torch

from regularkit._util.checks import check_choice
from regularkit.errors import RegularkitError

SPLITS = ("train", "val", "validation", "test")
HELD_OUT = ("val", "validation", "test")
_ATTR = "regularkit_split"

# id(tagged object) -> (device, first byte, last byte, split); removed when the object dies.
_RANGES: Dict[int, Tuple[str, int, int, str]] = {}


def _byte_range(obj: Any) -> Tuple[str, int, int] | None:
    """(device, low, high): the addresses spanned by a tensor's or array's elements (None when empty)."""
    if isinstance(obj, torch.Tensor):
        if obj.numel() == 0 or obj.device.type == "meta":
            return None
        device, start, size = str(obj.device), obj.data_ptr(), obj.element_size()
        strides = [s * size for s in obj.stride()]
    elif isinstance(obj, np.ndarray):
        if obj.size == 0:
            return None
        device, start, size = "cpu", obj.__array_interface__["data"][0], obj.itemsize
        strides = list(obj.strides)
    else:
        return None
    low = start + sum((n - 1) * s for n, s in zip(obj.shape, strides) if s < 0)
    high = start + sum((n - 1) * s for n, s in zip(obj.shape, strides) if s > 0) + size - 1
    return device, low, high


def mark_split(obj: Any, split: str) -> Any:
    """Tag ``obj`` (tensor, NumPy array or dataset) as coming from ``split``; returns ``obj``.

    ``fit`` then refuses it (and its views) when ``split`` is val, validation or test.
    """
    check_choice("split", split, SPLITS)
    span = _byte_range(obj)
    if span is not None:
        key = id(obj)
        _RANGES[key] = span + (split,)
        weakref.finalize(obj, _RANGES.pop, key, None)
        return obj
    if isinstance(obj, (torch.Tensor, np.ndarray)):
        return obj  # empty: nothing could be fitted on it anyway
    try:
        setattr(obj, _ATTR, split)
    except (AttributeError, TypeError):
        raise RegularkitError(f"cannot tag an object of type {type(obj).__name__} with a split") from None
    for t in getattr(obj, "tensors", ()) or ():
        if isinstance(t, (torch.Tensor, np.ndarray)):
            mark_split(t, split)
    return obj


def split_of(obj: Any) -> str | None:
    """The split ``obj`` was tagged with (or a view of tagged memory), else ``None``."""
    tag = getattr(obj, _ATTR, None) if not isinstance(obj, (torch.Tensor, np.ndarray)) else None
    if tag is not None:
        return tag
    span = _byte_range(obj)
    if span is not None:
        # A held-out tag wins over a train tag when ranges overlap both.
        dev, low, high = span
        found = [s for d, lo, hi, s in list(_RANGES.values()) if d == dev and lo <= high and low <= hi]
        held = [s for s in found if s in HELD_OUT]
        return (held or found or [None])[0]
    for t in getattr(obj, "tensors", ()) or ():
        tag = split_of(t)
        if tag is not None:
            return tag
    return None


def check_fit_split(x: Any, split: str = "train", *, who: str = "fit") -> None:
    """Raise unless both the ``split`` argument and ``x``'s tag allow fitting."""
    check_choice("split", split, SPLITS)
    if split in HELD_OUT:
        raise RegularkitError(
            f"{who}.fit refuses the {split!r} split: statistics are computed on the training "
            f"split only, then applied to validation and test data")
    tag = split_of(x)
    if tag in HELD_OUT:
        raise RegularkitError(
            f"{who}.fit refuses data marked as the {tag!r} split (mark_split): fit on the training "
            f"split, then transform the {tag!r} data")


def as_fit_tensor(x: Any) -> torch.Tensor:
    """A tensor from a tensor, a NumPy array, or a dataset holding ``.tensors`` (its first)."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    tensors = getattr(x, "tensors", None)
    if tensors:
        return as_fit_tensor(tensors[0])
    raise RegularkitError(f"expected a torch.Tensor, a NumPy array or a TensorDataset, got {type(x).__name__}")


