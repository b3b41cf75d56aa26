"""Regression data: continuous targets, how a Dataset carries them, and their standardization.

A regression dataset is a :class:`RegressionDataset` (a :class:`~regularkit.data.schema.Dataset`
whose ``task`` is ``"regression"``).  Its targets are float32 of shape (n, k), k >= 1 outputs (a
(n,) array is read as k = 1); ``num_classes`` holds k, the width of the model's last layer, so
every room that builds a model from ``(input_shape, num_classes)`` builds one with k linear
outputs unchanged, and ``num_outputs`` says the same thing by its name.  ``classes`` holds the
target names (the table's columns, or ``y``, ``y1``, ...).

The checks (:func:`as_targets`, one set for files and arrays): real numbers (a string or a
boolean is refused), finite (NaN and inf counted), one row per sample, at least two rows, and
no constant target column in the training rows (nothing to learn, and R² is undefined).

:func:`is_continuous` is the ``auto`` rule: a floating-point target is a regression target when
it holds a non-integer value or more than ``MAX_WHOLE_CLASSES`` (20) distinct whole values (an
array of a float dtype; a table column whose numbers are written as floats, ``151.0``, or a
Parquet float column); a float target of a few whole values is class labels that lost their
cast, refused by the classification readers as before.  Integer targets stay class labels unless
the task is given as ``"regression"``.

Standardization (:func:`standardize`): on the *training* rows only,
``z = (y - mean) / std`` per output (population std, ddof 0), the validation and test
targets transformed with the same mean and std.  The model learns ``z``; every metric is
reported in the target's own units, ``y_hat = mean + std * z_hat``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from regularkit.data.schema import Dataset, check_fill, check_flips
from regularkit.data.splits import Splits
from regularkit.errors import RegularkitError

__all__ = ["RegressionDataset", "RegressionTargets", "as_targets", "is_continuous", "standardize", "LOSSES",
           "MAX_WHOLE_CLASSES"]

#: A float target of whole numbers with at most this many distinct values reads as class labels (auto rule).
MAX_WHOLE_CLASSES = 20
#: The regression training losses a study offers (``--loss``).
LOSSES = ("mse", "mae", "huber")


def is_continuous(y) -> bool:
    """The ``auto`` rule for arrays: a floating-point dtype holding a non-integer value, or more than
    :data:`MAX_WHOLE_CLASSES` distinct whole values (151.0, 75.0, ...: a measurement); a few whole floats are
    class labels that lost their cast (the classification reader refuses them, saying so).  Integer, boolean
    and string arrays are labels."""
    y = np.asarray(y)
    if y.dtype.kind != "f" or y.size == 0:
        return False
    finite = y[np.isfinite(y)]
    return bool(np.any(finite != np.round(finite))) or len(np.unique(finite)) > MAX_WHOLE_CLASSES


def as_targets(what: str, y, n: int, *, source: str, constant_check: bool = True) -> np.ndarray:
    """``y`` as float32 of shape (n, k): real, finite, one row per sample, not constant (see the module doc)."""
    y = np.asarray(y)
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
        raise RegularkitError(f"{source}: {what} must hold real numbers for regression, got dtype {y.dtype}")
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n or y.shape[1] == 0:
        raise RegularkitError(f"{source}: {what} must have shape ({n},) or ({n}, k) to match x, got {y.shape}")
    bad = int(np.count_nonzero(~np.isfinite(y.astype(np.float64))))
    if bad:
        raise RegularkitError(f"{source}: {what} holds {bad} non-finite target values (NaN or inf)")
    if constant_check:
        if n < 2:
            raise RegularkitError(f"{source}: {what} has {n} row; a regression needs at least 2")
        flat = np.flatnonzero(np.ptp(y, axis=0) == 0)
        if flat.size:
            raise RegularkitError(f"{source}: {what} column {int(flat[0])} is constant ({float(y[0, flat[0]]):g}); "
                                  "there is nothing to learn")
    return np.ascontiguousarray(y, dtype=np.float32)


@dataclass(frozen=True, eq=False)
class RegressionDataset(Dataset):
    """A :class:`~regularkit.data.schema.Dataset` of continuous targets (see the module docstring).

    Construction checks x (float32, finite, layout, same sample shape for train and test),
    the targets by :func:`as_targets`, ``num_classes == k`` and ``classes`` (k target names),
    then marks the arrays read-only, as :class:`Dataset` does.
    """

    def __post_init__(self) -> None:
        k = self.y_train.shape[1] if isinstance(self.y_train, np.ndarray) and self.y_train.ndim == 2 else None
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
                raise RegularkitError(f"{self.name}: x_{part} and y_{part} must be NumPy arrays")
            if x.dtype != np.float32 or y.dtype != np.float32 or y.ndim != 2 or y.shape[1] != k:
                raise RegularkitError(f"{self.name}: x_{part} must be float32 and y_{part} float32 (n, {k}), got "
                                      f"{x.dtype} and {y.dtype} {y.shape}")
            if x.ndim < 2 or x.ndim > 4 or len(x) != len(y):
                raise RegularkitError(f"{self.name}: x_{part} of shape {x.shape} does not match y_{part} {y.shape}")
            bad = int(np.count_nonzero(~np.isfinite(x)))
            if bad:
                raise RegularkitError(f"{self.name}: x_{part} holds {bad} non-finite values (NaN or inf)")
            as_targets(f"y_{part}", y, len(x), source=self.name, constant_check=part == "train")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise RegularkitError(f"{self.name}: train samples have shape {self.x_train.shape[1:]} "
                                  f"but test samples {self.x_test.shape[1:]}")
        if not isinstance(self.num_classes, int) or self.num_classes != k:
            raise RegularkitError(f"{self.name}: num_classes must be the number of outputs {k}, "
                                  f"got {self.num_classes!r}")
        if self.classes is None or len(self.classes) != k or not all(isinstance(c, str) for c in self.classes):
            raise RegularkitError(f"{self.name}: classes must name the {k} target(s), got {self.classes!r}")
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "flips", check_flips(self.flips, self.kind, self.name))
        object.__setattr__(self, "fill", check_fill(self.fill, self.kind, self.name))
        object.__setattr__(self, "sources", None if self.sources is None else dict(self.sources))
        for a in (self.x_train, self.y_train, self.x_test, self.y_test):
            a.setflags(write=False)

    @property
    def task(self) -> str:
        return "regression"

    def __repr__(self) -> str:
        return (f"RegressionDataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"input_shape={self.input_shape}, outputs={self.num_classes})")


@dataclass(frozen=True)
class RegressionTargets:
    """What a regression run needs besides its tensors: the training rows' mean and std per output
    (``y = mean + std * z``), the target names and the training loss."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    names: tuple[str, ...]
    loss: str = "mse"

    def scale(self) -> torch.Tensor:
        return torch.tensor(self.std, dtype=torch.float32)

    def to_units(self, z: torch.Tensor) -> torch.Tensor:
        """Standardized values (n, k) back in the target's units."""
        return z * self.scale().to(z.device) + torch.tensor(self.mean, dtype=torch.float32, device=z.device)

    def record(self) -> dict:
        return {"task": "regression", "targets": list(self.names), "target_mean": list(self.mean),
                "target_std": list(self.std), "loss": self.loss}


def standardize(splits: Splits, names, loss: str = "mse") -> Splits:
    """``splits`` with standardized targets (mean and std of the training rows, ddof 0) and their
    :class:`RegressionTargets`; a training column of zero spread is refused (nothing to learn)."""
    y = splits.y_train.double()
    mean, std = y.mean(0), y.std(0, unbiased=False)
    if bool((std == 0).any()):
        j = int(torch.nonzero(std == 0)[0])
        raise RegularkitError(f"{splits.name}: target {names[j]!r} is constant on the training rows; "
                              "there is nothing to learn")

    def z(t: torch.Tensor) -> torch.Tensor:
        return ((t.double() - mean) / std).float()

    info = RegressionTargets(mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std),
                             names=tuple(names), loss=loss)
    return dataclasses.replace(splits, y_train=z(splits.y_train), y_val=z(splits.y_val), y_test=z(splits.y_test),
                               regression=info)
