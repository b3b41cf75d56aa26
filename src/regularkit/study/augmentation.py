"""Build a recipe's batch transform from its AugmentConfig (and input noise).

Order: geometric ops, then photometric, then erasing, then Gaussian input
noise, then mixing last -- mixing needs the final pixels of both partners, and
label smoothing is handed to the mixing op (smooth the one-hots, then mix) so
targets are never smoothed twice.
"""
from __future__ import annotations

from typing import Any, Callable

from regularkit.errors import RegularkitError
from regularkit.train.config import Recipe


def _pixels(fraction: float, side: int) -> int:
    return max(1, round(fraction * side))


def build_batch_transform(recipe: Recipe, splits) -> tuple[Callable | None, bool]:
    """``(transform, smooths_targets)``: the transform (or None), and whether it applies label smoothing."""
    a, reg = recipe.augment, recipe.reg
    if not a.active() and reg.input_noise == 0:
        return None, False
    from regularkit import augment as A
    shape = tuple(splits.input_shape)
    if a.active() and len(shape) != 3:
        raise RegularkitError(f"augmentation needs images C x H x W, got input shape {shape}")
    ops: list[Any] = []
    if a.active():
        side = min(shape[1:])
        if a.hflip:
            ops.append(A.HorizontalFlip())
        if a.crop_padding:
            ops.append(A.RandomCrop(padding=_pixels(a.crop_padding, side), padding_mode=a.padding_mode))
        if a.rotation or a.translate or a.shear or a.zoom:
            ops.append(A.RandomAffine(degrees=a.rotation, translate=a.translate, shear=a.shear,
                                      scale=(1 - a.zoom, 1 + a.zoom), fill_mode="nearest"))
        if a.pca_colour:
            ops.append(A.PCAColor(std=a.pca_colour).fit(splits.x_train, split="train"))
        if a.cutout:
            ops.append(A.Cutout(_pixels(a.cutout, side)))
        if a.erasing:
            ops.append(A.RandomErasing(p=a.erasing))
    if reg.input_noise:
        ops.append(A.GaussianNoise(std=reg.input_noise))
    k, ls = splits.num_classes, reg.label_smoothing
    if a.mixup_alpha and a.cutmix_alpha:
        ops.append(A.MixUpCutMix(a.mixup_alpha, a.cutmix_alpha, num_classes=k, label_smoothing=ls))
    elif a.mixup_alpha:
        ops.append(A.MixUp(a.mixup_alpha, num_classes=k, label_smoothing=ls))
    elif a.cutmix_alpha:
        ops.append(A.CutMix(a.cutmix_alpha, num_classes=k, label_smoothing=ls))
    smooths = bool(a.mixup_alpha or a.cutmix_alpha) and ls > 0
    return A.Compose(ops), smooths
