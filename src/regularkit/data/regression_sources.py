"""Regression datasets from arrays, ``.npz`` files and tables, and the ``auto`` task decision for each.

The sources are those of classification (:mod:`~regularkit.data.arrays`,
:mod:`~regularkit.data.datasets`, :mod:`~regularkit.data.tables`) read with continuous targets:

* arrays ``(x_train, y_train[, x_test, y_test])`` with y (n,) or (n, k) of real numbers;
* a ``.npz`` file with ``x_train, y_train, x_test, y_test`` and float ``y_*`` (optional
  ``targets``: an array of k names);
* a CSV / Parquet table with ``target="a"`` or ``"a,b"`` (several columns: multi-output): each
  target value must parse as a number (a string is refused naming its row); the features are the
  other columns, read, checked and preprocessed by the table loader's rules (numeric columns
  standardized, categorical ones one-hot encoded, fitted on the training rows).

Without a test part, a seeded random ``test_fraction`` of the rows is held out (not stratified:
there are no classes) by :func:`~regularkit.data.sampling.train_val_split`.  Every source ends in a
:class:`~regularkit.data.regression.RegressionDataset`, whose construction checks the targets.

``task``: ``"regression"`` reads the targets as numbers whatever they look like; ``"auto"``
reads them as numbers only when :func:`~regularkit.data.regression.is_continuous` says so (a
float with a non-integer value) and returns ``None`` otherwise, for the classification loader.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from regularkit.data.datasets import read_npz
from regularkit.data.regression import MAX_WHOLE_CLASSES, RegressionDataset, as_targets, is_continuous
from regularkit.data.sampling import train_val_split
from regularkit.data.schema import as_features
from regularkit.data.tables import _encode, _feature_columns, _is_missing, _number, _read, _Table
from regularkit.errors import RegularkitError

__all__ = ["regression_from_arrays", "regression_npz", "regression_table", "target_columns"]


def _held_out(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return train_val_split(np.zeros(n, np.int64), test_fraction, seed=seed, stratify=False)


def _names(k: int, given=None) -> tuple[str, ...]:
    if given is not None:
        return tuple(str(g) for g in given)
    return ("y",) if k == 1 else tuple(f"y{j}" for j in range(k))


def regression_from_arrays(x_train, y_train, x_test=None, y_test=None, *, name: str = "arrays", layout=None,
                           test_fraction: float = 0.2, seed: int = 0, task: str = "regression",
                           names=None) -> RegressionDataset | None:
    """A RegressionDataset from NumPy arrays (see the module docstring); ``None`` when ``task="auto"``
    and ``y_train`` is not continuous."""
    y_train = np.asarray(y_train)
    if task == "auto" and not is_continuous(y_train):
        return None
    x, kind = as_features("x_train", np.asarray(x_train), source=name, layout=layout)
    y = as_targets("y_train", y_train, len(x), source=name, constant_check=x_test is not None)
    if x_test is None:
        if len(x) < 3:
            raise RegularkitError(f"{name}: {len(x)} row(s); a regression study needs at least 3 "
                                  "(training, validation and test)")
        train_idx, test_idx = _held_out(len(x), test_fraction, seed)
        parts = (x[train_idx], y[train_idx], x[test_idx], y[test_idx])
        sources = {"loader": "arrays", "split": "seeded", "test_fraction": test_fraction, "seed": seed,
                   "train_indices": train_idx.tolist(), "test_indices": test_idx.tolist()}
    else:
        xt, _ = as_features("x_test", np.asarray(x_test), source=name, layout=layout)
        parts = (x, y, xt, as_targets("y_test", y_test, len(xt), source=name, constant_check=False))
        sources = {"loader": "arrays", "split": "given"}
    k = parts[1].shape[1]
    return RegressionDataset(name, *parts, num_classes=k, classes=_names(k, names), layout=kind, sources=sources)


def regression_npz(path, *, layout=None, task: str = "regression") -> RegressionDataset | None:
    """A RegressionDataset from a ``.npz`` (``None`` under ``task="auto"`` with class-like ``y_train``)."""
    path = Path(path)
    arrays = read_npz(path)
    if task == "auto" and not is_continuous(arrays["y_train"]):
        return None
    names = arrays["targets"].tolist() if "targets" in arrays else None
    return regression_from_arrays(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                                  name=path.stem, layout=layout, names=names)


def target_columns(target: str) -> tuple[str, ...]:
    """``"a,b"`` -> ``("a", "b")``: the target columns named by ``--target``."""
    columns = tuple(c.strip() for c in target.split(","))
    if not all(columns) or len(set(columns)) != len(columns):
        raise RegularkitError(f"target must name one or more distinct columns separated by commas, got {target!r}")
    return columns


def _target_numbers(table: _Table, columns: tuple[str, ...]) -> np.ndarray:
    """The target columns as an (n, k) float array: every value present and a finite number."""
    out = np.empty((len(table.rows), len(columns)))
    for j, column in enumerate(columns):
        for i, (value, row) in enumerate(zip(table.cells[column], table.rows)):
            if _is_missing(value):
                raise RegularkitError(f"{table.path}: row {row}: the target column {column!r} has no value")
            number = _number(value)
            if number is None or not np.isfinite(number):
                raise RegularkitError(f"{table.path}: row {row}: the target column {column!r} holds {value!r}, "
                                      "not a finite number (a regression target must be numeric)")
            out[i, j] = number
    return out


def _looks_continuous(table: _Table, columns: tuple[str, ...]) -> bool:
    """:func:`~regularkit.data.regression.is_continuous` on a table: its numbers are written as floats (a value
    ``int()`` does not read, ``"151.0"``, ``"2.5"``, a Parquet float) and hold a fraction or more than 20
    distinct values.  A string or gap in such a column is then refused by its row."""
    present = [v for c in columns for v in table.cells[c] if not _is_missing(v)]
    as_float = [v for v in present if not isinstance(v, int) and not (isinstance(v, str) and _is_int_text(v))]
    numbers = np.array([n for n in map(_number, as_float) if n is not None and np.isfinite(n)])
    if not numbers.size:
        return False
    whole = np.array([n for n in map(_number, present) if n is not None and np.isfinite(n)])
    return bool(np.any(numbers != np.round(numbers))) or len(np.unique(whole)) > MAX_WHOLE_CLASSES


def _is_int_text(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def regression_table(path, *, target: str, test_fraction: float = 0.2, seed: int = 0,
                     test_path: str | os.PathLike | None = None, task: str = "regression") -> RegressionDataset | None:
    """A RegressionDataset of vectors from a CSV or Parquet table (see the module docstring)."""
    columns = target_columns(target)
    train = _read(path)
    for c in columns:
        if c not in train.header:
            raise RegularkitError(f"{train.path}: no column {c!r}; the columns are {', '.join(train.header)}")
    if task == "auto" and (len(columns) == 1 and not _looks_continuous(train, columns)):
        return None
    test = _read(test_path) if test_path is not None else None
    if test is not None and sorted(test.header) != sorted(train.header):
        raise RegularkitError(f"{test.path}: the test table's columns differ from {train.path}'s")
    y_all = _target_numbers(train, columns)
    if len(y_all) < (2 if test is not None else 3):
        raise RegularkitError(f"{train.path}: {len(y_all)} data row(s); a regression study needs at least 3")
    if test is None:
        train_idx, test_idx = _held_out(len(y_all), test_fraction, seed)
        y_test = y_all[test_idx]
    else:
        train_idx, test_idx = np.arange(len(y_all)), np.arange(len(test.rows))
        y_test = _target_numbers(test, columns)

    def view(t: _Table | None) -> _Table | None:  # the table without the other target columns
        return None if t is None else _Table(t.path, [h for h in t.header if h not in columns[1:]], t.cells, t.rows)

    numeric, categorical = _feature_columns(view(train), view(test), columns[0])
    held = test if test is not None else train
    (x_train, x_test), record = _encode([(train, train_idx), (held, test_idx)], numeric, categorical)
    sources = {"loader": "table", "task": "regression", "path": str(train.path),
               "test_path": None if test is None else str(test.path), "target": list(columns),
               "split": "files" if test is not None else "seeded",
               "test_fraction": None if test is not None else test_fraction, "seed": None if test is not None else seed,
               "train_rows": [train.rows[i] for i in train_idx], "test_rows": [held.rows[i] for i in test_idx],
               "preprocessing": {"columns": [c for c in train.header if c not in columns], **record}}
    return RegressionDataset(train.path.stem, x_train, y_all[train_idx].astype(np.float32), x_test,
                             y_test.astype(np.float32), num_classes=len(columns), classes=columns, layout="vectors",
                             sources=sources)
