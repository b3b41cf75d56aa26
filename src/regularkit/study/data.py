"""The study's data: load what the user has, carve the seeded splits, and name the content by a digest.

``--data`` is a registered name (digits, fashion-mnist), a ``.npz`` file, an
image folder, or a CSV / Parquet table; from Python, ``run_study(cfg, data=...)``
also takes a :class:`~regularkit.data.Dataset`, arrays ``(x_train, y_train[,
x_test, y_test])`` or torch Datasets (``train`` or ``(train, test)``).  The
validation split is carved from the training set (seeded, stratified, the same
for every seed: seeds vary training only); ``train_size`` keeps a stratified
subset of the rest.

The digest names the data's *content*: a file's or folder's bytes (cached by
their stat identity, ctime included: :mod:`~regularkit._util.digest`) plus the loading options, or the arrays
themselves.  It enters every run key, so a file changed in place makes new
runs, never a reused result.

Streaming (``--stream``, :mod:`~regularkit.data.streaming`): an image folder or torch
Datasets may stay where they are, each batch decoded when training asks for it, so the
study's memory is bounded by a batch.  ``auto`` (the default) streams when the decoded
samples would not fit (:func:`stream_reason`: ``max(2, workers)`` copies against
:data:`~regularkit._util.memory.MEMORY_SHARE` of the memory available to this process,
``ulimit -v`` and the cgroup's limit included); ``on`` always, ``off`` never (then data
that cannot fit is refused in one line, as before).  A streamed split gives the numbers
its tensors give (same order, same batches), so the run keys do not name it; an image
folder's digest is its files' either way, a streamed torch Dataset's comes from the one
pass that reads its labels (``stream:``, not ``arrays:``: other keys than in memory).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from regularkit._util import memory
from regularkit._util.digest import arrays_digest, path_digest
from regularkit.data import Dataset, load_dataset
from regularkit.data.arrays import from_arrays, from_torch, stream_torch, torch_bytes
from regularkit.data.images import decode_image_folder, stream_image_folder
from regularkit.data.streaming import StreamedDataset, in_memory_bytes
from regularkit.data.sampling import stratified_subset
from regularkit.data.splits import Splits, make_splits, make_splits_from_indices
from regularkit.errors import RegularkitError
from regularkit.study.applicability import describe_data
from regularkit.study.config import StudyConfig
from regularkit.study.task import check_task, load_regression, split_regression

__all__ = ["StudyData", "load_data", "prepare_data", "split_data"]


@dataclass(frozen=True, eq=False)
class StudyData:
    """The dataset, its splits, its content digest, and how to describe it."""

    dataset: Dataset
    splits: Splits
    digest: str
    train_size: int | None = None   # the train_size asked for, when more than the split left (all are used)
    val_capped: bool = False        # validation kept in proportion to train_size (StudyConfig.val_count)
    streamed: str = ""              # why the samples are read per batch ("": held in memory)

    @property
    def kind(self) -> str:
        return self.dataset.kind

    @property
    def description(self) -> str:
        s = self.splits
        asked = "" if self.train_size is None else f" (all of them; train_size {self.train_size} asked for more)"
        val = f"{len(s.y_val)} val" + (" (in proportion to train_size; --val-size sets it)" if self.val_capped else "")
        if s.regression is not None:
            return (f"{self.dataset.name}: {describe_data(self.kind, tuple(s.input_shape))}, "
                    f"{len(s.regression.names)} target(s) {', '.join(s.regression.names)} (regression), "
                    f"{len(s.y_train)} train{asked} / {val} / {len(s.y_test)} test")
        streamed = f"; streamed from disk ({self.streamed})" if self.streamed else ""
        return (f"{self.dataset.name}: {describe_data(self.kind, tuple(s.input_shape))}, {s.num_classes} classes, "
                f"{len(s.y_train)} train{asked} / {val} / {len(s.y_test)} test{streamed}")


def loader_workers(cfg: StudyConfig) -> int:
    """DataLoader processes that decode a streamed split: the cores a study worker leaves, at most 4."""
    return max(0, min(4, (os.cpu_count() or 1) // (cfg.workers or 1) - 1))


def stream_reason(cfg: StudyConfig, nbytes: int, sample_bytes: int) -> str:
    """Why samples taking ``nbytes`` decoded (``sample_bytes`` each) are streamed, or ``""`` to hold them in
    memory (``--stream``).

    In memory they are decoded once (two copies at the peak) and every worker holds its own.  Streamed,
    a training batch is held about four times (decoded, collated, two prefetched): ``auto`` does not stream
    when not even that fits (the in-memory refusal then says what to change), ``on`` refuses it.
    """
    if cfg.stream == "off":
        return ""
    batch, available = 4 * cfg.batch_size * sample_bytes, memory.available_memory()
    if cfg.stream == "on":
        memory.check_fits(batch, f"a streamed batch ({cfg.batch_size} samples of {memory.gib(sample_bytes)}, held "
                          "four times: decoded, collated, prefetched)", "pass a smaller --image-size or --batch-size")
        return "--stream on"
    need = max(2, cfg.workers or 1) * nbytes
    if need <= memory.MEMORY_SHARE * available or batch > memory.MEMORY_SHARE * available:
        return ""
    return (f"decoded they would need {memory.gib(need)}, more than {memory.MEMORY_SHARE:.0%} of the "
            f"{memory.gib(available)} available; --stream off to refuse instead")


def _loader_options(cfg: StudyConfig) -> dict[str, Any]:
    size = cfg.image_size
    options = {"image_size": (size[0] if len(size) == 1 else tuple(size)) if size else None,
               "target": cfg.target, "layout": cfg.layout, "test_fraction": cfg.test_fraction,
               "test_path": cfg.test_data}
    return {k: v for k, v in options.items() if v is not None}


def load_data(cfg: StudyConfig, data: Any = None) -> tuple[Dataset, str]:
    """The dataset ``cfg.data`` names (or ``data`` from Python) and its content digest."""
    if data is None:
        options = _loader_options(cfg)
        if options.get("test_fraction") is not None or Path(cfg.data).suffix.lower() in (".csv", ".parquet", ".pq") \
                or Path(cfg.data).is_dir():
            options.setdefault("split_seed", cfg.data_seed)
        dataset = load_regression(cfg)  # study/task.py: None unless the task is (or auto finds) regression
        if dataset is None and Path(cfg.data).is_dir() and cfg.stream != "off" and cfg.data_dir is None \
                and set(options) <= {"image_size", "test_fraction", "split_seed"}:
            dataset = _image_folder(cfg, options)
        if dataset is None:
            dataset = load_dataset(cfg.data, data_dir=cfg.data_dir, **options)
        if Path(cfg.data).exists():
            paths = [cfg.data] + ([cfg.test_data] if cfg.test_data else [])
            blob = json.dumps({k: str(v) for k, v in sorted(options.items())})
            return dataset, "files:" + arrays_digest([], *(path_digest(p) for p in paths), blob)
    else:
        dataset = load_regression(cfg, data)
        if dataset is None:
            dataset = _from_python(data, cfg)
    meta = json.dumps([dataset.num_classes, dataset.classes, dataset.kind])
    if isinstance(dataset, StreamedDataset):  # digested in the pass that read its labels
        return dataset, "stream:" + arrays_digest([dataset.y_train, dataset.y_test], dataset.sources["digest"], meta)
    parts = [dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test]
    return dataset, "arrays:" + arrays_digest(parts, meta)


def _image_folder(cfg: StudyConfig, options: dict[str, Any]) -> Dataset | StreamedDataset:
    """The image folder ``cfg.data``: headers read, then streamed or decoded (:func:`stream_reason`)."""
    streamed = stream_image_folder(cfg.data, image_size=options.get("image_size"), seed=options["split_seed"],
                                   test_fraction=options.get("test_fraction", 0.2), num_workers=loader_workers(cfg))
    streams = stream_reason(cfg, streamed.in_memory, in_memory_bytes(1, streamed.input_shape))
    return streamed if streams else decode_image_folder(streamed)


def _from_python(data: Any, cfg: StudyConfig) -> Dataset:
    options = {"layout": cfg.layout, "seed": cfg.data_seed}
    if cfg.test_fraction is not None:
        options["test_fraction"] = cfg.test_fraction
    options = {k: v for k, v in options.items() if v is not None}
    if isinstance(data, Dataset):
        return data
    if isinstance(data, torch.utils.data.Dataset):
        data = (data,)
    if isinstance(data, (tuple, list)) and len(data) in (1, 2) and all(isinstance(d, torch.utils.data.Dataset)
                                                                       for d in data):
        nbytes = torch_bytes(*data, layout=cfg.layout) if cfg.stream != "off" else 0
        if nbytes and stream_reason(cfg, nbytes, nbytes // sum(len(d) for d in data)):
            return stream_torch(*data, **options, num_workers=loader_workers(cfg))
        return from_torch(*data, **options)
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        return from_arrays(*data, **options)
    raise RegularkitError(f"data must be a regularkit Dataset, a torch Dataset (or a (train, test) pair of them), "
                          f"or arrays (x_train, y_train[, x_test, y_test]); got {type(data).__name__}")


def split_data(dataset: Dataset, cfg: StudyConfig) -> Splits:
    """Validation carved from training (seeded, stratified; random for regression; its size by
    :meth:`StudyConfig.val_count`), then the ``train_size`` subset of the rest.

    A ``train_size`` above the training examples the data has is refused (``--train-size 10**12`` is a
    typo, not a request); one above what is left after the validation split uses all of them, and the
    data's description says so.
    """
    if cfg.train_size is not None and cfg.train_size > len(dataset.y_train):
        raise RegularkitError(f"train_size {cfg.train_size} is more than the {len(dataset.y_train):,} training "
                              f"examples of {dataset.name}; leave it out to train on all of them")
    if dataset.task == "regression":
        return split_regression(dataset, cfg)
    n_val = _val_size(cfg, len(dataset.y_train))
    splits = make_splits(dataset, val_fraction=None if n_val else cfg.val_fraction, val_size=n_val,
                         seed=cfg.data_seed)
    size = cfg.effective_train_size()
    if size is not None and size < len(splits.train_idx):
        keep = stratified_subset(dataset.y_train[splits.train_idx], size, seed=cfg.data_seed)
        splits = make_splits_from_indices(dataset, splits.train_idx[keep], splits.val_idx)
    return splits


def _val_size(cfg: StudyConfig, pool: int) -> int | None:
    """``cfg.val_count(pool)`` with a ``--val-size`` that leaves too few training examples refused."""
    n_val = cfg.val_count(pool)
    if cfg.val_size is not None and n_val >= pool - 1:
        raise RegularkitError(f"val_size {cfg.val_size} leaves fewer than 2 of the {pool:,} training examples to "
                              "train on; choose a smaller --val-size")
    return n_val


def prepare_data(cfg: StudyConfig, data: Any = None) -> StudyData:
    """Load, split and digest: everything the study needs to know about its data, nothing written."""
    dataset, digest = load_data(cfg, data)
    check_task(cfg, dataset)
    if dataset.kind != "images" and cfg.model in ("cnn", "resnet"):
        raise RegularkitError(f"--model {cfg.model} needs images (C x H x W) and {dataset.name} holds "
                              f"{describe_data(dataset.kind, dataset.input_shape)}; use --model mlp or your own "
                              "--model file.py:build")
    splits = split_data(dataset, cfg)
    short = cfg.train_size is not None and cfg.train_size > len(splits.y_train)
    capped = cfg.val_size is None and cfg.val_count(len(dataset.y_train)) is not None
    streamed = ""
    if isinstance(dataset, StreamedDataset):  # the memory may have grown since loading: the choice stands
        sample = in_memory_bytes(1, dataset.input_shape)
        streamed = stream_reason(cfg, dataset.in_memory, sample) or "it did not fit in the memory available when loaded"
    return StudyData(dataset=dataset, splits=splits, digest=digest, train_size=cfg.train_size if short else None,
                     val_capped=capped, streamed=streamed)


def split_record(study_data: StudyData) -> dict[str, Any]:
    """What the study saves about its data: digest, shapes, the split indices, the loader's sources."""
    s = study_data.splits
    return {"name": study_data.dataset.name, "digest": study_data.digest, "kind": study_data.kind,
            "input_shape": list(s.input_shape), "num_classes": s.num_classes, "classes": s.classes,
            "flips": study_data.dataset.flips, "fill": study_data.dataset.fill,
            "train_idx": np.asarray(s.train_idx).tolist(), "val_idx": np.asarray(s.val_idx).tolist(),
            "n_test": len(s.y_test), "sources": study_data.dataset.sources,
            **({} if s.regression is None else s.regression.record())}
