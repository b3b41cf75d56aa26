"""Keras' ``ImageDataGenerator`` vocabulary on regularkit's batched ops.

Decks 000 and 002 teach data augmentation through
``keras.preprocessing.image.ImageDataGenerator(...)``, ``datagen.fit(x_train)``
and ``datagen.flow(x_train, y_train, batch_size=32)``.  This class keeps those
argument names and Keras 2 semantics, and runs every batch through one
affine warp, one colour op and two flips with per-sample parameters instead of
Keras' per-image SciPy loop.  The mapping table is in docs/augment.md.

Order per batch, as Keras' ``_get_batches_of_transformed_samples``: random
transform (affine, channel shift, horizontal flip, vertical flip), then
``standardize`` (``preprocessing_function``, ``rescale``, samplewise centre and
std, featurewise centre and std, ZCA).  So ``cval`` and ``channel_shift_range``
are in the units of the raw input, before ``rescale``.

Choices where Keras and the lecture differ (documented in docs/augment.md):
``shear_range`` is in degrees (Keras 2+; the deck's Keras 1 text says
radians); ``zoom_range`` keeps Keras' meaning (a factor on the *sampled*
coordinates: ``> 1`` shows a smaller image), drawn independently for the two
axes; ``flow`` yields torch tensors and stops after one epoch (Keras' loops
forever); ``featurewise_*``/``zca_whitening`` before ``fit`` raise instead
of warning; ZCA uses the per-pixel covariance (Keras' uses per-channel
centring), so whitened training data has covariance ~ I.

Integer images come out float32, as Keras casts every batch to its float
``dtype`` (``rescale`` and standardisation need floats): the one op whose
output dtype is not its input's (``keeps_integer_dtype = False``).  The
fitted statistics travel in ``state_dict()`` (``get_extra_state``).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from regularkit._util import rng
from regularkit._util.checks import check_bool, check_choice, check_int, check_non_negative, check_number
from regularkit.augment.affine import affine
from regularkit.augment.base import Augmentation, Batch, Params, check_images, uniform
from regularkit.augment.geometric import PAD_MODES, hflip, vflip
from regularkit.augment.photometric import color_jitter
from regularkit.errors import RegularkitError
from regularkit.preprocess import Rescale, Standardize, ZCAWhiten, as_fit_tensor, check_fit_split


def _listed(spec) -> bool:
    return isinstance(spec, (list, tuple, np.ndarray))


def _shifts(spec) -> bool:
    """Whether a shift range moves anything (``np.any`` in plain Python: traced by ``torch.compile``)."""
    return any(float(v) != 0 for v in spec) if _listed(spec) else float(spec) != 0


def _keras_shift(spec, n: int, size: int, x, generator) -> torch.Tensor:
    """Keras' shift draw, in pixels: int k -> {0..k-1} with a random sign; sequence -> a random
    element with a random sign; float -> U(-r, r); all times ``size`` when the range is below 1.

    The spec is read in plain Python (no NumPy on the way), so ``make_params`` compiles without a break."""
    values = [float(v) for v in spec] if _listed(spec) else [float(spec)]
    if _listed(spec) or isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        choices = (torch.tensor(values, dtype=torch.float64) if _listed(spec)
                   else torch.arange(int(spec))).to(x.device)
        u = rng.rand(n, device=x.device, generator=generator)
        pick = choices[(u * len(choices)).long().clamp_max(len(choices) - 1)].float()
        sign = torch.where(rng.rand(n, device=x.device, generator=generator) < 0.5, -1.0, 1.0)
        value = pick * sign
    else:
        r = values[0]
        value = uniform(n, -r, r, x, generator)
    return value * size if max(values) < 1 else value


class ImageDataGenerator(Augmentation):
    """Keras 2's ImageDataGenerator arguments mapped onto batched regularkit ops (module docstring).

    ``seed`` (not a Keras argument) seeds the op's own generator when it is
    called as an augmentation; ``flow(..., seed=)`` keeps Keras' meaning.
    """

    keeps_integer_dtype = False

    def __init__(self, featurewise_center: bool = False, samplewise_center: bool = False,
                 featurewise_std_normalization: bool = False, samplewise_std_normalization: bool = False,
                 zca_whitening: bool = False, zca_epsilon: float = 1e-6, rotation_range: float = 0.0,
                 width_shift_range=0.0, height_shift_range=0.0, shear_range: float = 0.0, zoom_range=0.0,
                 channel_shift_range: float = 0.0, fill_mode: str = "nearest", cval: float = 0.0,
                 horizontal_flip: bool = False, vertical_flip: bool = False, rescale: float | None = None,
                 preprocessing_function: Callable[[np.ndarray], np.ndarray] | None = None,
                 data_format: str = "channels_last", seed: int | None = None):
        super().__init__(seed=seed)
        self.featurewise_center, self.samplewise_center = check_bool("featurewise_center", featurewise_center), check_bool("samplewise_center", samplewise_center)
        self.featurewise_std_normalization = check_bool("featurewise_std_normalization", featurewise_std_normalization)
        self.samplewise_std_normalization = check_bool("samplewise_std_normalization", samplewise_std_normalization)
        self.zca_whitening, self.zca_epsilon = check_bool("zca_whitening", zca_whitening), check_non_negative("zca_epsilon", zca_epsilon)
        self.rotation_range = check_non_negative("rotation_range", rotation_range)
        for name, spec in (("width_shift_range", width_shift_range), ("height_shift_range", height_shift_range)):
            if np.ndim(spec) > 1 or (np.ndim(spec) == 0 and check_number(name, spec) < 0):
                raise RegularkitError(f"{name} must be a number >= 0 or a 1-D sequence, got {spec!r}")
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self.shear_range = check_non_negative("shear_range", shear_range)
        self.zoom_range = zoom_range
        if isinstance(zoom_range, (tuple, list)):
            if len(zoom_range) != 2 \
                    or not 0 < check_number("zoom_range", zoom_range[0]) <= check_number("zoom_range", zoom_range[1]):
                raise RegularkitError(f"zoom_range must be a number or a pair 0 < low <= high, got {zoom_range!r}")
            self._zoom = (float(zoom_range[0]), float(zoom_range[1]))
        else:
            z = check_number("zoom_range", zoom_range)
            if not 0 <= z < 1:
                raise RegularkitError(f"zoom_range must be in [0, 1) as one number, got {zoom_range!r}")
            self._zoom = (1 - z, 1 + z)
        self.channel_shift_range = check_non_negative("channel_shift_range", channel_shift_range)
        self.fill_mode = check_choice("fill_mode", fill_mode, PAD_MODES)
        self.cval = check_number("cval", cval)
        self.horizontal_flip, self.vertical_flip = check_bool("horizontal_flip", horizontal_flip), check_bool("vertical_flip", vertical_flip)
        self.rescale = None if rescale in (None, 0) else check_number("rescale", rescale)
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise RegularkitError(f"preprocessing_function must be callable, got {preprocessing_function!r}")
        self.preprocessing_function = preprocessing_function
        self.data_format = check_choice("data_format", data_format, ("channels_first", "channels_last"))
        self._featurewise = Standardize("featurewise", per="channel", with_mean=self.featurewise_center,
                                        with_std=self.featurewise_std_normalization)
        self._samplewise = Standardize("samplewise", with_mean=self.samplewise_center,
                                       with_std=self.samplewise_std_normalization)
        self._zca = ZCAWhiten(eps=self.zca_epsilon)

    # ------------------------------------------------------------------ layout
    def _to_nchw(self, x: Any) -> torch.Tensor:
        x = as_fit_tensor(x)
        if x.dim() != 4:
            raise RegularkitError(f"expected a batch of images (4-D, {self.data_format}), got shape {tuple(x.shape)}")
        x = x.float()
        return x.permute(0, 3, 1, 2) if self.data_format == "channels_last" else x

    def _from_nchw(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).contiguous() if self.data_format == "channels_last" else x

    # ------------------------------------------------------------------ Keras API
    def fit(self, x, split: str = "train") -> "ImageDataGenerator":
        """Keras' ``fit``: featurewise mean/std and ZCA from the (rescaled) training images."""
        check_fit_split(x, split, who="ImageDataGenerator")
        x = self._to_nchw(x)
        if self.rescale is not None:
            x = x * self.rescale
        if self.featurewise_center or self.featurewise_std_normalization:
            x = self._featurewise.fit_transform(x)
        if self.zca_whitening:
            self._zca.fit(x)
        return self

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """Keras' ``standardize`` on a batch N x C x H x W, in Keras' order."""
        if self.preprocessing_function is not None:
            imgs = self._from_nchw(x).cpu().numpy()
            imgs = np.stack([np.asarray(self.preprocessing_function(img)) for img in imgs])
            x = self._to_nchw(torch.from_numpy(imgs)).to(x.device)
        if self.rescale is not None:
            x = Rescale(self.rescale).transform(x)
        if self.samplewise_center or self.samplewise_std_normalization:
            x = self._samplewise.transform(x)
        for flag, step, what in ((self.featurewise_center or self.featurewise_std_normalization, self._featurewise,
                                  "featurewise normalisation"), (self.zca_whitening, self._zca, "zca_whitening")):
            if flag:
                if not hasattr(step, "feature_shape_"):
                    raise RegularkitError(f"{what} needs statistics: call fit(x_train) before flow or standardize")
                x = step.transform(x)
        return x

    def flow(self, x, y=None, batch_size: int = 32, shuffle: bool = True, seed: int | None = None) -> "Flow":
        """Batches ``(x, y)`` (or ``x`` alone when ``y`` is None), augmented, in ``data_format``."""
        return Flow(self, x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)

    # ------------------------------------------------------------------ Augmentation contract (N x C x H x W)
    def make_params(self, x, generator=None) -> Params:
        n, _, h, w = x.shape
        params: Params = {}
        if self.rotation_range or self.shear_range or self._zoom != (1.0, 1.0) \
                or _shifts(self.width_shift_range) or _shifts(self.height_shift_range):
            theta = torch.deg2rad(uniform(n, -self.rotation_range, self.rotation_range, x, generator).double())
            zero = torch.zeros(n, dtype=torch.float64, device=x.device)
            tx = _keras_shift(self.height_shift_range, n, h, x, generator).double() \
                if _shifts(self.height_shift_range) else zero
            ty = _keras_shift(self.width_shift_range, n, w, x, generator).double() \
                if _shifts(self.width_shift_range) else zero
            sh = torch.deg2rad(uniform(n, -self.shear_range, self.shear_range, x, generator).double())
            zx, zy = (uniform(n, *self._zoom, x, generator).double() for _ in range(2))
            # Keras' matrix in (row, col): R(theta) Shift(tx, ty) Shear(sh) Zoom(zx, zy), output -> input.
            c, s = torch.cos(theta), torch.sin(theta)
            rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
            shear = torch.stack([torch.stack([torch.ones_like(sh), -torch.sin(sh)], -1),
                                 torch.stack([torch.zeros_like(sh), torch.cos(sh)], -1)], -2)
            lin = rot @ shear @ torch.diag_embed(torch.stack([zx, zy], -1))
            shift = rot @ torch.stack([tx, ty], -1).unsqueeze(-1)
            rc = torch.cat([lin, shift], -1)
            params["matrix"] = rc[:, [1, 0]][:, :, [1, 0, 2]].float()  # (row, col) -> (x, y)
        if self.channel_shift_range:
            params["shift"] = uniform(n, -self.channel_shift_range, self.channel_shift_range, x, generator)
        if self.horizontal_flip:
            params["hflip"] = rng.rand(n, device=x.device, generator=generator) < 0.5
        if self.vertical_flip:
            params["vflip"] = rng.rand(n, device=x.device, generator=generator) < 0.5
        return params

    def random_transform(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        if "matrix" in params:
            x = affine(x, params["matrix"], fill_mode=self.fill_mode, cval=self.cval)
        if "shift" in params:
            ones = torch.ones(x.shape[0], device=x.device)
            x = color_jitter(x, ones, ones, params["shift"], clip="sample")
        if "hflip" in params:
            x = hflip(x, params["hflip"])
        if "vflip" in params:
            x = vflip(x, params["vflip"])
        return x

    def apply(self, x, y, params) -> Batch:
        if not x.is_floating_point():
            x = x.float()
        return self.standardize(self.random_transform(x, params)), y

    # ------------------------------------------------------------------ fitted statistics in state_dict()
    _STEPS = ("_featurewise", "_samplewise", "_zca")

    def get_extra_state(self) -> dict:
        return {name: getattr(self, name).state_dict() for name in self._STEPS}

    def set_extra_state(self, state: dict) -> None:
        for name in self._STEPS:
            getattr(self, name).load_state_dict(state[name])


class Flow:
    """One epoch of augmented batches per iteration (``len`` = batches per epoch).

    Shuffling and augmentation draw from one ``torch.Generator`` seeded with
    ``seed``, so two flows with the same seed yield the same batches.
    """

    def __init__(self, datagen: ImageDataGenerator, x, y=None, *, batch_size: int = 32, shuffle: bool = True,
                 seed: int | None = None):
        self.datagen = datagen
        self.x = datagen._to_nchw(x)
        self.y = None if y is None else as_fit_tensor(y)
        if self.y is not None and len(self.y) != len(self.x):
            raise RegularkitError(f"x and y must have the same length, got {len(self.x)} and {len(self.y)}")
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.shuffle = check_bool("shuffle", shuffle)
        self.seed = seed
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(check_int("seed", seed, minimum=0))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self):
        n = len(self.x)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for i in range(0, n, self.batch_size):
            idx = order[i:i + self.batch_size]
            xb = self.x[idx.to(self.x.device)]
            xb, _ = self.datagen.apply(xb, None, self.datagen.make_params(check_images(xb), self.generator))
            xb = self.datagen._from_nchw(xb)
            yield xb if self.y is None else (xb, self.y[idx.to(self.y.device)])


__all__ = ["ImageDataGenerator", "Flow"]
