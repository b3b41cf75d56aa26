"""Data: IDX files, datasets (digits, Fashion-MNIST, ``.npz``, image folders, tables, arrays), splits, downloads.

``load_dataset(name_or_path) -> Dataset`` (NumPy arrays), or ``from_arrays`` /
``from_torch`` for data in memory, then
``make_splits(dataset, val_fraction, seed) -> Splits`` (torch tensors).
Names are resolved on first use, so ``regularkit data download`` does not
pay for importing torch and scikit-learn.
"""
from __future__ import annotations

from regularkit._util.exports import lazy_exports

# Eager, and stdlib-only: the function must shadow its submodule's name, which the
# import system would otherwise bind here once ``regularkit.data.download`` loads.
# (The module itself stays reachable as ``sys.modules["regularkit.data.download"]``.)
from regularkit.data.download import download  # noqa: F401 - public, eager (see above)

# public name -> submodule that defines it
_EXPORTS = {
    "read_idx": "idx", "write_idx": "idx", "parse_idx": "idx", "encode_idx": "idx", "IDX_DTYPES": "idx",
    "Dataset": "schema", "LAYOUTS": "schema", "FLIPS": "schema", "FILLS": "schema",
    "load_dataset": "datasets", "load_digits": "datasets",
    "load_fashion_mnist": "datasets", "load_npz": "datasets", "limit_train_set": "datasets",
    "DATASETS": "datasets", "FASHION_MNIST_CLASSES": "datasets",
    "fashion_mnist_search_dirs": "datasets",
    "load_image_folder": "images", "IMAGE_SUFFIXES": "images", "stream_image_folder": "images",
    "decode_image_folder": "images", "stream_torch": "arrays", "Streamed": "streaming",
    "StreamedDataset": "streaming",
    "load_table": "tables", "TABLE_SUFFIXES": "tables",
    "from_arrays": "arrays", "from_torch": "arrays",
    "train_val_split": "sampling", "split_off_test": "sampling", "stratified_subset": "sampling",
    "kfold_indices": "sampling",
    "Splits": "splits", "make_splits": "splits", "make_splits_from_indices": "splits",
    "DOWNLOADS": "download", "default_data_root": "download", "md5sum": "download",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(set(_EXPORTS) | {"download"})
