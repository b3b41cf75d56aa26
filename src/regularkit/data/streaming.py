"""Samples read on demand: a split whose memory is bounded by a batch, not by the dataset.

A :class:`Streamed` split is a *source* (anything with ``len``, ``sample_shape``,
``describe`` and ``read(i) -> float32 array``: the files of an image folder,
:class:`~regularkit.data.images.ImageFiles`, decoded by Pillow; the items of a
torch Dataset, :class:`~regularkit.data.arrays.TorchItems`) and the indices of the
samples it holds.  Indexing it with a slice or indices gives another view (no
decoding); :meth:`Streamed.batches` decodes the batches it is asked for through a
``torch.utils.data.DataLoader`` with ``num_workers`` processes (pinned memory when
the batches go to a GPU), in exactly the order asked, so ``fit`` on a streamed split
and on the same split in memory see the same batches and give the same numbers
(the seeded permutation is drawn in the training process, as for tensors:
:mod:`regularkit.train.loop`).

What needs every sample at once is explicit: :meth:`Streamed.load` (and ``to``,
for code written for tensors) decodes the whole view into one tensor after the one
memory refusal (:func:`~regularkit._util.memory.check_fits`); a torch function
given a streamed split (``torch.cat``, a statistic over the training set) is
refused in one line naming the split, never a silent copy.  Statistics of the
whole training set are computed in one streamed pass where the study needs them
(the data digest: :func:`~regularkit.data.arrays.stream_torch`).

Differs from torchvision's ``ImageFolder`` + ``DataLoader(shuffle=True)`` on
purpose: the order is not the DataLoader's sampler (its own generator) but the
loop's ``torch.randperm(n, generator)``, the one order of the in-memory path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from regularkit._util.checks import check_int
from regularkit._util.memory import check_fits, gib
from regularkit.data.schema import Dataset, DatasetFacts, check_fill, check_flips
from regularkit.errors import RegularkitError

__all__ = ["EVAL_BATCH_BYTES", "Streamed", "StreamedDataset", "in_memory_bytes", "materialize", "resident_bytes"]


#: A streamed split is evaluated in batches of at most this many decoded bytes (and at most the
#: caller's batch size): 1,024 samples of 3×224×224 would be 0.6 GB, twice while collated.
EVAL_BATCH_BYTES = 32 * 2**20


def resident_bytes(x: Any) -> int:
    """Bytes ``x`` holds in memory: a tensor's or array's size; a streamed split holds only its indices."""
    if isinstance(x, Streamed):
        return int(x.indices.nbytes)
    return int(x.numel() * x.element_size()) if isinstance(x, torch.Tensor) else int(np.asarray(x).nbytes)


def in_memory_bytes(n: int, sample_shape: tuple[int, ...]) -> int:
    """Bytes of ``n`` float32 samples of ``sample_shape``: what a split would take decoded."""
    return 4 * n * int(np.prod(sample_shape, dtype=np.int64))


class _Items(torch.utils.data.Dataset):
    """``source.read(i)`` as a map-style Dataset; a refusal is returned as its message (one line in the parent)."""

    def __init__(self, source) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int):
        try:
            return self.source.read(int(i))
        except RegularkitError as exc:  # raised in the parent, not wrapped in a worker's traceback
            return str(exc)


def _collate(items: list) -> torch.Tensor | str:
    refused = next((item for item in items if isinstance(item, str)), None)
    return refused if refused is not None else torch.from_numpy(np.stack(items))


class Streamed:
    """The samples ``indices`` of ``source``, decoded batch by batch (see the module docstring).

    Tensor-like where it is cheap: ``len``, ``shape``, ``dim()``, ``ndim``, ``dtype``
    (float32), ``device`` (cpu), ``numel()`` and ``element_size()`` (of the decoded view);
    ``x[a:b]`` and ``x[indices]`` are views; ``split(n)`` yields decoded chunks of ``n``
    samples; ``to(...)`` and :meth:`load` decode everything (refused when it cannot fit).
    ``num_workers`` loader processes decode in parallel (0: in this process).
    """

    dtype = torch.float32
    device = torch.device("cpu")

    def __init__(self, source, indices=None, *, num_workers: int = 0) -> None:
        self.source = source
        n = len(source)
        self.indices = np.arange(n, dtype=np.int64) if indices is None else np.asarray(indices, np.int64).reshape(-1)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= n):
            raise RegularkitError(f"{source.describe()}: indices must be in [0, {n}), got {self.indices.min()}.."
                                  f"{self.indices.max()}")
        self.num_workers = check_int("num_workers", num_workers, minimum=0)

    # --- tensor-like, no decoding -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.indices), *self.source.sample_shape))

    @property
    def ndim(self) -> int:
        return 1 + len(self.source.sample_shape)

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        """Elements of the decoded view (what :meth:`load` would hold; :func:`resident_bytes` is what it holds)."""
        return int(np.prod(self.shape, dtype=np.int64))

    def element_size(self) -> int:
        return 4  # float32 once decoded

    def __getitem__(self, key) -> "Streamed":
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        if isinstance(key, (int, np.integer)):
            raise RegularkitError(f"{self.describe()}: index with a slice or indices (a view), or decode with "
                                  f"load(); got the integer {key}")
        return Streamed(self.source, self.indices[key], num_workers=self.num_workers)

    def eval_batch(self, batch_size: int) -> int:
        """``batch_size``, or fewer samples where that many would decode to more than :data:`EVAL_BATCH_BYTES`."""
        return max(1, min(batch_size, EVAL_BATCH_BYTES // in_memory_bytes(1, self.source.sample_shape)))

    def with_workers(self, num_workers: int) -> "Streamed":
        """The same view, decoded by ``num_workers`` loader processes."""
        return Streamed(self.source, self.indices, num_workers=num_workers)

    def describe(self) -> str:
        return f"{self.source.describe()} ({len(self):,} samples streamed)"

    def __repr__(self) -> str:
        return f"Streamed({self.describe()}, shape={tuple(self.shape)})"

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        given = [*args, *(kwargs or {}).values()]
        given += [b for a in given if isinstance(a, (list, tuple)) for b in a]  # torch.cat([x, y])
        x = next((a for a in given if isinstance(a, Streamed)), None)
        what = x.describe() if x is not None else "a streamed split"
        size = f" ({gib(in_memory_bytes(len(x), x.source.sample_shape))} decoded)" if x is not None else ""
        raise RegularkitError(f"torch.{getattr(func, '__name__', func)} needs every sample of {what} in memory"
                              f"{size}; compute it batch by batch (x.batches, x.split), or load the data in "
                              f"memory (--stream off)")

    # --- decoding ------------------------------------------------------------------------------------------
    def batches(self, chunks: Iterable, *, pin_memory: bool = False) -> Iterator[torch.Tensor]:
        """Decoded float32 batches, one per chunk of positions into this view, in the order given."""
        chunks = [np.asarray(c.cpu() if isinstance(c, torch.Tensor) else c, np.int64) for c in chunks]
        # A private generator: DataLoader draws its workers' base seed from it, never from the global RNG
        # (which dropout in the training loop draws from: the in-memory path's masks stay the same).
        loader = DataLoader(_Items(self.source), batch_sampler=[self.indices[c].tolist() for c in chunks],
                            num_workers=self.num_workers, collate_fn=_collate, pin_memory=pin_memory,
                            generator=torch.Generator().manual_seed(0))
        for batch in loader:
            if isinstance(batch, str):
                raise RegularkitError(batch)
            yield batch

    def split(self, size: int) -> Iterator[torch.Tensor]:
        """Decoded chunks of ``size`` samples in order (``torch.Tensor.split``'s use: batch by batch)."""
        size = check_int("size", size, minimum=1)
        yield from self.batches(np.arange(len(self)).reshape(-1)[i:i + size] for i in range(0, len(self), size))

    def load(self) -> torch.Tensor:
        """Every sample of this view, decoded into one tensor (refused when it cannot fit)."""
        check_fits(in_memory_bytes(len(self), self.source.sample_shape), self.describe(),
                   "stream it batch by batch instead (x.batches(...))")
        return torch.cat(list(self.split(1024))) if len(self) else torch.zeros(tuple(self.shape))

    def to(self, *args, **kwargs) -> torch.Tensor:
        """:meth:`load`, then ``Tensor.to`` (for code written for tensors; refused when it cannot fit)."""
        return self.load().to(*args, **kwargs)


@dataclass(frozen=True, eq=False)
class StreamedDataset(DatasetFacts):
    """A classification dataset whose samples stay on disk: :class:`Streamed` ``x``, labels in memory.

    The fields and properties of :class:`~regularkit.data.schema.Dataset` (``kind``,
    ``input_shape``, ``task``), so the splits and the study take either; labels are
    checked as there (int64, in range, every test class seen in training).
    ``in_memory`` is what the dataset would take decoded, for the study's choice.
    """

    name: str
    x_train: Streamed
    y_train: np.ndarray
    x_test: Streamed
    y_test: np.ndarray
    num_classes: int
    classes: tuple[str, ...] | None = None
    layout: str | None = None
    flips: tuple[str, ...] | None = None
    fill: str | None = None
    sources: dict | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if not isinstance(x, Streamed) or not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
                raise RegularkitError(f"{self.name}: x_{part} must be Streamed and y_{part} int64 labels (N,)")
            if len(x) != len(y):
                raise RegularkitError(f"{self.name}: x_{part} has {len(x)} samples but y_{part} has {len(y)}")
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise RegularkitError(f"{self.name}: y_{part} holds label {y.min() if y.min() < 0 else y.max()}, "
                                      f"outside [0, {self.num_classes})")
        unseen = np.setdiff1d(self.y_test, self.y_train)
        if unseen.size:
            raise RegularkitError(f"{self.name}: y_test holds label {unseen[0]}, which y_train never has")
        object.__setattr__(self, "flips", check_flips(self.flips, self.kind, self.name))
        object.__setattr__(self, "fill", check_fill(self.fill, self.kind, self.name))
        for y in (self.y_train, self.y_test):
            y.setflags(write=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.source.sample_shape)

    @property
    def in_memory(self) -> int:
        """Bytes the train and test samples would take decoded (float32)."""
        return in_memory_bytes(len(self.y_train) + len(self.y_test), self.input_shape)

    def __repr__(self) -> str:
        return (f"StreamedDataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def materialize(dataset: StreamedDataset, what: str, hint: str) -> Dataset:
    """The in-memory :class:`~regularkit.data.schema.Dataset` of ``dataset``: every sample decoded once.

    Refused in one line naming ``what`` (with ``hint``) when the decoded samples cannot fit,
    counted twice: the decoded chunks and their concatenation are both alive at the peak.
    """
    check_fits(2 * dataset.in_memory, what, hint)
    return Dataset(dataset.name, dataset.x_train.load().numpy(), dataset.y_train.copy(),
                   dataset.x_test.load().numpy(), dataset.y_test.copy(), num_classes=dataset.num_classes,
                   classes=dataset.classes, layout=dataset.layout, flips=dataset.flips, fill=dataset.fill,
                   sources=dataset.sources)
