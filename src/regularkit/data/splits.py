"""Train / validation / test tensors of one run, carved from a dataset by seeded index samples.

Model selection (early stopping, hyper-parameter search) must only ever see
the validation part carved out of the training set; the test set is carried
along untouched for the final report.  The indices come from
:mod:`regularkit.data.sampling`.

A :class:`~regularkit.data.streaming.StreamedDataset` gives streamed splits: ``x_*``
are :class:`~regularkit.data.streaming.Streamed` views of the same indices (nothing
decoded; ``fit`` and ``evaluate`` read them batch by batch), ``y_*`` tensors as always.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from regularkit.data.sampling import train_val_split
from regularkit.data.schema import Dataset
from regularkit.data.streaming import Streamed, StreamedDataset
from regularkit.errors import RegularkitError

__all__ = ["Splits", "make_splits", "make_splits_from_indices"]


@dataclass(frozen=True, eq=False)
class Splits:
    """Train / validation / test tensors of one run.

    ``x_*`` are float32 tensors (N×C×H×W images or N×D vectors), or streamed views of them, ``y_*``
    int64 class indices (regression: float32 standardized targets N x k, and ``regression``
    their mean, std and loss: :mod:`regularkit.data.regression`).  ``train_idx``/``val_idx`` index the dataset's
    training set, so a result can record exactly which samples validated it.
    """

    x_train: torch.Tensor | Streamed
    y_train: torch.Tensor
    x_val: torch.Tensor | Streamed
    y_val: torch.Tensor
    x_test: torch.Tensor | Streamed
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    classes: tuple[str, ...] | None = None
    name: str = ""
    train_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    val_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    kind: str | None = None                      # the dataset's layout: vectors | sequences | images
    flips: tuple[str, ...] | None = None         # the dataset's class-preserving flips (None: unknown)
    fill: str | None = None                      # what crops and shifts should bring in (None: unknown)
    regression: Any = None                       # regression: data.regression.RegressionTargets (mean, std, loss)

    @property
    def task(self) -> str:
        """``"regression"`` when the targets are standardized continuous values, else ``"classification"``."""
        return "classification" if self.regression is None else "regression"

    @property
    def streamed(self) -> bool:
        """Whether the samples are read from their source batch by batch (not held as tensors)."""
        return isinstance(self.x_train, Streamed)

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_train, self.y_train

    @property
    def val(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_val, self.y_val

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x_test, self.y_test

    def __repr__(self) -> str:
        return (f"Splits({self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
                f"test={len(self.y_test)}, input_shape={self.input_shape}, num_classes={self.num_classes})")


def make_splits_from_indices(dataset: Dataset | StreamedDataset, train_idx, val_idx) -> Splits:
    """:class:`Splits` from given indices into ``dataset``'s training set (one k-fold fold, say)."""
    n = len(dataset.y_train)
    train_idx, val_idx = np.asarray(train_idx, np.int64), np.asarray(val_idx, np.int64)
    for what, idx in (("train_idx", train_idx), ("val_idx", val_idx)):
        if idx.ndim != 1 or len(idx) == 0 or idx.min() < 0 or idx.max() >= n:
            raise RegularkitError(f"{what} must be non-empty indices in [0, {n}), got {idx!r}")
    if np.intersect1d(train_idx, val_idx).size:
        raise RegularkitError(f"train_idx and val_idx overlap in {np.intersect1d(train_idx, val_idx).size} samples")

    def t(a: np.ndarray | Streamed) -> torch.Tensor | Streamed:
        # Fancy indexing and np.array copy: tensors never alias the (read-only) dataset arrays.
        return a if isinstance(a, Streamed) else torch.from_numpy(np.array(a, copy=True))

    return Splits(
        x_train=t(dataset.x_train[train_idx]), y_train=t(dataset.y_train[train_idx]),
        x_val=t(dataset.x_train[val_idx]), y_val=t(dataset.y_train[val_idx]),
        x_test=t(dataset.x_test), y_test=t(dataset.y_test),
        num_classes=dataset.num_classes, input_shape=dataset.input_shape,
        classes=dataset.classes, name=dataset.name, train_idx=train_idx, val_idx=val_idx,
        kind=dataset.kind, flips=dataset.flips, fill=dataset.fill,
    )


def make_splits(dataset: Dataset | StreamedDataset, val_fraction: float = 0.1, seed: int = 0, *,
                val_size: int | None = None, stratify: bool = True) -> Splits:
    """Carve a seeded (stratified) validation set out of ``dataset``'s training set.

    The test set is carried unchanged, for reporting only.
    """
    train_idx, val_idx = train_val_split(dataset.y_train, None if val_size is not None else val_fraction,
                                         val_size=val_size, seed=seed, stratify=stratify)
    return make_splits_from_indices(dataset, train_idx, val_idx)
