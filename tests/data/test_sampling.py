"""Splits: stratification within one sample, disjoint and covering parts, seeds, Splits tensors."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers.sampling import assert_partition, assert_stratified, labels_from_counts
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from regularkit.data.sampling import kfold_indices, split_off_test, stratified_subset, train_val_split
from regularkit.errors import RegularkitError


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


def test_split_off_test_is_stratified_seeded_and_speaks_of_the_test_part():
    y = np.repeat([0, 1, 2], [10, 6, 4])
    tr, te = split_off_test(y, 0.25, seed=1)
    assert len(te) == 5 and np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(20))
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(te) > 0)
    assert np.all(np.abs(np.bincount(y[te], minlength=3) - 5 * np.array([10, 6, 4]) / 20) <= 1)
    assert np.array_equal(split_off_test(y, 0.25, seed=1)[1], te)
    names = ["cat", "dog", "eel"]
    with pytest.raises(RegularkitError, match=r"^cannot stratify: class 'eel' has only 1 sample \(every class "
                                              r"needs 2\); change test_fraction or give a separate test set$"):
        split_off_test(np.array([0, 0, 1, 1, 2]), 0.4, classes=names)
    with pytest.raises(RegularkitError, match=r"^cannot stratify: the test part would hold 1 samples, fewer than "
                                              r"the 3 classes"):
        split_off_test(y, 0.05)
    # scikit-learn would put both samples of the rare class in the test part: refused.
    with pytest.raises(RegularkitError, match=r"^cannot stratify: class 'dog' has no training sample left with "
                                              r"test_fraction=0\.8; change test_fraction"):
        split_off_test(np.repeat([0, 1], [20, 2]), 0.8, classes=names)
    with pytest.raises(RegularkitError, match=r"^test_fraction must be in \(0\.0, 1\.0\), got 0$"):
        split_off_test(y, 0)
