"""What a study learns: classification or regression, decided once, before anything is written.

``StudyConfig.task`` is ``"auto"`` (the default), ``"classification"`` or ``"regression"``.
The task enters here and nowhere else decides it:

* ``auto`` reads the target: a floating-point target with a non-integer value or more than 20
  distinct values (:func:`~regularkit.data.regression.is_continuous`; a table column whose
  numbers are written as floats, ``151.0`` or ``2.5``) is regression -- the classification
  readers refuse such targets, so no classification study changes -- anything else
  classification (a few whole floats: labels that lost their cast, refused as before).  An integer
  target stays classification unless the task is given as ``"regression"``.  The plan line
  says which task was chosen and why (:func:`task_note`).
* Regression data are loaded by :mod:`regularkit.data.regression_sources` (arrays, ``.npz``,
  CSV / Parquet with ``--target a`` or ``--target a,b``), split at random (no strata:
  :func:`split_regression`), and their targets standardized on the training rows
  (:func:`regularkit.data.regression.standardize`); the splits carry the mean, std and loss
  (``Splits.regression``), which every later room reads: the assembly (the loss), ``evaluate``
  (RMSE in the target's units), the record, the table, the verdict and the figures.
* The run key of a regression run names the task, the target columns and the loss
  (:func:`task_identity`); a classification key is what it was.
* From Python, arrays, a torch Dataset (or a (train, test) pair) whose first target is a float,
  and a :class:`~regularkit.data.regression.RegressionDataset` are read the same way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from regularkit.data import Dataset
from regularkit.data.regression import RegressionDataset, standardize
from regularkit.data.regression_sources import regression_from_arrays, regression_npz, regression_table
from regularkit.data.splits import Splits, make_splits_from_indices
from regularkit.data.sampling import train_val_split
from regularkit.data.tables import TABLE_SUFFIXES
from regularkit.errors import RegularkitError
from regularkit.study.config import StudyConfig

__all__ = ["load_regression", "split_regression", "task_note", "task_identity", "check_task"]


def load_regression(cfg: StudyConfig, data: Any = None) -> RegressionDataset | None:
    """The regression dataset ``cfg`` (or ``data`` from Python) holds, or ``None`` for a classification study."""
    if cfg.task == "classification":
        return None
    if data is not None:
        if isinstance(data, Dataset):
            return data if data.task == "regression" else None
        if isinstance(data, (tuple, list)) and len(data) in (2, 4) and not isinstance(data[0], torch.utils.data.Dataset):
            y = data[1].detach().cpu().numpy() if isinstance(data[1], torch.Tensor) else np.asarray(data[1])
            return regression_from_arrays(*data[:1], y, *data[2:], layout=cfg.layout, seed=cfg.data_seed,
                                          test_fraction=cfg.test_fraction or 0.2, task=cfg.task)
        parts = _torch_parts(data)
        if parts is not None and (cfg.task == "regression" or _float_target(parts[0])):
            arrays = [a for ds in parts for a in _materialize(ds)]
            return regression_from_arrays(*arrays, name="torch", layout=cfg.layout, seed=cfg.data_seed,
                                          test_fraction=cfg.test_fraction or 0.2)
        if cfg.task == "regression":
            raise RegularkitError(f"task 'regression' reads arrays (x_train, y_train[, x_test, y_test]), torch "
                                  f"Datasets, a .npz or a table; got {type(data).__name__}")
        return None
    suffix = Path(cfg.data).suffix.lower()
    if suffix in TABLE_SUFFIXES and cfg.target is not None:
        return regression_table(cfg.data, target=cfg.target, test_fraction=cfg.test_fraction or 0.2,
                                seed=cfg.data_seed, test_path=cfg.test_data, task=cfg.task)
    if suffix == ".npz":
        return regression_npz(cfg.data, layout=cfg.layout, task=cfg.task)
    if cfg.task == "regression":
        raise RegularkitError(f"task 'regression' needs continuous targets: a .csv / .parquet table with --target, a "
                              f".npz with float y_train, or arrays; {cfg.data!r} holds class labels")
    return None


def _torch_parts(data) -> tuple | None:
    """``(train,)`` or ``(train, test)`` when ``data`` is a torch Dataset or a pair of them, else None."""
    if isinstance(data, torch.utils.data.Dataset):
        return (data,)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, torch.utils.data.Dataset)
                                                                  for d in data):
        return tuple(data)
    return None


def _float_target(dataset) -> bool:
    """The auto rule on a torch Dataset, read from its first sample only (the rest is read for a regression):
    a floating-point target number or tensor."""
    if len(dataset) == 0:
        return False
    y = dataset[0][1]
    if isinstance(y, torch.Tensor):
        return y.is_floating_point()
    if isinstance(y, np.ndarray):
        return y.dtype.kind == "f"
    return isinstance(y, (float, np.floating))


def _materialize(dataset) -> tuple[np.ndarray, np.ndarray]:
    """A torch Dataset of (x, y) samples as two arrays (x float32, y float64)."""
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
    x = torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in xs]).numpy()
    y = torch.stack([torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in ys]).numpy()
    return x, (y[:, 0] if y.shape[1] == 1 else y)


def split_regression(dataset: RegressionDataset, cfg: StudyConfig) -> Splits:
    """Validation carved at random from training (seeded, the same for every seed), the ``train_size``
    subset of the rest, then the targets standardized on the training rows."""
    n = len(dataset.y_train)
    n_val = cfg.val_count(n)
    train_idx, val_idx = train_val_split(np.zeros(n, np.int64), None if n_val else cfg.val_fraction,
                                         val_size=n_val, seed=cfg.data_seed, stratify=False)
    size = cfg.effective_train_size()
    if size is not None and size < len(train_idx):
        keep = np.sort(np.random.default_rng(cfg.data_seed).permutation(len(train_idx))[:size])
        train_idx = train_idx[keep]
    splits = make_splits_from_indices(dataset, train_idx, val_idx)
    return standardize(splits, dataset.classes, cfg.loss or "mse")


def check_task(cfg: StudyConfig, dataset: Dataset) -> None:
    """A regression loss on a classification study is refused (the config cannot know under ``auto``)."""
    if dataset.task == "classification" and cfg.loss is not None:
        raise RegularkitError(f"loss {cfg.loss!r} is a regression loss and {dataset.name}'s target holds class "
                              "labels; pass --task regression to read it as numbers, or leave --loss out")


def task_note(cfg: StudyConfig, splits: Splits) -> str:
    """The plan line's word on the task: ``"regression of 'y' (auto: ...), loss mse"``, or ``""``."""
    if splits.regression is None:
        return ""
    r = splits.regression
    names = ", ".join(repr(n) for n in r.names)
    why = " (auto: a floating-point target)" if cfg.task == "auto" else ""
    return f"regression of {names}{why}, loss {r.loss}, targets standardized on the training rows"


def task_identity(splits: Splits) -> dict[str, Any]:
    """What a regression run key adds: the task, the targets and the loss (nothing for classification)."""
    if splits.regression is None:
        return {}
    return {"task": {"kind": "regression", "targets": list(splits.regression.names), "loss": splits.regression.loss}}
