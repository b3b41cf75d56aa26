"""Datasets as plain NumPy arrays: scikit-learn's digits, Fashion-MNIST, or any ``.npz`` file.

Every loader returns the same frozen :class:`Dataset`: ``x`` float32 in
[0, 1] for images (N×C×H×W) or raw values for vectors (N×D), ``y`` int64
class indices.  Arrays are made read-only, so no step downstream can edit
the data another run will load.  ``DATASETS`` is the one registry of names.

Fashion-MNIST: Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image
Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747 (2017).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from regularkit._util.checks import check_int
from regularkit.data.download import default_data_root
from regularkit.data.idx import read_idx
from regularkit.data.sampling import stratified_subset, train_val_split
from regularkit.errors import RegularkitError

__all__ = ["Dataset", "load_dataset", "load_digits", "load_fashion_mnist", "load_npz",
           "limit_train_set", "DATASETS", "FASHION_MNIST_CLASSES", "FASHION_MNIST_FILES",
           "SYSTEM_DATA_DIR", "fashion_mnist_search_dirs"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: (train images, train labels, test images, test labels), as published.
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
#: Where Debian's ``dataset-*`` packages install data (``dataset-fashion-mnist``).
SYSTEM_DATA_DIR = Path("/usr/share/datasets")
DIGITS_TEST_FRACTION = 0.3
DIGITS_SPLIT_SEED = 0  # fixed: every study compares runs on the same digits test set


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset: fixed train and test arrays plus class metadata.

    Construction checks dtypes (x float32, y int64), lengths and label range,
    and marks the four arrays read-only (the caller's arrays included): edit
    copies, never the dataset.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_int("num_classes", self.num_classes, minimum=1)
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if x.dtype != np.float32 or y.dtype != np.int64:
                raise RegularkitError(
                    f"{self.name}: x_{part} must be float32 and y_{part} int64, got {x.dtype} and {y.dtype}")
            if x.ndim < 2:
                raise RegularkitError(f"{self.name}: x_{part} must be N×..., got shape {x.shape}")
            if y.ndim != 1 or len(x) != len(y):
                raise RegularkitError(
                    f"{self.name}: x_{part} has {len(x)} samples but y_{part} has shape {y.shape}")
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                bad = y.min() if y.min() < 0 else y.max()
                raise RegularkitError(
                    f"{self.name}: y_{part} holds label {bad}, outside [0, {self.num_classes})")
            x.setflags(write=False)
            y.setflags(write=False)
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise RegularkitError(f"{self.name}: train samples have shape {self.x_train.shape[1:]} "
                                  f"but test samples {self.x_test.shape[1:]}")
        if self.classes is not None and len(self.classes) != self.num_classes:
            raise RegularkitError(
                f"{self.name}: {len(self.classes)} class names for {self.num_classes} classes")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample: ``(C, H, W)`` for images, ``(D,)`` for vectors."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def load_digits(*, data_dir: str | os.PathLike | None = None) -> Dataset:
    """scikit-learn's bundled 8×8 digits (1797 images, no download), 1×8×8 in [0, 1].

    Split 70/30, stratified, always with ``DIGITS_SPLIT_SEED``.  ``data_dir``
    is accepted for a uniform loader signature and ignored.
    """
    from sklearn.datasets import load_digits as _sk_digits  # heavy import, only when used

    bunch = _sk_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    train, test = train_val_split(y, DIGITS_TEST_FRACTION, seed=DIGITS_SPLIT_SEED)
    return Dataset("digits", x[train], y[train], x[test], y[test], num_classes=10,
                   classes=tuple(str(d) for d in range(10)))


def fashion_mnist_search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders :func:`load_fashion_mnist` looks in, in order."""
    dirs: list[Path] = []
    if data_dir is not None:
        dirs += [Path(data_dir), Path(data_dir) / "fashion-mnist"]
    env = os.environ.get("REGULARKIT_DATA")
    if env:
        dirs += [Path(env), Path(env) / "fashion-mnist"]
    else:  # where `regularkit data download fashion-mnist` puts it by default
        dirs.append(default_data_root() / "fashion-mnist")
    dirs.append(SYSTEM_DATA_DIR / "fashion-mnist")
    return dirs


def _find_file(folder: Path, gz_name: str) -> Path | None:
    for name in (gz_name, gz_name.removesuffix(".gz")):  # raw (gunzipped) copies are fine too
        if (folder / name).is_file():
            return folder / name
    return None


def load_fashion_mnist(*, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Fashion-MNIST (60000 train, 10000 test, 1×28×28 in [0, 1]) from local IDX files.

    Looks in :func:`fashion_mnist_search_dirs` and uses the first folder that
    holds all four files, gzip-compressed or not.
    """
    looked = []
    for folder in fashion_mnist_search_dirs(data_dir):
        found = [_find_file(folder, name) for name in FASHION_MNIST_FILES]
        if all(found):
            return _fashion_mnist_from(found)
        have = sum(f is not None for f in found)
        looked.append(f"{folder}" + (f" ({have} of 4 files)" if have else ""))
    raise RegularkitError(
        "Fashion-MNIST not found; looked in " + ", ".join(looked) + ". Get it with "
        "`regularkit data download fashion-mnist` or `apt-get install dataset-fashion-mnist`")


def _fashion_mnist_from(paths: list[Path]) -> Dataset:
    arrays = [read_idx(p) for p in paths]
    parts = []
    for (images, labels), (pi, pl) in zip((arrays[:2], arrays[2:]), (paths[:2], paths[2:])):
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise RegularkitError(f"{pi}: expected uint8 images N×28×28, got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise RegularkitError(f"{pl}: expected {len(images)} labels, got shape {labels.shape}")
        if labels.max(initial=0) > 9:
            raise RegularkitError(f"{pl}: label {labels.max()} outside 0..9")
        parts += [(images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)]
    return Dataset("fashion-mnist", *parts, num_classes=10, classes=FASHION_MNIST_CLASSES)


def _npz_x(name: str, x: np.ndarray, path: Path) -> np.ndarray:
    if x.dtype == np.bool_ or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise RegularkitError(f"{path}: {name} must be real numbers, got dtype {x.dtype}")
    if x.ndim < 2 or x.ndim > 4 or len(x) == 0:
        raise RegularkitError(
            f"{path}: {name} must be non-empty N×D, N×H×W, N×C×H×W or N×H×W×C, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise RegularkitError(f"{path}: {name} holds {bad} non-finite values (NaN or inf)")
    out = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if out.ndim == 3:  # N×H×W grey images
        out = out[:, None]
    elif out.ndim == 4 and out.shape[3] in (1, 3) and out.shape[1] > 4 and out.shape[2] > 4:
        out = out.transpose(0, 3, 1, 2)  # channels-last (Keras, PIL) to PyTorch's channels-first
    return np.ascontiguousarray(out)


def _npz_y(name: str, y: np.ndarray, n: int, path: Path) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        raise RegularkitError(f"{path}: {name} must hold integer labels, got dtype {y.dtype}")
    if y.shape != (n,):
        raise RegularkitError(f"{path}: {name} must have shape ({n},) to match x, got {y.shape}")
    if y.min() < 0:
        raise RegularkitError(f"{path}: {name} holds label {y.min()}; labels must be >= 0")
    return y.astype(np.int64)


def load_npz(path: str | os.PathLike) -> Dataset:
    """A dataset from a ``.npz`` file with ``x_train, y_train, x_test, y_test``.

    Optional keys: ``num_classes`` (else max label + 1) and ``classes`` (names).
    uint8 ``x`` is scaled by 1/255; N×H×W becomes N×1×H×W; a 4-D array whose
    last axis is 1 or 3 and whose middle axes are both > 4 is taken as
    channels-last N×H×W×C and transposed to N×C×H×W; N×D stays as vectors.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise RegularkitError(f"npz file not found: {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise RegularkitError(f"cannot read {path} as a .npz archive: {exc}") from None
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise RegularkitError(f"{path}: missing arrays {', '.join(missing)} (has {', '.join(arrays) or 'none'})")
    x_train = _npz_x("x_train", arrays["x_train"], path)
    x_test = _npz_x("x_test", arrays["x_test"], path)
    y_train = _npz_y("y_train", arrays["y_train"], len(x_train), path)
    y_test = _npz_y("y_test", arrays["y_test"], len(x_test), path)
    top = int(max(y_train.max(), y_test.max()))
    if "num_classes" in arrays:
        nc = arrays["num_classes"]
        if nc.ndim != 0 or not np.issubdtype(nc.dtype, np.integer) or int(nc) < 1:
            raise RegularkitError(f"{path}: num_classes must be a positive integer, got {nc!r}")
        num_classes = int(nc)
        if top >= num_classes:
            raise RegularkitError(f"{path}: label {top} is out of range for num_classes={num_classes}")
    else:
        num_classes = top + 1
    classes = None
    if "classes" in arrays:
        names = arrays["classes"]
        if names.ndim != 1 or names.dtype.kind not in "US" or len(names) != num_classes:
            raise RegularkitError(f"{path}: classes must be {num_classes} strings, got {names!r}")
        classes = tuple(str(c) for c in names)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise RegularkitError(f"{path}: x_train samples have shape {x_train.shape[1:]} "
                              f"but x_test samples {x_test.shape[1:]}")
    return Dataset(path.stem, x_train, y_train, x_test, y_test, num_classes=num_classes, classes=classes)


def limit_train_set(dataset: Dataset, limit: int, *, seed: int = 0) -> Dataset:
    """``dataset`` with a seeded, stratified subset of ``limit`` training samples (test set unchanged)."""
    limit = check_int("limit_train", limit, minimum=1)
    if limit >= len(dataset.y_train):
        return dataset
    keep = stratified_subset(dataset.y_train, limit, seed=seed)
    return replace(dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep])


#: The registry: dataset name -> loader(*, data_dir) -> Dataset.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "fashion-mnist": load_fashion_mnist,
}


def load_dataset(name_or_path: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
                 limit_train: int | None = None, seed: int = 0) -> Dataset:
    """Load a registered dataset by name, or a ``.npz`` file by path.

    ``limit_train`` keeps a stratified subset of that many training samples,
    drawn with ``seed`` (for fast studies); the test set is never subsampled.
    """
    seed = check_int("seed", seed, minimum=0)
    if isinstance(name_or_path, str) and name_or_path in DATASETS:
        dataset = DATASETS[name_or_path](data_dir=data_dir)
    elif str(name_or_path).endswith(".npz") or Path(name_or_path).is_file():
        dataset = load_npz(name_or_path)
    else:
        raise RegularkitError(f"unknown dataset {str(name_or_path)!r}; choose one of "
                              f"{', '.join(DATASETS)}, or a path to a .npz file")
    if limit_train is not None:
        dataset = limit_train_set(dataset, limit_train, seed=seed)
    return dataset
