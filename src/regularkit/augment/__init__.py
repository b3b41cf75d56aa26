"""Batched data augmentation with per-sample parameters, on any device, any batch size.

Contract (see :mod:`regularkit.augment.base`)::

    params = op.make_params(x, generator)   # all randomness, one draw per sample
    x, y = op.apply(x, y, params)           # deterministic, compiles without graph breaks
    x, y = op(x, y, generator=None)         # both: the batch transform of a training loop
    x = op(x)                               # an nn.Module: sits in nn.Sequential, the identity after .eval()

Every op takes ``seed=`` (rank 0's seed of its own generator), one image
C x H x W as well as a batch, uint8 images (computed in float32 and rounded
back where pixels are blended) and keeps ``channels_last``; MixUp and
RandomGaussianNoise take any batch N x ... (vectors, sequences).

Ops: geometric (:class:`HorizontalFlip`, :class:`VerticalFlip`, :class:`RandomCrop`,
:class:`RandomAffine`, :class:`RandomScaleCrop`), photometric
(:class:`ColorJitter`, :class:`PCAColor`), erasing (:class:`Cutout`,
:class:`RandomErasing`), mixing (:class:`MixUp`, :class:`CutMix`, :class:`MixUpCutMix`), noise
(:class:`RandomGaussianNoise`), policies (:class:`RandAugment`, :class:`TrivialAugmentWide`,
:class:`AutoAugment`, :class:`AugMix` with :func:`jsd_cross_entropy`), :class:`RandomResizedCrop`,
:class:`GaussianBlur`, pipelines (:class:`Compose`, :class:`OneOf`) and
Keras' :class:`ImageDataGenerator`.  Each has a pure kernel beside it
(``hflip``, ``crop``, ``affine``, ``color_jitter``, ``erase``, ``mixup``, ``cutmix``).

:data:`REGISTRY` names every op by the Keras-style snake case of its class name
(``"horizontal_flip"``, ``"mix_up"``, ``"image_data_generator"``); :func:`get`
builds one from a name or a ``{"class_name", "config"}`` dict.  :class:`TTA` is
a test-time model wrapper, not an augmentation, and is not registered.
"""

from regularkit._util.registry import build
from regularkit.augment.affine import RandomAffine, RandomScaleCrop, affine, affine_matrix, identity_matrix
from regularkit.augment.augmix import AugMix, JsdCrossEntropy, augmix_views, jsd_cross_entropy
from regularkit.augment.auto import AutoAugment, RandAugment, TrivialAugmentWide
from regularkit.augment.base import Augmentation, check_images, check_input, check_targets
from regularkit.augment.blur import GaussianBlur, gaussian_blur
from regularkit.augment.compose import Compose, OneOf
from regularkit.augment.crop import RandomResizedCrop, resized_crop
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
    "box_mask", "check_images", "check_input", "check_targets",
    "color_jitter", "crop", "cutmix", "cutmix_box", "erase", "hflip", "identity_matrix", "mix_targets", "mixup",
    "partner_index", "to_soft_targets", "vflip", "REGISTRY", "get",
    "AutoAugment", "RandAugment", "TrivialAugmentWide", "AugMix", "JsdCrossEntropy", "augmix_views",
    "jsd_cross_entropy", "GaussianBlur", "gaussian_blur", "RandomResizedCrop", "resized_crop",
]

#: The one registry of augmentations (Keras-style names), used by :func:`get`, configs and the conformance suite.
REGISTRY: dict[str, type[Augmentation]] = {
    "horizontal_flip": HorizontalFlip, "vertical_flip": VerticalFlip, "random_crop": RandomCrop,
    "random_affine": RandomAffine, "random_scale_crop": RandomScaleCrop, "color_jitter": ColorJitter,
    "pca_color": PCAColor, "cutout": Cutout, "random_erasing": RandomErasing, "mix_up": MixUp, "cut_mix": CutMix,
    "mix_up_cut_mix": MixUpCutMix, "random_gaussian_noise": RandomGaussianNoise, "compose": Compose,
    "one_of": OneOf, "image_data_generator": ImageDataGenerator,
    "rand_augment": RandAugment, "trivial_augment_wide": TrivialAugmentWide, "auto_augment": AutoAugment,
    "aug_mix": AugMix, "random_resized_crop": RandomResizedCrop, "gaussian_blur": GaussianBlur,
}


def get(identifier) -> Augmentation:
    """An augmentation from a name (``"horizontal_flip"``: default arguments), ``{"class_name": ...,
    "config": {...}}``, or an augmentation (returned as is)."""
    return build(REGISTRY, identifier, family="augmentation", base=Augmentation)


