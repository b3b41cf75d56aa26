"""Sampling indices from labels: seeded, stratified train / validation / test splits, subsets and k folds.

NumPy only (labels in, sorted index arrays out), so datasets, splits, the
search's k-fold and the demos all draw their samples here without importing
each other.  Stratification keeps each class's share in every part within one
sample of the ideal, which matters for the small subsets a fast study uses.
scikit-learn does the sampling (``StratifiedShuffleSplit``, ``StratifiedKFold``);
this module adds seeds that are explicit and checks that explain themselves.
"""
from __future__ import annotations

import numpy as np

from regularkit._util.checks import check_bool, check_in_range, check_int
from regularkit.errors import RegularkitError

__all__ = ["train_val_split", "split_off_test", "stratified_subset", "kfold_indices", "labels_array"]


def labels_array(y) -> np.ndarray:
    """``y`` (a NumPy array, a list, or anything with ``.numpy()`` such as a CPU tensor) as 1-D integers."""
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise RegularkitError(f"labels must be a 1-D integer array, got shape {y.shape} of {y.dtype}")
    return y


def _seed(seed) -> int:
    """A seed scikit-learn accepts as ``random_state`` (it refuses values >= 2**32)."""
    seed = check_int("seed", seed, minimum=0)
    if seed >= 2**32:
        raise RegularkitError(f"seed must be < 2**32, got {seed}")
    return seed


def _check_stratifiable(y: np.ndarray, sizes: dict[str, int], hint: str, classes=None) -> None:
    """Raise, in our words, where scikit-learn would refuse to stratify.

    ``classes`` (names by label) lets the message name a class instead of its index.
    """
    labels, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        rare = labels[counts.argmin()]
        shown = repr(str(classes[rare])) if classes is not None else str(rare)
        raise RegularkitError(
            f"cannot stratify: class {shown} has only 1 sample (every class needs 2){hint}")
    for what, size in sizes.items():
        if size < len(labels):
            raise RegularkitError(
                f"cannot stratify: {what} would hold {size} samples, fewer than the "
                f"{len(labels)} classes{hint}")


def _held_out_count(n: int, fraction, size, *, part: str, default: float | None) -> int:
    """How many of ``n`` samples the held-out ``part`` ("val" or "test") gets."""
    if fraction is not None and size is not None:
        raise RegularkitError(
            f"give {part}_fraction or {part}_size, not both (got {fraction} and {size})")
    if size is not None:
        k = check_int(f"{part}_size", size, minimum=1)
        if k >= n:
            raise RegularkitError(f"{part}_size must be smaller than the {n} samples, got {k}")
        return k
    frac = check_in_range(f"{part}_fraction", default if fraction is None else fraction,
                          0.0, 1.0, low_inclusive=False, high_inclusive=False)
    # Same rounding as scikit-learn (ceil for the held-out part), but never all of it.
    k = int(np.ceil(frac * n))
    if k >= n:
        raise RegularkitError(f"{part}_fraction={frac} leaves no training samples out of {n}")
    return k


def _split(y: np.ndarray, n_held: int, seed: int, stratify: bool) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit  # heavy import, only here

    splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
        n_splits=1, test_size=n_held, random_state=seed)
    keep, held = next(splitter.split(np.zeros(len(y)), y))
    return np.sort(keep), np.sort(held)


def train_val_split(y, val_fraction: float | None = None, *, val_size: int | None = None,
                    seed: int = 0, stratify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train_idx, val_idx)`` that split ``y`` into two disjoint, covering parts.

    ``val_fraction`` (default 0.1) or ``val_size`` gives the validation part's
    size.  With ``stratify=True`` every class's count in the validation part is
    within one sample of ``val_size * class_share``.  Both index arrays are
    sorted, so a split is a set and the same ``seed`` always gives the same one.
    """
    y = labels_array(y)
    seed = _seed(seed)
    stratify = check_bool("stratify", stratify)
    n = len(y)
    if n < 2:
        raise RegularkitError(f"need at least 2 samples to split, got {n}")
    n_val = _held_out_count(n, val_fraction, val_size, part="val", default=0.1)
    if stratify:
        _check_stratifiable(y, {"the validation part": n_val, "the training part": n - n_val},
                            "; pass stratify=False or change the validation size")
    return _split(y, n_val, seed, stratify)


def split_off_test(y, test_fraction: float, *, seed: int = 0, classes=None) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train_idx, test_idx)``: a seeded, stratified test part for data that comes without one.

    The loaders of image folders, tables and arrays call this when no test set
    is given.  Same sampler and guarantees as :func:`train_val_split` (every
    class's test count within one sample of its share); the messages speak of
    the test part, and name the class by ``classes[label]`` when given.
    """
    y = labels_array(y)
    seed = _seed(seed)
    n = len(y)
    if n < 2:
        raise RegularkitError(f"need at least 2 samples to split off a test part, got {n}")
    n_test = _held_out_count(n, test_fraction, None, part="test", default=None)
    hint = "; change test_fraction or give a separate test set"
    _check_stratifiable(y, {"the test part": n_test, "the training part": n - n_test}, hint, classes)
    train_idx, test_idx = _split(y, n_test, seed, True)
    # A rare class can land wholly in the test part when test_fraction is large: a
    # model can never learn it, so this is refused rather than reported later.
    absent = np.setdiff1d(y, y[train_idx])
    if absent.size:
        shown = repr(str(classes[absent[0]])) if classes is not None else str(absent[0])
        raise RegularkitError(f"cannot stratify: class {shown} has no training sample left with "
                              f"test_fraction={test_fraction}{hint}")
    return train_idx, test_idx


def stratified_subset(y, size: int, *, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded, stratified subset of ``size`` samples of ``y``.

    ``size >= len(y)`` returns every index (a no-op subset).
    """
    y = labels_array(y)
    size = check_int("size", size, minimum=1)
    seed = _seed(seed)
    if size >= len(y):
        return np.arange(len(y))
    from sklearn.model_selection import StratifiedShuffleSplit

    k, n = len(np.unique(y)), len(y)
    _check_stratifiable(y, {"the subset": size, "the rest": n - size},
                        f"; choose a size from {k} to {n - k}, or >= {n} to keep everything")
    _, keep = next(StratifiedShuffleSplit(n_splits=1, test_size=size, random_state=seed)
                   .split(np.zeros(len(y)), y))
    return np.sort(keep)


def kfold_indices(y, k: int, seed: int = 0, *, stratified: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` folds ``[(train_idx, val_idx), ...]``; the ``val_idx`` partition ``range(len(y))``.

    Shuffled with ``seed`` before folding; ``stratified=True`` keeps every
    class's share in each fold (scikit-learn's ``StratifiedKFold``).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    y = labels_array(y)
    k = check_int("k", k, minimum=2)
    seed = _seed(seed)
    stratified = check_bool("stratified", stratified)
    if k > len(y):
        raise RegularkitError(f"k={k} folds need at least {k} samples, got {len(y)}")
    if stratified:
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() < k:
            # scikit-learn only warns here and then builds folds missing that class.
            raise RegularkitError(
                f"stratified k-fold needs at least k={k} samples of every class; class "
                f"{classes[counts.argmin()]} has {counts.min()} (pass stratified=False or lower k)")
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    else:
        folds = KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)))
    return [(np.sort(tr), np.sort(va)) for tr, va in folds]


