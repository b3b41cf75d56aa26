"""Colour augmentation: brightness / contrast / channel shift, and AlexNet's PCA colour jitter.

Deck 000, "Color jitter": the simple version alters contrast at random; the
complex one (Krizhevsky et al. 2012, §4.1)

    1. apply PCA to all [R, G, B] pixels of the *training* set,
    2. sample a colour offset along the principal directions,
    3. add that offset to every pixel of a training image:
       I_xy += [p1, p2, p3] [a1 l1, a2 l2, a3 l3]^T,   a_i ~ N(0, 0.1).

Both are per-sample affine maps of the pixel values, so each is one fused
pass over the batch.
"""
from __future__ import annotations

import torch

from regularkit._util import rng
from regularkit._util.checks import check_bool, check_non_negative
from regularkit.augment.base import Augmentation, Batch, Params, check_range, in_float, uniform
from regularkit.errors import RegularkitError
from regularkit.preprocess import as_fit_tensor, check_fit_split

# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale: contrast pivots on the mean luminance.
_LUMA = (0.299, 0.587, 0.114)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luminance N x 1 x H x W: the BT.601 weights for RGB (Pillow's ``L``), the channel mean otherwise.

    torchvision's ``rgb_to_grayscale`` weighs red 0.2989 instead of 0.299: the
    two differ by at most 1e-4 of the red value.  One channel is its own luminance.
    """
    if x.shape[1] == 3:
        return (x * torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return x.mean(1, keepdim=True)


def color_jitter(x: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor,
                 shift: torch.Tensor, *, clip=None) -> torch.Tensor:
    """Brightness, then contrast, then channel shift, per sample, in one multiply-add.

    ``x1 = b x`` (brightness); ``x2 = c x1 + (1 - c) mean(x1)`` (contrast about
    the mean luminance, torchvision's definition); ``x3 = x2 + s_ch``.  Expanded,
    ``x3 = (b c) x + ((1 - c) b mean(x) + s_ch)``: one ``addcmul``.

    Args:
        brightness, contrast: factors (N,); 1 leaves the image as it is.
        shift: offsets (N, C) added per channel, or (N,) for all channels.
        clip: ``None``, a pair (lo, hi), or ``"sample"`` for each image's own
            [min, max] before the change (Keras' channel shift).
    """
    n, c = x.shape[:2]
    if c == 3:
        luma = (x * torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)).sum(1).mean((1, 2))
    else:
        luma = x.mean((1, 2, 3))
    gain = (brightness * contrast).to(x.dtype)
    offset = ((1 - contrast) * brightness * luma).view(n, 1) + shift.view(n, -1)
    lo = hi = None
    if isinstance(clip, str):
        lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    out = torch.addcmul(offset.to(x.dtype).view(n, -1, 1, 1), x, gain.view(n, 1, 1, 1))
    if lo is not None:
        return torch.clamp(out, lo, hi)
    if clip is not None:
        return out.clamp(clip[0], clip[1])
    return out


class ColorJitter(Augmentation):
    """Random brightness, contrast and channel shift, drawn per sample.

    Args:
        brightness: factor range; ``b`` means ``U(max(0, 1 - b), 1 + b)``.
        contrast: factor range, same reading.
        channel_shift: offset range added to each channel; ``s`` means ``U(-s, s)``
            (in the units of ``x``, as Keras' ``channel_shift_range``).
        per_channel_shift: draw one offset per channel (True) or one per image
            for all channels (False, Keras' behaviour).
        clip: ``None`` (default: inputs may be standardised, so no range is
            assumed), a pair (lo, hi), or ``"sample"`` (Keras).
        seed: rank 0's seed of the op's own generator (see :mod:`regularkit.augment.base`).

    Integer images are computed in float32 (offsets in their units: 0..255)
    and rounded and clamped back to their dtype.
    """

    def __init__(self, brightness=0.0, contrast=0.0, channel_shift=0.0, *, per_channel_shift: bool = True,
                 clip=None, seed: int | None = None):
        super().__init__(seed=seed)
        self.brightness, self.contrast, self.channel_shift = brightness, contrast, channel_shift
        self._b = check_range("brightness", brightness, symmetric_about=1.0, low=0.0)
        self._c = check_range("contrast", contrast, symmetric_about=1.0, low=0.0)
        self._s = check_range("channel_shift", channel_shift, symmetric_about=0.0)
        self.per_channel_shift = check_bool("per_channel_shift", per_channel_shift)
        if clip is not None and clip != "sample" and not (isinstance(clip, (tuple, list)) and len(clip) == 2):
            raise RegularkitError(f"clip must be None, 'sample' or a pair (low, high), got {clip!r}")
        self.clip = clip

    def make_params(self, x, generator=None) -> Params:
        n, c = x.shape[:2]
        return {"brightness": uniform(n, *self._b, x, generator),
                "contrast": uniform(n, *self._c, x, generator),
                "shift": uniform((n, c if self.per_channel_shift else 1), *self._s, x, generator)}

    def apply(self, x, y, params) -> Batch:
        return in_float(x, lambda v: color_jitter(v, params["brightness"], params["contrast"], params["shift"],
                                                  clip=self.clip)), y


class PCAColor(Augmentation):
    """AlexNet's PCA colour augmentation with the principal axes fitted on training pixels.

    ``fit(x_train)`` computes the C x C covariance of all training pixels
    (population, ``X_c^T X_c / P``) and its eigen-decomposition: ``eigvals_``
    (C,, largest first) and ``eigvecs_`` (C x C, one eigenvector per column).
    Each sample then gets the offset ``eigvecs_ @ (a * sqrt(eigvals_))``,
    ``a ~ N(0, std^2)`` per component, added to every pixel.

    The paper writes ``a_i * l_i`` with l_i the eigenvalue; the widely used
    re-implementations (fb.resnet.torch's ImageNet constants) use its square
    root, the standard deviation along the axis, which makes ``std`` a fraction
    of the data's spread whatever the pixel scale.  We use the square root;
    ``literal=True`` uses the eigenvalue as written.  Like every fit in
    regularkit, fitting refuses data marked as val or test.  The fitted axes
    are buffers: ``state_dict()`` carries them, ``.to(device)`` moves them, and
    an unfitted op loads them with ``load_state_dict``.  Integer images get
    the offset in float32, rounded and clamped back.
    """

    _FITTED = ("eigvals_", "eigvecs_")

    def __init__(self, std: float = 0.1, *, literal: bool = False, seed: int | None = None):
        super().__init__(seed=seed)
        self.std = check_non_negative("std", std)
        self.literal = check_bool("literal", literal)

    def fit(self, x, split: str = "train") -> "PCAColor":
        check_fit_split(x, split, who="PCAColor")
        x = as_fit_tensor(x)
        if x.dim() != 4:
            raise RegularkitError(f"PCAColor.fit needs images N x C x H x W, got shape {tuple(x.shape)}")
        c = x.shape[1]
        total = torch.zeros(c, dtype=torch.float64)
        outer = torch.zeros(c, c, dtype=torch.float64)
        for i in range(0, x.shape[0], 1024):  # float64 sums over chunks bound the memory
            p = x[i:i + 1024].transpose(0, 1).reshape(c, -1).double().cpu()
            total += p.sum(1)
            outer += p @ p.T
        count = x.numel() // c
        mean = total / count
        cov = outer / count - torch.outer(mean, mean)
        vals, vecs = torch.linalg.eigh(cov)
        self.register_buffer("eigvals_", vals.flip(0).clamp_min(0.0).float())
        self.register_buffer("eigvecs_", vecs.flip(1).float())
        return self

    def make_params(self, x, generator=None) -> Params:
        if not hasattr(self, "eigvecs_"):
            raise RegularkitError("PCAColor is not fitted: call fit(x_train) first")
        if x.shape[1] != self.eigvals_.shape[0]:
            raise RegularkitError(f"PCAColor was fitted on {self.eigvals_.shape[0]} channels, got {x.shape[1]}")
        alpha = rng.randn((x.shape[0], x.shape[1]), device=x.device, generator=generator) * self.std
        weight = self.eigvals_ if self.literal else self.eigvals_.sqrt()
        return {"offset": (alpha * weight.to(x.device)) @ self.eigvecs_.to(x.device).T}

    def apply(self, x, y, params) -> Batch:
        return in_float(x, lambda v: v + params["offset"].to(v.dtype).view(v.shape[0], -1, 1, 1)), y

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # An unfitted op has no buffers yet: create them, so that loading a fitted state fits it.
        for name in self._FITTED:
            if prefix + name in state_dict and name not in self._buffers:
                self.register_buffer(name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
