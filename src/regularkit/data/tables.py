"""Tables: a CSV or Parquet file, one row per sample and one column naming the class, as a Dataset of vectors.

CSV is read with the standard library's ``csv`` module (RFC 4180 quoting,
UTF-8 with or without a byte-order mark, a header row required); Parquet
with ``pyarrow.parquet`` (optional: ``pip install pyarrow``).  Row numbers in
messages count the header as row 1, as a spreadsheet shows them.

The rules, decided once for both formats:

- Missing: ``None`` (a Parquet null), a float NaN, and the strings ``""``,
  ``NA``, ``NaN``, ``nan`` (surrounding spaces ignored, and any other spelling
  ``float()`` reads as NaN).  A missing feature or target is an error naming
  the column, the row and the file: nothing is imputed.
- A feature column is numeric when every value of the training file parses
  with ``float()`` (Parquet numbers are numbers); otherwise categorical.  The
  type is a property of the file's column, so it is decided on the whole
  training file, not on the seeded split.  inf is refused.  A column whose
  values are mostly numbers but not all (one typo makes the whole column
  one-hot) is read as categorical with a :class:`~regularkit.data.schema.DataWarning`
  naming the column, the row and the value.
- The target's values are integers when every one parses with ``int()``,
  sorted numerically, else strings sorted as strings; numbers with a
  fraction, or floats, are refused (a class label is not a measurement).
- Preprocessing is fitted on the training part only (after the seeded,
  stratified split, or the whole file when ``test_path`` gives the test
  table): numeric columns standardized by scikit-learn's ``StandardScaler``
  (population std, ddof 0; a constant column is divided by 1, not 0),
  categorical ones one-hot encoded by ``OneHotEncoder(handle_unknown="ignore")``
  with the training categories, sorted: a category the training part never
  saw becomes an all-zero row for that column, and is counted in ``sources``.
  Features: the numeric columns in file order, then each one-hot block.
"""
from __future__ import annotations

import csv
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regularkit._util.checks import check_in_range, check_int
from regularkit.data.sampling import split_off_test
from regularkit.data.schema import Dataset, DataWarning
from regularkit.errors import RegularkitError

__all__ = ["load_table", "TABLE_SUFFIXES", "MISSING"]

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
MISSING = ("", "NA", "NaN", "nan")


@dataclass(frozen=True)
class _Table:
    path: Path
    header: list[str]
    cells: dict[str, list]  # column -> values: str, int, float or None
    rows: list[int]         # spreadsheet row number of each value


def _number(cell) -> float | None:
    """``cell`` as a float (``float()``, so ``" 1e3 "`` and ``"1_000"`` too), or None where it is no number."""
    try:
        return float(cell)
    except (TypeError, ValueError):
        return None


def _is_missing(cell) -> bool:
    if cell is None or (isinstance(cell, str) and cell.strip() in MISSING):
        return True
    number = _number(cell)
    return number is not None and math.isnan(number)


def _check_header(path: Path, header: list[str]) -> None:
    if header and all(_number(h) is not None for h in header):
        raise RegularkitError(f"{path}: the first row holds only numbers ({', '.join(header[:3])}, ...); "
                              "a table needs a header row naming the columns")
    for i, name in enumerate(header):
        if not name.strip():
            raise RegularkitError(f"{path}: column {i + 1} of the header has no name")
        if name in header[:i]:
            raise RegularkitError(f"{path}: column {name!r} appears twice in the header")


def _read_csv(path: Path) -> _Table:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            records = list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise RegularkitError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise RegularkitError(f"{path}: malformed CSV: {exc}") from None
    except OSError as exc:
        raise RegularkitError(f"cannot read table {path}: {exc.strerror or exc}") from None
    if not records:
        raise RegularkitError(f"{path} is empty; a table needs a header row")
    header = records[0]
    _check_header(path, header)
    cells: dict[str, list] = {name: [] for name in header}
    rows = []
    for number, record in enumerate(records[1:], start=2):
        if not record:  # a blank line
            continue
        if len(record) != len(header):
            raise RegularkitError(f"{path}: row {number} has {len(record)} fields but the header has {len(header)}")
        for name, value in zip(header, record):
            cells[name].append(value)
        rows.append(number)
    return _Table(path, header, cells, rows)


def _read_parquet(path: Path) -> _Table:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise RegularkitError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise RegularkitError(f"cannot read {path} as Parquet: {' '.join(str(exc).split())}") from None
    header = [str(name) for name in table.column_names]
    _check_header(path, header)
    cells = {}
    for name, column in zip(header, table.columns):
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        values = column.to_pylist()
        if pa.types.is_boolean(kind):
            values = [None if v is None else str(v) for v in values]
        elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_string(kind)
                  or pa.types.is_large_string(kind)):
            raise RegularkitError(f"{path}: column {name!r} has Arrow type {column.type}; "
                                  "only numbers, strings and booleans are read")
        cells[name] = values
    return _Table(path, header, cells, list(range(2, table.num_rows + 2)))


def _read(path) -> _Table:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise RegularkitError(f"{path}: not a table file; a table is one of {', '.join(TABLE_SUFFIXES)}")
    if not path.is_file():
        raise RegularkitError(f"table file not found: {path}")
    table = _read_csv(path) if suffix == ".csv" else _read_parquet(path)
    if not table.rows:
        raise RegularkitError(f"{path} has a header but no data rows")
    return table


def _as_int(value) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None  # a float: never a class label


def _target_values(table: _Table, target: str) -> list:
    values = table.cells[target]
    for value, row in zip(values, table.rows):
        if _is_missing(value):
            raise RegularkitError(f"{table.path}: row {row}: the target column {target!r} has no value")
    return values


def _class_keys(table: _Table, target: str) -> tuple[list, bool]:
    """Every target value as a class key (int or str), and whether the keys are integers."""
    values = _target_values(table, target)
    ints = [_as_int(v) for v in values]
    if all(i is not None for i in ints):
        return ints, True
    if all(_number(v) is not None for v in values):
        value, row = next((v, r) for v, i, r in zip(values, ints, table.rows) if i is None)
        raise RegularkitError(f"{table.path}: row {row}: the target column {target!r} holds the number {value!r}; "
                              "class labels must be integers or strings")
    return [str(v) for v in values], False


def _test_labels(test: _Table, target: str, integer: bool, index: dict) -> np.ndarray:
    """The test table's class indices, keyed as the training table's; an unseen value is an error."""
    out = []
    for value, row in zip(_target_values(test, target), test.rows):
        key = _as_int(value) if integer else str(value)
        if key not in index:
            raise RegularkitError(f"{test.path}: row {row}: target value {str(value)!r} was never seen in "
                                  f"training (classes: {', '.join(map(str, index))})")
        out.append(index[key])
    return np.array(out, np.int64)


def _feature_columns(train: _Table, test: _Table | None, target: str) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature columns; any missing feature value is an error naming it."""
    features = [c for c in train.header if c != target]
    if not features:
        raise RegularkitError(f"{train.path}: no feature columns besides the target {target!r}")
    for table in (train, test) if test is not None else (train,):
        for i, row in enumerate(table.rows):
            for column in features:
                if _is_missing(table.cells[column][i]):
                    raise RegularkitError(f"{table.path}: row {row}: column {column!r} has no value "
                                          f"(missing values are not imputed)")
    numeric = []
    for c in features:
        bad = [(row, v) for row, v in zip(train.rows, train.cells[c]) if _number(v) is None]
        if not bad:
            numeric.append(c)
        elif 2 * len(bad) < len(train.rows):  # mostly numbers: a typo, or a column meant as categories?
            row, value = bad[0]
            warnings.warn(f"{train.path}: column {c!r} is read as categorical (one-hot, one feature per distinct "
                          f"value) because {len(bad)} of {len(train.rows)} values are not numbers, the first in "
                          f"row {row}: {value!r}; fix the cell if the column is numeric", DataWarning, stacklevel=2)
    return numeric, [c for c in features if c not in numeric]


def _numbers(table: _Table, column: str) -> np.ndarray:
    out = np.empty(len(table.rows))
    for i, (value, row) in enumerate(zip(table.cells[column], table.rows)):
        number = _number(value)
        if number is None:
            raise RegularkitError(f"{table.path}: row {row}: column {column!r} is numeric in the training "
                                  f"table but holds {value!r}")
        if not math.isfinite(number):
            raise RegularkitError(f"{table.path}: row {row}: column {column!r} holds {value!r}, not a finite number")
        out[i] = number
    return out


def _encode(parts: list[tuple[_Table, np.ndarray]], numeric: list[str], categorical: list[str]):
    """Fit on ``parts[0]`` (table, row positions), transform every part; return the arrays and the record."""
    from sklearn.preprocessing import OneHotEncoder, StandardScaler  # heavy import, only when used

    blocks: list[list[np.ndarray]] = [[] for _ in parts]
    record: dict = {"numeric": {}, "categorical": {}, "unknown_in_test": {}, "features": list(numeric)}
    if numeric:
        values = [np.stack([_numbers(t, c) for c in numeric], axis=1)[idx] for t, idx in parts]
        scaler = StandardScaler().fit(values[0])
        for out, v in zip(blocks, values):
            out.append(scaler.transform(v))
        for c, mean, var, scale in zip(numeric, scaler.mean_, scaler.var_, scaler.scale_):
            record["numeric"][c] = {"mean": float(mean), "std": float(np.sqrt(var)), "scale": float(scale)}
    if categorical:
        values = [np.array([[str(t.cells[c][i]) for c in categorical] for i in idx], dtype=object)
                  .reshape(len(idx), len(categorical)) for t, idx in parts]
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64).fit(values[0])
        with warnings.catch_warnings():  # unknown categories are counted below, not warned about
            warnings.simplefilter("ignore", UserWarning)
            for out, v in zip(blocks, values):
                out.append(encoder.transform(v))
        for j, (c, cats) in enumerate(zip(categorical, encoder.categories_)):
            record["categorical"][c] = [str(k) for k in cats]
            record["features"] += [f"{c}={k}" for k in cats]
            unknown = int(sum(v not in set(cats) for v in values[1][:, j]))
            if unknown:
                record["unknown_in_test"][c] = unknown
    return [np.hstack(b).astype(np.float32) for b in blocks], record


def load_table(path: str | os.PathLike, *, target: str, test_fraction: float = 0.2, seed: int = 0,
               test_path: str | os.PathLike | None = None) -> Dataset:
    """A Dataset of vectors from a CSV or Parquet table whose column ``target`` names the class.

    Without ``test_path`` a seeded, stratified ``test_fraction`` of the rows is
    held out (:func:`~regularkit.data.sampling.split_off_test`).  The rules for
    missing values, column types, class order and preprocessing are in this
    module's header; ``sources`` records the rows of each part and the fitted
    preprocessing (means, stds, categories), for a study to save.
    """
    if not isinstance(target, str):
        raise RegularkitError(f"target must be a column name (a string), got {target!r}")
    check_in_range("test_fraction", test_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    seed = check_int("seed", seed, minimum=0)
    train = _read(path)
    if target not in train.header:
        raise RegularkitError(f"{train.path}: no column {target!r}; the columns are {', '.join(train.header)}")
    test = _read(test_path) if test_path is not None else None
    if test is not None and sorted(test.header) != sorted(train.header):
        missing = [c for c in train.header if c not in test.header]
        extra = [c for c in test.header if c not in train.header]
        raise RegularkitError(f"{test.path}: the test table's columns differ from {train.path}'s: "
                              f"missing {', '.join(missing) or 'none'}; extra {', '.join(extra) or 'none'}")
    keys, integer = _class_keys(train, target)
    index = {key: i for i, key in enumerate(sorted(set(keys)))}
    names = [str(key) for key in index]
    if len(names) < 2:
        raise RegularkitError(f"{train.path}: the target column {target!r} holds a single class "
                              f"({names[0]!r}); a classifier needs at least 2")
    y_all = np.array([index[k] for k in keys], np.int64)
    if test is None:
        train_idx, test_idx = split_off_test(y_all, test_fraction, seed=seed, classes=names)
        y_test = y_all[test_idx]
    else:
        train_idx, test_idx = np.arange(len(keys)), np.arange(len(test.rows))
        y_test = _test_labels(test, target, integer, index)
    numeric, categorical = _feature_columns(train, test, target)
    held = test if test is not None else train
    (x_train, x_test), record = _encode([(train, train_idx), (held, test_idx)], numeric, categorical)
    sources = {"loader": "table", "path": str(train.path), "test_path": None if test is None else str(test.path),
               "target": target, "split": "files" if test is not None else "seeded",
               "test_fraction": None if test is not None else test_fraction,
               "seed": None if test is not None else seed,
               "train_rows": [train.rows[i] for i in train_idx],
               "test_rows": [held.rows[i] for i in test_idx],
               "preprocessing": {"columns": [c for c in train.header if c != target], **record}}
    return Dataset(train.path.stem, x_train, y_all[train_idx], x_test, y_test, num_classes=len(names),
                   classes=tuple(names), layout="vectors", sources=sources)
