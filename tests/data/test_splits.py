"""Splits: stratification within one sample, disjoint and covering parts, seeds, Splits tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from regularkit.data.datasets import Dataset
from regularkit.data.sampling import kfold_indices, stratified_subset, train_val_split
from regularkit.data.splits import make_splits, make_splits_from_indices
from regularkit.errors import RegularkitError


def labels_from_counts(counts, seed=0) -> np.ndarray:
    """Labels with the given per-class counts, shuffled (so order carries no information)."""
    y = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(y)


def assert_stratified(y: np.ndarray, part: np.ndarray) -> None:
    """Each class's count in ``part`` is within one sample of its ideal share."""
    counts = np.bincount(y)
    ideal = len(part) * counts / len(y)
    got = np.bincount(y[part], minlength=len(counts))
    assert np.all(np.abs(got - ideal) <= 1), (got, ideal)


def assert_partition(n: int, *parts: np.ndarray) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))  # disjoint and covering
    for p in parts:
        assert np.all(np.diff(p) > 0)  # sorted, no repeats


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(2, 40), min_size=2, max_size=6),
       frac=st.floats(0.05, 0.6), seed=st.integers(0, 2**31))
def test_train_val_split_is_stratified_partition(counts, frac, seed):
    y = labels_from_counts(counts, seed)
    n, n_val = len(y), int(np.ceil(frac * len(y)))
    assume(len(counts) <= n_val <= n - len(counts))
    train, val = train_val_split(y, frac, seed=seed)
    assert len(val) == n_val
    assert_partition(n, train, val)
    assert_stratified(y, val)
    assert_stratified(y, train)


def test_val_size_and_seeds():
    y = labels_from_counts([50, 30, 20])
    a = train_val_split(y, val_size=17, seed=3)
    b = train_val_split(y, val_size=17, seed=3)
    c = train_val_split(y, val_size=17, seed=4)
    assert len(a[1]) == 17 and np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    assert len(train_val_split(y)[1]) == 10  # default val_fraction 0.1


def test_unstratified_split_handles_singleton_classes():
    y = np.array([0] * 20 + [1])
    train, val = train_val_split(y, 0.25, stratify=False, seed=0)
    assert_partition(21, train, val)
    with pytest.raises(RegularkitError, match=r"cannot stratify: class 1 has only 1 sample .*pass stratify=False"):
        train_val_split(y, 0.25)


@pytest.mark.parametrize("kwargs, message", [
    (dict(val_fraction=0.0), r"val_fraction must be in \(0\.0, 1\.0\), got 0\.0"),
    (dict(val_fraction=1.0), r"val_fraction must be in \(0\.0, 1\.0\), got 1\.0"),
    (dict(val_fraction=-0.2), r"val_fraction must be in \(0\.0, 1\.0\), got -0\.2"),
    (dict(val_fraction="half"), r"val_fraction must be a number, got 'half'"),
    (dict(val_fraction=0.99), r"val_fraction=0\.99 leaves no training samples out of 30"),
    (dict(val_fraction=0.2, val_size=3), r"give val_fraction or val_size, not both \(got 0\.2 and 3\)"),
    (dict(val_size=30), r"val_size must be smaller than the 30 samples, got 30"),
    (dict(val_size=2), r"the validation part would hold 2 samples, fewer than the 3 classes"),
    (dict(seed=-1), r"seed must be >= 0, got -1"),
    (dict(seed=2**32), r"seed must be < 2\*\*32, got 4294967296"),
    (dict(seed=1.5), r"seed must be an integer, got 1\.5"),
])
def test_train_val_split_errors(kwargs, message):
    with pytest.raises(RegularkitError, match=message):
        train_val_split(labels_from_counts([10, 10, 10]), **kwargs)


def test_labels_must_be_1d_integers():
    with pytest.raises(RegularkitError, match=r"labels must be a 1-D integer array, got shape \(4,\) of float64"):
        train_val_split(np.zeros(4))
    with pytest.raises(RegularkitError, match=r"got shape \(2, 2\) of int64"):
        kfold_indices(np.zeros((2, 2), np.int64), 2)


@pytest.mark.parametrize("size", [3, 10, 57, 97])
def test_stratified_subset(size):
    y = labels_from_counts([60, 30, 10])
    idx = stratified_subset(y, size, seed=1)
    assert len(idx) == size and len(np.unique(idx)) == size
    assert_stratified(y, idx)
    assert np.array_equal(idx, stratified_subset(y, size, seed=1))
    assert np.array_equal(stratified_subset(y, 500), np.arange(100))


def test_stratified_subset_too_close_to_everything():
    with pytest.raises(RegularkitError, match=r"the rest would hold 1 samples, fewer than the 3 classes; "
                                              r"choose a size from 3 to 97, or >= 100 to keep everything"):
        stratified_subset(labels_from_counts([60, 30, 10]), 99)


# ---------------------------------------------------------------- k-fold

@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(5, 30), min_size=2, max_size=5), k=st.integers(2, 5), seed=st.integers(0, 999))
def test_kfold_partitions_and_stratifies(counts, k, seed):
    y = labels_from_counts(counts, seed)
    folds = kfold_indices(y, k, seed)
    assert len(folds) == k
    assert_partition(len(y), *(val for _, val in folds))
    for train, val in folds:
        assert_partition(len(y), train, val)
        counts_val = np.bincount(y[val], minlength=len(counts))
        assert np.all(np.abs(counts_val - np.bincount(y) / k) < 1 + 1e-9)


def test_kfold_seeds_and_errors():
    y = labels_from_counts([12, 9, 6])
    a, b, c = kfold_indices(y, 3, 0), kfold_indices(y, 3, 0), kfold_indices(y, 3, 1)
    assert all(np.array_equal(f[1], g[1]) for f, g in zip(a, b))
    assert not all(np.array_equal(f[1], g[1]) for f, g in zip(a, c))
    with pytest.raises(RegularkitError, match=r"needs at least k=7 samples of every class; class 2 has 6"):
        kfold_indices(y, 7)
    assert len(kfold_indices(y, 7, stratified=False)) == 7
    with pytest.raises(RegularkitError, match=r"k must be >= 2, got 1"):
        kfold_indices(y, 1)
    with pytest.raises(RegularkitError, match=r"k=28 folds need at least 28 samples, got 27"):
        kfold_indices(y, 28, stratified=False)


# ---------------------------------------------------------------- Splits

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
