"""Stratified k-fold cross-validation with preprocessing fitted inside each fold.

"If only few data is available, use k-fold cross validation: partition data into
k subsets, use each subset for validation once, average all errors."  And from
the input-normalization slide: "only *compute* normalization on *training*
data; *apply* it to test and validation".  Inside k-fold that means one fresh
preprocessing object per fold, fitted on that fold's training part only:
fitting it once on all of ``x`` would leak every validation fold's statistics
into training.

The folds come from :func:`regularkit.data.sampling.kfold_indices` (scikit-learn's
``StratifiedKFold``, shuffled with ``seed``), so every fold keeps the class
proportions of ``y``; the spread is the sample standard deviation (ddof = 1),
the same definition as the study's spread over seeds.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from regularkit._util.checks import check_int
from regularkit.data.sampling import kfold_indices
from regularkit.errors import RegularkitError
from regularkit.metrics.summary import mean_std
from regularkit.targets import hard_labels


@dataclass(frozen=True)
class KFoldResult:
    """Per-fold scores, their mean and sample standard deviation (ddof = 1), and the folds."""

    scores: tuple[float, ...]
    mean: float
    std: float
    folds: tuple[tuple[np.ndarray, np.ndarray], ...] = field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.mean:.6f} ± {self.std:.6f} ({len(self.scores)} folds)"


def _take(data: Any, idx: np.ndarray) -> Any:
    if isinstance(data, (list, tuple)):
        return [data[i] for i in idx]
    if hasattr(data, "detach"):  # a torch tensor: index with a tensor on its device
        return data[torch.as_tensor(idx, device=data.device)]
    return data[idx]


def kfold_evaluate(fit_and_score: Callable[[Any, Any, Any, Any], float], x: Any, y: Any, k: int = 5,
                   seed: int = 0, preprocess_factory: Callable[[], Any] | None = None) -> KFoldResult:
    """Score a configuration by stratified k-fold cross-validation.

    For each fold, ``fit_and_score(x_train, y_train, x_val, y_val) -> float`` trains on
    the fold's training part and returns its validation score (e.g. error).  If given,
    ``preprocess_factory()`` makes a fresh object with ``fit(x)`` and ``transform(x)``;
    it is fitted on ``x_train`` only and transforms both parts.
    """
    k = check_int("k", k, minimum=2)
    labels = hard_labels(np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y))
    if len(x) != len(labels):
        raise RegularkitError(f"x and y must have the same length, got {len(x)} and {len(labels)}")
    scores, folds = [], []
    for train_idx, val_idx in kfold_indices(labels, k, seed):
        x_tr, x_va = _take(x, train_idx), _take(x, val_idx)
        if preprocess_factory is not None:
            pre = preprocess_factory()
            pre.fit(x_tr)
            x_tr, x_va = pre.transform(x_tr), pre.transform(x_va)
        score = float(fit_and_score(x_tr, _take(y, train_idx), x_va, _take(y, val_idx)))
        scores.append(score)
        folds.append((train_idx, val_idx))
    mean, std = mean_std(scores)
    return KFoldResult(scores=tuple(scores), mean=mean, std=std, folds=tuple(folds))
