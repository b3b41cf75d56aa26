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
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from regularkit._util.digest import arrays_digest, path_digest
from regularkit.data import Dataset, load_dataset
from regularkit.data.arrays import from_arrays, from_torch
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

    @property
    def kind(self) -> str:
        return self.dataset.kind

    @property
    def description(self) -> str:
        s = self.splits
        asked = "" if self.train_size is None else f" (all of them; train_size {self.train_size} asked for more)"
        if s.regression is not None:
            return (f"{self.dataset.name}: {describe_data(self.kind, tuple(s.input_shape))}, "
                    f"{len(s.regression.names)} target(s) {', '.join(s.regression.names)} (regression), "
                    f"{len(s.y_train)} train{asked} / {len(s.y_val)} val / {len(s.y_test)} test")
        return (f"{self.dataset.name}: {describe_data(self.kind, tuple(s.input_shape))}, {s.num_classes} classes, "
                f"{len(s.y_train)} train{asked} / {len(s.y_val)} val / {len(s.y_test)} test")


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
    parts = [dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test]
    meta = json.dumps([dataset.num_classes, dataset.classes, dataset.kind])
    return dataset, "arrays:" + arrays_digest(parts, meta)


def _from_python(data: Any, cfg: StudyConfig) -> Dataset:
    options = {"layout": cfg.layout, "seed": cfg.data_seed}
    if cfg.test_fraction is not None:
        options["test_fraction"] = cfg.test_fraction
    options = {k: v for k, v in options.items() if v is not None}
    if isinstance(data, Dataset):
        return data
    if isinstance(data, torch.utils.data.Dataset):
        return from_torch(data, **options)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, torch.utils.data.Dataset)
                                                                  for d in data):
        return from_torch(data[0], data[1], **options)
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        return from_arrays(*data, **options)
    raise RegularkitError(f"data must be a regularkit Dataset, a torch Dataset (or a (train, test) pair of them), "
                          f"or arrays (x_train, y_train[, x_test, y_test]); got {type(data).__name__}")


def split_data(dataset: Dataset, cfg: StudyConfig) -> Splits:
    """Validation carved from training (seeded, stratified; random for regression), then the ``train_size``
    subset of the rest.

    A ``train_size`` above the training examples the data has is refused (``--train-size 10**12`` is a
    typo, not a request); one above what is left after the validation split uses all of them, and the
    data's description says so.
    """
    if cfg.train_size is not None and cfg.train_size > len(dataset.y_train):
        raise RegularkitError(f"train_size {cfg.train_size} is more than the {len(dataset.y_train):,} training "
                              f"examples of {dataset.name}; leave it out to train on all of them")
    if dataset.task == "regression":
        return split_regression(dataset, cfg)
    splits = make_splits(dataset, val_fraction=cfg.val_fraction, seed=cfg.data_seed)
    size = cfg.effective_train_size()
    if size is not None and size < len(splits.train_idx):
        keep = stratified_subset(dataset.y_train[splits.train_idx], size, seed=cfg.data_seed)
        splits = make_splits_from_indices(dataset, splits.train_idx[keep], splits.val_idx)
    return splits


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
    return StudyData(dataset=dataset, splits=splits, digest=digest, train_size=cfg.train_size if short else None)


def split_record(study_data: StudyData) -> dict[str, Any]:
    """What the study saves about its data: digest, shapes, the split indices, the loader's sources."""
    s = study_data.splits
    return {"name": study_data.dataset.name, "digest": study_data.digest, "kind": study_data.kind,
            "input_shape": list(s.input_shape), "num_classes": s.num_classes, "classes": s.classes,
            "flips": study_data.dataset.flips, "fill": study_data.dataset.fill,
            "train_idx": np.asarray(s.train_idx).tolist(), "val_idx": np.asarray(s.val_idx).tolist(),
            "n_test": len(s.y_test), "sources": study_data.dataset.sources,
            **({} if s.regression is None else s.regression.record())}
