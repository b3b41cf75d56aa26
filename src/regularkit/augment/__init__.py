"""Batched data augmentation with per-sample parameters, on any device, any batch size.

Contract (see :mod:`regularkit.augment.base`)::

    params = op.make_params(x, generator)   # all randomness, one draw per sample
    x, y = op.apply(x, y, params)           # deterministic
    x, y = op(x, y, generator=None)         # both: the batch transform of a training loop

Ops: geometric (:class:`HorizontalFlip`, :class:`VerticalFlip`, :class:`RandomCrop`,
:class:`RandomAffine`, :class:`RandomScaleCrop`), photometric
(:class:`ColorJitter`, :class:`PCAColor`), erasing (:class:`Cutout`,
:class:`RandomErasing`), mixing (:class:`MixUp`, :class:`CutMix`, :class:`MixUpCutMix`), noise
(:class:`RandomGaussianNoise`), pipelines (:class:`Compose`, :class:`OneOf`) and
Keras' :class:`ImageDataGenerator`.  Each has a pure kernel beside it
(``hflip``, ``crop``, ``affine``, ``color_jitter``, ``erase``, ``mixup``, ``cutmix``).
"""
from regularkit.augment.affine import RandomAffine, RandomScaleCrop, affine, affine_matrix, identity_matrix
from regularkit.augment.base import Augmentation, check_images, check_targets
from regularkit.augment.compose import Compose, OneOf
from regularkit.augment.erase import Cutout, RandomErasing, box_mask, erase
from regularkit.augment.geometric import HorizontalFlip, RandomCrop, VerticalFlip, crop, hflip, vflip
from regularkit.augment.keras_compat import Flow, ImageDataGenerator
from regularkit.augment.mix import CutMix, MixUp, MixUpCutMix, cutmix, cutmix_box, mix_targets, mixup, partner_index
from regularkit.augment.noise import RandomGaussianNoise
from regularkit.augment.photometric import ColorJitter, PCAColor, color_jitter
from regularkit.augment.tta import TTA, tta_views
from regularkit.targets import to_soft_targets

__all__ = [
    "Augmentation", "ColorJitter", "Compose", "CutMix", "Cutout", "Flow", "HorizontalFlip",
    "ImageDataGenerator", "MixUp", "MixUpCutMix", "OneOf", "PCAColor", "RandomAffine", "RandomCrop", "RandomErasing",
    "RandomGaussianNoise", "RandomScaleCrop", "TTA", "tta_views", "VerticalFlip", "affine", "affine_matrix",
    "box_mask", "check_images", "check_targets",
    "color_jitter", "crop", "cutmix", "cutmix_box", "erase", "hflip", "identity_matrix", "mix_targets", "mixup",
    "partner_index", "to_soft_targets", "vflip",
]
