"""Data already in memory as a Dataset: arrays, tensors or lists (``from_arrays``), torch Datasets (``from_torch``).

The arrays go through the same checks as a ``.npz`` file
(:func:`~regularkit.data.schema.as_features`, :func:`~regularkit.data.schema.as_labels`):
uint8 scaled by 1/255, N×H×W grey images given a channel unless
``layout="sequences"``, NaN and inf refused with their count, integer labels
only (floats are refused even when every value is whole).  Without a test
set a seeded, stratified ``test_fraction`` is held out and the indices of
both parts are recorded in ``sources``, so a study can save which samples
tested it.  ``from_torch`` reads a map-style ``torch.utils.data.Dataset``
once, item by item (``dataset[i]`` for ``i < len(dataset)``), without a
DataLoader: no workers, no collation, no shuffling to reproduce.

``stream_torch`` keeps the samples in the torch Dataset instead: one pass reads the
labels, checks every item (each sample through the same ``as_features`` as an array,
as a batch of one) and digests the content; afterwards a batch reads its items when
it is asked for (:class:`TorchItems`, through a DataLoader with ``num_workers``:
:mod:`~regularkit.data.streaming`).  A random transform in the Dataset is then drawn
at every read, as torch does; the digest pass saw one draw of it.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch

from regularkit._util.checks import check_int
from regularkit.data.sampling import split_off_test
from regularkit.data.schema import Dataset, as_features, as_labels, inferred_num_classes
from regularkit.data.streaming import Streamed, StreamedDataset
from regularkit.errors import RegularkitError

__all__ = ["from_arrays", "from_torch", "stream_torch", "torch_bytes", "TorchItems"]


def _to_numpy(what: str, value, source: str) -> np.ndarray:
    """A NumPy array, a tensor (any device; half and bfloat16 cast to float32) or a list, as an array."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
            tensor = tensor.float()  # NumPy has no bfloat16
        return tensor.numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value)
        except ValueError:
            raise RegularkitError(f"{source}: {what} is a ragged list (its items differ in shape)") from None
    raise RegularkitError(f"{source}: {what} must be a NumPy array, a torch tensor or a list, "
                          f"got {type(value).__name__}")


def _class_names(classes, source: str) -> tuple[str, ...] | None:
    if classes is None:
        return None
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise RegularkitError(f"{source}: classes must be a list or tuple of strings, got {classes!r}")
    return tuple(classes)


def from_arrays(x_train, y_train, x_test=None, y_test=None, *, name: str = "arrays",
                num_classes: int | None = None, classes=None, layout: str | None = None,
                test_fraction: float = 0.2, seed: int = 0, flips=None, fill: str | None = None) -> Dataset:
    """A Dataset from arrays: given test arrays, or a seeded, stratified ``test_fraction`` of the training ones.

    ``num_classes`` defaults to ``len(classes)``, else the largest label + 1 when the labels are
    0..k-1 (labels with a gap are refused: :func:`~regularkit.data.schema.inferred_num_classes`).
    Refused: a single class in ``y_train``, a label ``>= num_classes``, a test
    label never seen in training.  ``name`` starts every error message.
    """
    if not isinstance(name, str) or not name:
        raise RegularkitError(f"name must be a non-empty string, got {name!r}")
    if (x_test is None) != (y_test is None):
        raise RegularkitError(f"{name}: give x_test and y_test together, or neither "
                              f"(got only {'x_test' if y_test is None else 'y_test'})")
    seed = check_int("seed", seed, minimum=0)
    names = _class_names(classes, name)
    xs = {"x_train": x_train} if x_test is None else {"x_train": x_train, "x_test": x_test}
    ys = {"y_train": y_train} if y_test is None else {"y_train": y_train, "y_test": y_test}
    x, y, kind = {}, {}, None
    for (xk, xv), (yk, yv) in zip(xs.items(), ys.items()):
        x[xk], kind = as_features(xk, _to_numpy(xk, xv, name), source=name, layout=layout)
        y[yk] = as_labels(yk, _to_numpy(yk, yv, name), len(x[xk]), source=name)
    if "x_test" in x and x["x_train"].shape[1:] != x["x_test"].shape[1:]:
        raise RegularkitError(f"{name}: x_train samples have shape {x['x_train'].shape[1:]} "
                              f"but x_test samples {x['x_test'].shape[1:]}")
    seen = np.unique(y["y_train"])
    if len(seen) < 2:
        raise RegularkitError(f"{name}: y_train holds a single class ({seen[0]}); a classifier needs at least 2")
    top = int(max(v.max() for v in y.values()))
    if num_classes is None:
        num_classes = len(names) if names is not None else inferred_num_classes(name, *y.values())
    num_classes = check_int("num_classes", num_classes, minimum=2)
    if top >= num_classes:
        raise RegularkitError(f"{name}: label {top} is out of range for num_classes={num_classes}")
    if "y_test" in y:
        unseen = np.setdiff1d(y["y_test"], seen)
        if unseen.size:
            shown = f"{unseen[0]}" + (f" ({names[unseen[0]]!r})" if names is not None else "")
            raise RegularkitError(f"{name}: y_test holds label {shown}, never seen in y_train")
        parts = (x["x_train"], y["y_train"], x["x_test"], y["y_test"])
        sources = {"loader": "arrays", "split": "given"}
    else:
        train_idx, test_idx = split_off_test(y["y_train"], test_fraction, seed=seed, classes=names)
        parts = (x["x_train"][train_idx], y["y_train"][train_idx], x["x_train"][test_idx], y["y_train"][test_idx])
        sources = {"loader": "arrays", "split": "seeded", "test_fraction": test_fraction, "seed": seed,
                   "train_indices": train_idx.tolist(), "test_indices": test_idx.tolist()}
    return Dataset(name, *parts, num_classes=num_classes, classes=names, layout=kind, flips=flips, fill=fill,
                   sources=sources)


def _label(value, where: str, source: str) -> int:
    """A label from a dataset item: a Python or NumPy integer, or a 0-d integer tensor or array."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        value = value.item()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "a float" if isinstance(value, float) else type(value).__name__
        raise RegularkitError(f"{source}: {where} has label {value!r}, {kind}; labels must be integers")
    return value


def _length(what: str, dataset, source: str) -> int:
    try:
        n = len(dataset)
    except TypeError:
        raise RegularkitError(f"{source}: {what} must be a map-style torch Dataset (with __len__ and "
                              f"__getitem__), got {type(dataset).__name__}") from None
    if n == 0:
        raise RegularkitError(f"{source}: {what} is empty")
    return n


def _item(what: str, dataset, i: int, source: str):
    """``dataset[i]`` checked: an ``(x, y)`` pair with a tensor or array ``x`` (returned as NumPy)."""
    item = dataset[i]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise RegularkitError(f"{source}: {what}[{i}] must be an (x, y) pair, got {type(item).__name__}"
                              + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else ""))
    sample, label = item
    if not isinstance(sample, (torch.Tensor, np.ndarray)):
        raise RegularkitError(f"{source}: {what}[{i}] has x of type {type(sample).__name__}; expected a "
                              "tensor or an array (for PIL images, add torchvision's ToTensor or PILToTensor)")
    return _to_numpy("x", sample, source), label


def _materialize(what: str, dataset, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Every ``(x, y)`` item of ``dataset``, read once in index order, as stacked arrays."""
    xs, ys = [], []
    for i in range(_length(what, dataset, source)):
        sample, label = _item(what, dataset, i, source)
        xs.append(sample)
        if xs[-1].shape != xs[0].shape:
            raise RegularkitError(f"{source}: {what}[{i}] has x of shape {xs[-1].shape} but {what}[0] "
                                  f"has {xs[0].shape}")
        ys.append(_label(label, f"{what}[{i}]", source))
    return np.stack(xs), np.asarray(ys, np.int64)


class TorchItems:
    """The ``x`` of a torch Dataset's items as a streaming source: ``read(i)`` is ``dataset[i]``'s ``x``,
    converted as :func:`from_torch` converts it (``as_features`` on a batch of one)."""

    def __init__(self, dataset, what: str, source: str, layout: str | None, sample_shape: tuple[int, ...]) -> None:
        self.dataset, self.what, self.source, self.layout = dataset, what, source, layout
        self.sample_shape = sample_shape

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, i: int) -> np.ndarray:
        raw, _ = _item(self.what, self.dataset, i, self.source)
        x = as_features(f"{self.what}[{i}]", raw[None], source=self.source, layout=self.layout)[0][0]
        if x.shape != self.sample_shape:
            raise RegularkitError(f"{self.source}: {self.what}[{i}] has x of shape {x.shape} but {self.what}[0] "
                                  f"has {self.sample_shape}")
        return x

    def describe(self) -> str:
        return f"{self.source}: torch Dataset {self.what!r}"


def _scan(what: str, dataset, source: str, layout, h) -> tuple[TorchItems, np.ndarray, str]:
    """One pass over ``dataset``: every item checked and converted, the content digested; the labels."""
    n = _length(what, dataset, source)
    labels, shape, kind = [], None, layout
    for i in range(n):
        raw, label = _item(what, dataset, i, source)
        x, kind = as_features(f"{what}[{i}]", raw[None], source=source, layout=layout)
        if shape is None:
            shape = x.shape[1:]
        elif x.shape[1:] != shape:
            raise RegularkitError(f"{source}: {what}[{i}] has x of shape {x.shape[1:]} but {what}[0] has {shape}")
        labels.append(_label(label, f"{what}[{i}]", source))
        h.update(memoryview(np.ascontiguousarray(x)).cast("B"))
    y = as_labels(f"y_{what}", np.asarray(labels), n, source=source)
    h.update(f"{what}{shape}".encode() + y.tobytes())
    return TorchItems(dataset, what, source, layout, shape), y, kind


def torch_bytes(*datasets, layout: str | None = None, name: str = "torch") -> int:
    """Bytes the samples of ``datasets`` would take materialized (float32), from one item read of each:
    ``len(dataset)`` times its first sample's size, converted as :func:`from_torch` converts it."""
    total = 0
    for what, dataset in zip(("train", "test"), datasets):
        n = _length(what, dataset, name)
        raw, _ = _item(what, dataset, 0, name)
        total += n * as_features(f"{what}[0]", raw[None], source=name, layout=layout)[0].nbytes
    return total


def stream_torch(train, test=None, *, name: str = "torch", num_classes: int | None = None, classes=None,
                 layout: str | None = None, test_fraction: float = 0.2, seed: int = 0, flips=None,
                 fill: str | None = None, num_workers: int = 0) -> StreamedDataset:
    """:func:`from_torch`'s dataset with the samples left in the torch Datasets (see the module docstring).

    Checked as :func:`from_torch` checks (the items, the labels, the classes), in one
    pass that also digests the content: ``sources["digest"]`` (BLAKE2b of every converted
    sample and the labels), so a study can name the data without holding it.
    """
    if not isinstance(name, str) or not name:
        raise RegularkitError(f"name must be a non-empty string, got {name!r}")
    seed = check_int("seed", seed, minimum=0)
    names = _class_names(classes, name)
    h = hashlib.blake2b(digest_size=16)
    train_items, y_train, kind = _scan("train", train, name, layout, h)
    x_train = Streamed(train_items, num_workers=num_workers)
    if test is not None:
        test_items, y_test, _ = _scan("test", test, name, kind, h)
        if test_items.sample_shape != train_items.sample_shape:
            raise RegularkitError(f"{name}: train samples have shape {train_items.sample_shape} but test samples "
                                  f"{test_items.sample_shape}")
        x_test = Streamed(test_items, num_workers=num_workers)
        sources = {"loader": "torch", "split": "given"}
    else:
        train_idx, test_idx = split_off_test(y_train, test_fraction, seed=seed, classes=names)
        x_train, x_test, y_test, y_train = x_train[train_idx], x_train[test_idx], y_train[test_idx], y_train[train_idx]
        sources = {"loader": "torch", "split": "seeded", "test_fraction": test_fraction, "seed": seed,
                   "train_indices": train_idx.tolist(), "test_indices": test_idx.tolist()}
    seen = np.unique(y_train)
    if len(seen) < 2:
        raise RegularkitError(f"{name}: y_train holds a single class ({seen[0]}); a classifier needs at least 2")
    if num_classes is None:
        num_classes = len(names) if names is not None else inferred_num_classes(name, y_train, y_test)
    num_classes = check_int("num_classes", num_classes, minimum=2)
    top = int(max(y_train.max(), y_test.max()))
    if top >= num_classes:
        raise RegularkitError(f"{name}: label {top} is out of range for num_classes={num_classes}")
    return StreamedDataset(name, x_train, y_train, x_test, y_test, num_classes=num_classes, classes=names,
                           layout=kind, flips=flips, fill=fill, sources={**sources, "digest": h.hexdigest()})


def from_torch(train, test=None, *, name: str = "torch", num_classes: int | None = None, classes=None,
               layout: str | None = None, test_fraction: float = 0.2, seed: int = 0, flips=None,
               fill: str | None = None) -> Dataset:
    """A Dataset from torch Datasets whose items are ``(x, y)``: tensor or array ``x``, integer ``y``.

    Materialized once (the Dataset is arrays; a random transform in ``train``
    is drawn once, not per epoch), then checked by :func:`from_arrays`, which
    also holds out the test part when ``test`` is None.
    """
    x_train, y_train = _materialize("train", train, name)
    x_test, y_test = _materialize("test", test, name) if test is not None else (None, None)
    return from_arrays(x_train, y_train, x_test, y_test, name=name, num_classes=num_classes, classes=classes,
                       layout=layout, test_fraction=test_fraction, seed=seed, flips=flips, fill=fill)
