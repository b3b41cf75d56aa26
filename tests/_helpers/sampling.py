"""Shared by the sampling and splits tests: labels with given counts, stratification and partition checks."""
import numpy as np


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

