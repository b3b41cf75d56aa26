"""The run's augmentation: random flip + translate in training, flip/translate views at test.

Training (deck 004, "Horizontal flip", "Random crops"): each image is mirrored
left-right with probability 1/2 and shifted by up to ``translate`` pixels in
each direction, the border filled with the background (0): regularkit's
:class:`~regularkit.augment.HorizontalFlip` and
:class:`~regularkit.augment.RandomCrop` (``padding=translate``, same size
out), driven by the training loop's generator.  No vertical flips: an
upside-down ankle boot is no ankle boot (the dataset declares
``flips=("horizontal",)``).

Test (deck 002/004, "average a fixed set of transformations"; airbench's
``tta_level=2``): :class:`~regularkit.augment.TTA` averages the logits over
the image, its mirror, and both shifted diagonally by ``+-shift`` pixels
(six views, one concatenated batch).  The shift is
:func:`regularkit.augment.crop` at a fixed offset, the kernel ``RandomCrop``
uses, so a test view is exactly a training augmentation.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import nn

from regularkit.augment import TTA, Compose, HorizontalFlip, RandomCrop, crop
from regularkit.speedrun.config import SpeedrunConfig

__all__ = ["batch_transform", "shift", "views_at_test", "model_at_test"]

BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], "tuple[torch.Tensor, torch.Tensor]"]


def batch_transform(cfg: SpeedrunConfig) -> BatchTransform | None:
    """``(x, y, generator) -> (x, y)`` with the flips and translations ``cfg`` uses, or None for neither."""
    ops: list[nn.Module] = []
    if cfg.uses("flip"):
        ops.append(HorizontalFlip(p=0.5))
    if cfg.uses("translate") and cfg.translate > 0:
        ops.append(RandomCrop(padding=cfg.translate, padding_mode="constant", fill=0.0))
    if not ops:
        return None
    pipeline = Compose(ops)

    def transform(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        return pipeline(x, y, generator=generator)

    transform.pipeline = pipeline  # type: ignore[attr-defined]  (for tests and the record)
    return transform


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Move the content of every image ``dy`` pixels down and ``dx`` right, zeros coming in."""
    n, _, h, w = x.shape
    top = torch.full((n,), -dy, dtype=torch.long)
    left = torch.full((n,), -dx, dtype=torch.long)
    pad = (max(0, dx), max(0, dy), max(0, -dx), max(0, -dy))
    return crop(x, top, left, h, w, padding=pad, padding_mode="constant", fill=0.0)


def _flip_shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    return shift(x.flip(-1), dy, dx)


def views_at_test(cfg: SpeedrunConfig) -> list:
    """identity and mirror, plus both shifted by ``(+s, +s)`` and ``(-s, -s)`` when ``tta_shift = s > 0``."""
    views: list = ["identity", "hflip"]
    s = cfg.tta_shift
    if s > 0:
        for d in (s, -s):
            views += [partial(shift, dy=d, dx=d), partial(_flip_shift, dy=d, dx=d)]
    return views


def model_at_test(model: nn.Module, cfg: SpeedrunConfig) -> nn.Module:
    """What the test set is measured on: ``TTA(model)`` over :func:`views_at_test`, or ``model`` without TTA."""
    if not cfg.uses("tta"):
        return model
    return TTA(model, transforms=views_at_test(cfg), average="logits")
