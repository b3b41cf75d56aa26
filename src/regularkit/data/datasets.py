"""The built-in datasets (scikit-learn's digits, Fashion-MNIST), ``.npz`` files, and ``load_dataset``.

Every loader returns the same frozen :class:`~regularkit.data.schema.Dataset`:
``x`` float32 in [0, 1] for images (N×C×H×W) or raw values for vectors
(N×D), ``y`` int64 class indices, read-only.  ``DATASETS`` is the one
registry of names; ``load_dataset`` also dispatches paths: ``.npz`` here,
folders to :mod:`~regularkit.data.images`, ``.csv`` / ``.parquet`` to
:mod:`~regularkit.data.tables`.

Fashion-MNIST: Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image
Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747 (2017).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from regularkit._util.checks import check_int, check_path
from regularkit.data.download import default_data_root
from regularkit.data.idx import read_idx
from regularkit.data.images import load_image_folder
from regularkit.data.sampling import stratified_subset, train_val_split
from regularkit.data.schema import Dataset, as_features, as_labels, check_fill, check_flips, inferred_num_classes
from regularkit.data.tables import TABLE_SUFFIXES, load_table
from regularkit.errors import RegularkitError

__all__ = ["load_dataset", "load_digits", "load_fashion_mnist", "load_npz", "limit_train_set",
           "DATASETS", "FASHION_MNIST_CLASSES", "FASHION_MNIST_FILES", "SYSTEM_DATA_DIR",
           "fashion_mnist_search_dirs"]

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
#: (train images, train labels, test images, test labels), as published.
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
#: Where Debian's ``dataset-*`` packages install data (``dataset-fashion-mnist``).
SYSTEM_DATA_DIR = Path("/usr/share/datasets")
DIGITS_TEST_FRACTION = 0.3
DIGITS_SPLIT_SEED = 0  # fixed: every study compares runs on the same digits test set


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
    # A mirrored digit is another glyph (or none), so no flip keeps the class; the
    # background is 0, so shifts bring in black.
    return Dataset("digits", x[train], y[train], x[test], y[test], num_classes=10,
                   classes=tuple(str(d) for d in range(10)), layout="images", flips=(), fill="constant")


def fashion_mnist_search_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders :func:`load_fashion_mnist` looks in, in order.

    A ``data_dir`` given is the only place looked in (and its ``fashion-mnist`` subfolder): asking
    for a folder and silently getting the files of another would mix data without saying so.
    """
    if data_dir is not None:
        return [Path(data_dir), Path(data_dir) / "fashion-mnist"]
    dirs: list[Path] = []
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
    if data_dir is not None:
        missing = [n for n in FASHION_MNIST_FILES if _find_file(Path(data_dir), n) is None]
        raise RegularkitError(f"--data-dir {str(data_dir)!r} does not hold Fashion-MNIST: missing {', '.join(missing)} "
                              "(also looked in its fashion-mnist/ subfolder); no other folder is tried when "
                              "--data-dir is given")
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
    # Garments are left-right symmetric but not top-bottom (an upside-down boot is
    # no boot); the background is black, and reflect padding would mirror garment
    # edges into the frame.
    return Dataset("fashion-mnist", *parts, num_classes=10, classes=FASHION_MNIST_CLASSES,
                   layout="images", flips=("horizontal",), fill="constant")


#: Keys of ``Dataset.sources`` that list one entry per training sample, kept in step by ``limit_train_set``.
TRAIN_SOURCE_KEYS = ("train_files", "train_rows", "train_indices")


def limit_train_set(dataset: Dataset, limit: int, *, seed: int = 0) -> Dataset:
    """``dataset`` with a seeded, stratified subset of ``limit`` training samples (test set unchanged).

    Per-sample lists in ``sources`` (``TRAIN_SOURCE_KEYS``) are subset alike,
    and ``sources["limit_train"]`` records the size and seed.
    """
    limit = check_int("limit_train", limit, minimum=1)
    if limit >= len(dataset.y_train):
        return dataset
    keep = stratified_subset(dataset.y_train, limit, seed=seed)
    sources = dataset.sources
    if sources is not None:
        sources = dict(sources, limit_train={"size": limit, "seed": seed})
        for key in TRAIN_SOURCE_KEYS:
            if key in sources:
                sources[key] = [sources[key][i] for i in keep]
    return replace(dataset, x_train=dataset.x_train[keep], y_train=dataset.y_train[keep], sources=sources)


def _npz_text(arrays: dict[str, np.ndarray], key: str, path: Path) -> str | None:
    """The optional string key ``key`` of an archive (``np.savez(..., layout="images")``)."""
    if key not in arrays:
        return None
    value = arrays[key]
    if value.ndim != 0 or value.dtype.kind not in "US":
        raise RegularkitError(f"{path}: {key} must be a string, got {value!r}")
    item = value.item()
    return item.decode() if isinstance(item, bytes) else str(item)


def _npz_flips(arrays: dict[str, np.ndarray], path: Path) -> tuple[str, ...] | None:
    """The optional ``flips`` key: a 1-D string array; an empty array of any dtype is ``()``.

    (``np.savez(..., flips=[])`` stores float64, so an empty list must read as no flips.)
    """
    if "flips" not in arrays:
        return None
    value = arrays["flips"]
    if value.ndim != 1 or (value.size and value.dtype.kind not in "US"):
        raise RegularkitError(f"{path}: flips must be a 1-D array of strings, got {value!r}")
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist())


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` (no pickles), with ``x_train``, ``y_train``, ``x_test``, ``y_test`` present;
    a missing or unreadable file or a missing array is one line naming it."""
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
    return arrays


def load_npz(path: str | os.PathLike, *, layout: str | None = None,
             flips: tuple[str, ...] | None = None, fill: str | None = None) -> Dataset:
    """A dataset from a ``.npz`` file with ``x_train, y_train, x_test, y_test``.

    Optional keys: ``num_classes`` (else max label + 1, labels 0..k-1 only), ``classes`` (names),
    ``layout``, ``fill`` (strings) and ``flips`` (an array of strings); the
    arguments of the same names win over the file.  Arrays are checked and
    converted by :func:`~regularkit.data.schema.as_features` (uint8 scaled by
    1/255; without a layout, N×H×W is grey images N×1×H×W, as Keras'
    ``mnist.load_data()`` returns them; channels-last 4-D is transposed).
    """
    path = Path(check_path("path", path))
    arrays = read_npz(path)
    source = str(path)
    file_layout, file_fill, file_flips = _npz_text(arrays, "layout", path), _npz_text(arrays, "fill", path), \
        _npz_flips(arrays, path)
    declared = layout if layout is not None else file_layout
    x_train, kind = as_features("x_train", arrays["x_train"], source=source, layout=declared)
    x_test, _ = as_features("x_test", arrays["x_test"], source=source, layout=declared)
    y_train = as_labels("y_train", arrays["y_train"], len(x_train), source=source)
    y_test = as_labels("y_test", arrays["y_test"], len(x_test), source=source)
    top = int(max(y_train.max(), y_test.max()))
    if "num_classes" in arrays:
        nc = arrays["num_classes"]
        if nc.ndim != 0 or not np.issubdtype(nc.dtype, np.integer) or int(nc) < 1:
            raise RegularkitError(f"{path}: num_classes must be a positive integer, got {nc!r}")
        num_classes = int(nc)
        if top >= num_classes:
            raise RegularkitError(f"{path}: label {top} is out of range for num_classes={num_classes}")
    else:
        num_classes = inferred_num_classes(source, y_train, y_test)
    classes = None
    if "classes" in arrays:
        names = arrays["classes"]
        if names.ndim != 1 or names.dtype.kind not in "US" or len(names) != num_classes:
            raise RegularkitError(f"{path}: classes must be {num_classes} strings, got {names!r}")
        classes = tuple(str(c) for c in names)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise RegularkitError(f"{path}: x_train samples have shape {x_train.shape[1:]} "
                              f"but x_test samples {x_test.shape[1:]}")
    return Dataset(path.stem, x_train, y_train, x_test, y_test, num_classes=num_classes, classes=classes,
                   layout=kind, flips=check_flips(file_flips if flips is None else flips, kind, source),
                   fill=check_fill(file_fill if fill is None else fill, kind, source))


#: The registry: dataset name -> loader(*, data_dir) -> Dataset.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "fashion-mnist": load_fashion_mnist,
}
#: The registered datasets read from files, which ``data_dir`` locates (digits is embedded).
USES_DATA_DIR = ("fashion-mnist",)
#: What ``load_dataset`` accepts besides the names, for its messages.
ACCEPTED = ("a path to a .npz file, an image folder (root/<class>/*.png or root/train/ and root/test/), "
            "or a table (.csv, .parquet, .pq) with target=")
#: Kind of source -> (how messages call it, the load_dataset options it takes besides data_dir and limit_train).
_SOURCES = {
    "name": ("a registered dataset", ()),
    "npz": ("an .npz file", ("layout", "flips", "fill")),
    "image folder": ("an image folder", ("image_size", "grayscale", "test_fraction", "split_seed", "flips", "fill")),
    "table": ("a table", ("target", "test_path", "test_fraction", "split_seed")),
}


def _source_kind(name_or_path) -> str:
    """"name", "npz", "image folder" or "table"; anything else is an error naming it."""
    if isinstance(name_or_path, str) and name_or_path in DATASETS:
        return "name"
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise RegularkitError(f"a dataset is a name or a path, got {name_or_path!r}")
    path = Path(name_or_path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if path.is_dir():
        return "image folder"
    if suffix in TABLE_SUFFIXES:
        return "table"
    why = ""
    if path.is_file():
        why = f" ({suffix or 'a file without suffix'} is not a format we read" + (
            "; save x_train, y_train, x_test, y_test into one .npz with numpy.savez)" if suffix == ".npy" else ")")
    elif os.sep in str(name_or_path) or suffix:
        why = " (no such file or folder)"
    raise RegularkitError(f"unknown dataset {str(name_or_path)!r}{why}; choose one of "
                          f"{', '.join(DATASETS)}, or {ACCEPTED}")


def load_dataset(name_or_path: str | os.PathLike, *, data_dir: str | os.PathLike | None = None,
                 limit_train: int | None = None, seed: int = 0, layout: str | None = None,
                 image_size: int | tuple[int, int] | None = None, grayscale: bool | None = None,
                 target: str | None = None, test_path: str | os.PathLike | None = None,
                 test_fraction: float | None = None, split_seed: int | None = None,
                 flips: tuple[str, ...] | None = None, fill: str | None = None) -> Dataset:
    """Load a registered dataset by name, or a ``.npz`` file, an image folder or a table by path.

    The other options go to the loader of that source (:func:`load_npz`,
    :func:`~regularkit.data.images.load_image_folder`,
    :func:`~regularkit.data.tables.load_table`; ``split_seed`` is their
    ``seed``); one that does not apply to it is an error, not ignored.
    ``data_dir`` is only used by the registered datasets read from files (``USES_DATA_DIR``); given
    with anything else it is refused, not ignored.  ``limit_train`` keeps a
    stratified subset of that many training samples, drawn with ``seed`` (for
    fast studies); the test set is never subsampled.
    """
    seed = check_int("seed", seed, minimum=0)
    kind = _source_kind(name_or_path)
    options = dict(layout=layout, image_size=image_size, grayscale=grayscale, target=target,
                   test_path=test_path, test_fraction=test_fraction, split_seed=split_seed,
                   flips=flips, fill=fill)
    given = {k: v for k, v in options.items() if v is not None}
    if kind == "table" and target is None:
        raise RegularkitError(f"{name_or_path}: a table needs target=, the name of the column that holds the class")
    called, takes = _SOURCES[kind]
    extra = [k for k in given if k not in takes]
    if extra:
        raise RegularkitError(f"{name_or_path}: {', '.join(extra)} does not apply to {called}; "
                              f"it takes {', '.join(takes) or 'no options besides data_dir'}")
    if data_dir is not None and name_or_path not in USES_DATA_DIR:
        raise RegularkitError(f"{name_or_path}: data_dir does not apply to "
                              f"{called if kind != 'name' else 'a dataset bundled with regularkit'} (it is where the "
                              f"{' and '.join(USES_DATA_DIR)} files are), got {str(data_dir)!r}")
    if "split_seed" in given:
        given["seed"] = given.pop("split_seed")
    if kind == "name":
        dataset = DATASETS[name_or_path](data_dir=data_dir)
    elif kind == "npz":
        dataset = load_npz(name_or_path, **given)
    elif kind == "image folder":
        dataset = load_image_folder(name_or_path, **given)
    else:
        dataset = load_table(name_or_path, **given)
    if limit_train is not None:
        dataset = limit_train_set(dataset, limit_train, seed=seed)
    return dataset
