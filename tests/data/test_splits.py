"""Splits: stratification within one sample, disjoint and covering parts, seeds, Splits tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers.sampling import assert_partition, assert_stratified, labels_from_counts

from regularkit.data.datasets import Dataset
from regularkit.data.sampling import kfold_indices
from regularkit.data.splits import make_splits, make_splits_from_indices
from regularkit.errors import RegularkitError


@pytest.fixture
def dataset():
    rng = np.random.default_rng(0)
    y = labels_from_counts([40, 40, 20])
    return Dataset("toy", rng.random((100, 1, 4, 4), dtype=np.float32), y,
                   rng.random((30, 1, 4, 4), dtype=np.float32), labels_from_counts([10, 10, 10]),
                   num_classes=3, classes=("a", "b", "c"))


def test_make_splits_carves_val_from_train_and_carries_test(dataset):
    s = make_splits(dataset, 0.2, seed=1)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (80, 20, 30)
    assert s.x_train.dtype == torch.float32 and s.y_train.dtype == torch.int64
    assert s.input_shape == (1, 4, 4) and s.num_classes == 3 and s.classes == ("a", "b", "c")
    assert torch.equal(s.x_test, torch.from_numpy(dataset.x_test.copy()))
    assert torch.equal(s.x_val, torch.from_numpy(dataset.x_train[s.val_idx]))
    assert torch.equal(s.y_train, torch.from_numpy(dataset.y_train[s.train_idx]))
    assert_partition(100, s.train_idx, s.val_idx)
    assert_stratified(dataset.y_train, s.val_idx)
    assert s.train[0] is s.x_train and s.val[1] is s.y_val and s.test[0] is s.x_test
    s.x_test.add_(1.0)  # tensors are copies: the dataset stays as loaded
    assert dataset.x_test.max() <= 1.0
    assert "train=80, val=20, test=30" in repr(s)


def test_make_splits_seeds(dataset):
    a, b, c = make_splits(dataset, seed=0), make_splits(dataset, seed=0), make_splits(dataset, seed=1)
    assert np.array_equal(a.val_idx, b.val_idx) and not np.array_equal(a.val_idx, c.val_idx)
    assert len(make_splits(dataset, val_size=7).y_val) == 7


def test_make_splits_from_fold_indices(dataset):
    train, val = kfold_indices(dataset.y_train, 4, 0)[2]
    s = make_splits_from_indices(dataset, train, val)
    assert len(s.y_val) == 25 and np.array_equal(s.val_idx, val)
    with pytest.raises(RegularkitError, match=r"train_idx and val_idx overlap in 1 samples"):
        make_splits_from_indices(dataset, [0, 1, 2], [2, 3])
    with pytest.raises(RegularkitError, match=r"val_idx must be non-empty indices in \[0, 100\), got array\(\[100\]\)"):
        make_splits_from_indices(dataset, [0, 1], [100])
