"""The run's data: Fashion-MNIST in memory as float tensors, a fixed validation split carved from training.

All 60k training images fit in memory as one float32 tensor (188 MB), so
batches are index reads (:func:`regularkit.train.fit` gathers them) and no
data-loader process competes with training for the two cores.

The validation split (``val_size`` images, stratified, seeded by
``split_seed``) is the same for every seed, so validation numbers compare
across seeds and across ablations; every development choice was made on it.
The test set is carried untouched for the run's one final measurement.
``train_size`` / ``test_size`` cut both parts down for tests and smoke runs
(a stratified subset of the training part, the first test images).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from regularkit.data import load_dataset
from regularkit.data.sampling import stratified_subset
from regularkit.data.splits import Splits, make_splits
from regularkit.errors import RegularkitError
from regularkit.speedrun.config import SpeedrunConfig

__all__ = ["load_splits", "cut"]


def cut(splits: Splits, *, train_size: int | None = None, test_size: int | None = None, seed: int = 0) -> Splits:
    """``splits`` with a stratified ``train_size`` subset of its training part and its first ``test_size`` test images."""
    changes = {}
    if train_size is not None and train_size < len(splits.y_train):
        keep = np.sort(stratified_subset(splits.y_train.numpy(), train_size, seed=seed))
        changes.update(x_train=splits.x_train[keep], y_train=splits.y_train[keep], train_idx=splits.train_idx[keep])
    if test_size is not None and test_size < len(splits.y_test):
        changes.update(x_test=splits.x_test[:test_size], y_test=splits.y_test[:test_size])
    return dataclasses.replace(splits, **changes) if changes else splits


def load_splits(cfg: SpeedrunConfig) -> Splits:
    """Load ``cfg.data`` and split it: train / validation (``val_size``) / test, then apply the size cuts."""
    dataset = load_dataset(cfg.data, data_dir=cfg.data_dir)
    if cfg.val_size < 1 or cfg.val_size >= len(dataset.y_train):
        raise RegularkitError(f"val_size must be between 1 and {len(dataset.y_train) - 1} (the training images "
                              f"minus one), got {cfg.val_size}")
    splits = make_splits(dataset, val_size=cfg.val_size, seed=cfg.split_seed)
    return cut(splits, train_size=cfg.train_size, test_size=cfg.test_size, seed=cfg.split_seed)
