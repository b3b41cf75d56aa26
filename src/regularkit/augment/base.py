"""The augmentation contract: sample the random parameters, then apply them; every op is an ``nn.Module``.

Every op in :mod:`regularkit.augment` follows torchvision v2's split between
``make_params`` (all randomness, one draw per sample) and a deterministic
``apply`` (Keras' ``get_random_transform`` / ``apply_transform`` pair, batched):

* ``params = op.make_params(x, generator)``: a dict of small tensors, one row
  per sample (offsets, flip flags, lambdas...).  It reads only ``x``'s shape,
  dtype and device, never its values, so :class:`~regularkit.augment.Compose`
  can sample a whole pipeline before touching a pixel.  Draws are float32
  whatever ``x``'s dtype, so a seed gives the same parameters for float32,
  float64, bfloat16 and uint8 data.
* ``x, y = op.apply(x, y, params)``: no randomness; fixed params give
  identical outputs, which is how the tests pin every kernel exactly.  It
  takes the batch (``N x C x H x W``; ``N x ...`` for the ops that take any
  batch) and contains no host sync, so the mixing ops compile without a graph break.
* ``op(x, y=None, generator=None)``: both steps (``nn.Module.forward``).  It
  returns ``x`` alone when ``y`` is None and the pair ``(x, y)`` otherwise, so an
  op sits in ``nn.Sequential`` and is the batch transform
  ``(x, y, generator) -> (x, y)`` a training loop calls.

Training and evaluation (Keras' preprocessing layers, not torchvision v2): an
op applies itself in training mode (the default of a new module) and returns
its input unchanged after ``.eval()``, like dropout, so ``nn.Sequential(op,
model).eval()`` predicts on clean inputs.  torchvision v2 transforms always
apply; they are not meant to live inside a model.

Inputs: image ops take a batch N x C x H x W or one image C x H x W (returned
as C x H x W; its ``y`` is a 0-d class index or soft targets (K,)).  Ops with
``images_only = False`` (MixUp, RandomGaussianNoise, and pipelines of them)
take any batch N x ... : vectors N x D, sequences N x C x L, images; dim 0 is
always the batch there, so one image is passed as ``x[None]``.  ``y`` is
``None``, class indices (N,) or soft targets N x K.  Ops that do not mix
samples return ``y`` unchanged; mixing ops (``mixes_targets = True``) return
soft targets N x K.  Integer images (uint8) work everywhere: ops that
interpolate or blend compute in float32 and round and clamp back to the
integer dtype (torchvision's rule, ``functional/_geometry.py``); flips, crops,
erasing and CutMix move pixels exactly.  A ``channels_last`` input gives a
``channels_last`` output.

Randomness: ``generator`` (one call) wins; else the op's own ``seed=`` (a
private generator created lazily on the data's device from
:func:`~regularkit._util.distributed.rank_generator`, so rank r of a
distributed run draws from ``seed + r * RANK_STRIDE``; copies and pickles carry
its state); else torch's global RNG on ``x.device``.  Parameters are drawn on
the generator's device and moved to ``x.device``; NumPy's global RNG is never used.
The seeded generator's state is also in the op's ``state_dict()`` (``_extra_state``,
:class:`regularkit._util.distributed.SeededStream`, the noise layers' mechanism), so a
``torch.save(model.state_dict())`` / ``load_state_dict`` round trip (a Lightning
checkpoint) resumes the same stream; an unseeded op, or one that has not drawn yet,
has no entry (``ImageDataGenerator`` keeps its fitted statistics there instead).

``nn.Module.apply(fn)`` keeps its meaning: ``op.apply(fn)`` with one function
walks the module tree (as ``model.apply(init_fn)`` does through an
``nn.Sequential`` holding an op); ``op.apply(x, y, params)`` is the augmentation.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from regularkit._util import rng
from regularkit._util.checks import check_int, check_number
from regularkit._util.distributed import SeededStream
from regularkit.errors import RegularkitError
from regularkit.noise.stochastic import break_before_draw, generator_not_traceable

Params = Dict[str, Any]
Batch = Tuple[torch.Tensor, Optional[torch.Tensor]]

#: Why a seeded op cannot be one torch.compile graph: the message of the graph break inserted before its draws
#: (torch 2.13's dynamo cannot trace a torch.Generator: without it, fullgraph=True fails with an "opaque object").
#: One mechanism with the noise layers: :func:`regularkit.noise.stochastic.break_before_draw`.
GENERATOR_NOT_TRACEABLE = generator_not_traceable("augmentation", "op")


# --------------------------------------------------------------------------- checks
def check_images(x: Any, *, floating: bool = False, name: str = "x") -> torch.Tensor:
    """``x`` is a 4-D tensor N x C x H x W with N, H, W >= 1 (floating point if asked)."""
    if not isinstance(x, torch.Tensor):
        raise RegularkitError(f"{name} must be a torch.Tensor N x C x H x W, got {type(x).__name__}")
    if x.dim() != 4:
        raise RegularkitError(f"{name} must be a 4-D batch N x C x H x W, got shape {tuple(x.shape)}")
    if min(x.shape) < 1:
        raise RegularkitError(f"{name} must hold at least one image of at least 1x1 pixel, got shape {tuple(x.shape)}")
    if floating and not x.is_floating_point():
        raise RegularkitError(f"{name} must be a floating-point tensor for this op, got dtype {x.dtype}")
    return x


def check_input(x: Any, *, images: bool = True, name: str = "x") -> Tuple[torch.Tensor, bool]:
    """The batch an op works on and whether ``x`` was one image (then returned as a batch of one).

    ``images=True``: N x C x H x W, or one image C x H x W.  ``images=False``:
    any batch N x ... (dim 0 is the batch: a 3-D tensor is N x C x L).
    """
    if not isinstance(x, torch.Tensor):
        what = "N x C x H x W" if images else "N x ..."
        raise RegularkitError(f"{name} must be a torch.Tensor {what}, got {type(x).__name__}")
    shape = tuple(x.shape)
    if images and x.dim() not in (3, 4):
        raise RegularkitError(f"{name} must be a batch N x C x H x W or one image C x H x W, got shape {shape}")
    if not images and x.dim() < 1:
        raise RegularkitError(f"{name} must be a batch N x ... with at least one dimension, got shape {shape}")
    if min(shape) < 1:
        what = "one image of at least 1x1 pixel" if images else "one sample and no empty dimension"
        raise RegularkitError(f"{name} must hold at least {what}, got shape {shape}")
    return (x.unsqueeze(0), True) if images and x.dim() == 3 else (x, False)


def check_targets(y: Any, n: int, *, name: str = "y") -> torch.Tensor | None:
    """``None``, class indices (n,) of an integer dtype, or soft targets n x K of a float dtype."""
    if y is None:
        return None
    if not isinstance(y, torch.Tensor):
        raise RegularkitError(f"{name} must be a torch.Tensor or None, got {type(y).__name__}")
    if y.dim() == 1 and not y.is_floating_point() and y.dtype != torch.bool:
        pass
    elif y.dim() == 2 and y.is_floating_point():
        pass
    else:
        raise RegularkitError(
            f"{name} must be class indices (N,) of an integer dtype or soft targets N x K of a float dtype, "
            f"got shape {tuple(y.shape)} and dtype {y.dtype}")
    if y.shape[0] != n:
        raise RegularkitError(f"{name} must have one row per image ({n}), got {y.shape[0]}")
    return y


def _one_image_targets(y: Any) -> Any:
    """The targets of one image as a batch of one: a 0-d class index -> (1,), soft targets (K,) -> 1 x K."""
    if isinstance(y, torch.Tensor) and (y.dim() == 0 or (y.dim() == 1 and y.is_floating_point())):
        return y.unsqueeze(0)
    if y is None:
        return None
    raise RegularkitError(f"y of one image must be a 0-d class index or soft targets (K,), "
                          f"got {tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")


def check_range(name: str, value: Any, *, symmetric_about: float | None = None,
                low: float | None = None) -> Tuple[float, float]:
    """A sampling range: a pair ``(lo, hi)`` with ``lo <= hi``, or one number ``v``.

    One number means ``(c - v, c + v)`` around ``symmetric_about`` (0 for angles,
    1 for factors), which is how Keras and torchvision read ``rotation_range=20``.
    ``low`` clips the lower end (a brightness factor stays >= 0).
    """
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise RegularkitError(f"{name} must be a number or a pair (low, high), got {value!r}")
        lo, hi = check_number(f"{name}[0]", value[0]), check_number(f"{name}[1]", value[1])
    else:
        v = check_number(name, value)
        if symmetric_about is None:
            raise RegularkitError(f"{name} must be a pair (low, high), got {value!r}")
        if v < 0:
            raise RegularkitError(f"{name} must be >= 0 when given as one number, got {value!r}")
        lo, hi = symmetric_about - v, symmetric_about + v
    if lo > hi:
        raise RegularkitError(f"{name} must have low <= high, got {value!r}")
    if low is not None:
        lo = max(lo, low)
        if hi < low:
            raise RegularkitError(f"{name} must reach at least {low}, got {value!r}")
    return lo, hi


# --------------------------------------------------------------------------- kernels' helpers
def sample_view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample vector (N,) viewed as N x 1 x ... x 1, to broadcast over a batch ``like`` of any rank."""
    return t.view((-1,) + (1,) * (like.dim() - 1))


def select(mask: torch.Tensor, a: torch.Tensor, b) -> torch.Tensor:
    """``where(mask, a, b)`` with broadcasting; ``b`` may be a number, ``mask`` bool or 0/1 floats.

    For floating-point data this is ``lerp(b, a, mask)``: torch's lerp returns
    its end points exactly at weights 0 and 1, and on CPU it is about ten times
    faster than ``torch.where`` with a broadcast bool mask (docs/bench_augment.md).
    The price: an infinite pixel on the unselected side would give NaN
    (0 * inf), so images are assumed finite.  Integer data uses ``torch.where``.
    """
    if not a.is_floating_point():
        return torch.where(mask.bool(), a, b if isinstance(b, torch.Tensor)
                           else torch.as_tensor(b, dtype=a.dtype, device=a.device))
    if not isinstance(b, torch.Tensor):
        b = torch.full((1,) * a.dim(), float(b), dtype=a.dtype, device=a.device).expand_as(a)  # no copy
    return torch.lerp(b, a, mask if mask.dtype == a.dtype else mask.to(a.dtype))


def _integer_range(dtype: torch.dtype) -> Tuple[int, int]:
    if dtype == torch.bool:
        return 0, 1
    info = torch.iinfo(dtype)
    return info.min, info.max


def to_integer(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float values back to an integer image dtype: rounded (half to even) and clamped to the dtype's range."""
    lo, hi = _integer_range(dtype)
    return values.round().clamp(lo, hi).to(dtype)


def in_float(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``fn(x)`` for floating-point ``x``; integer images are computed in float32, then rounded and clamped back.

    torchvision's rule for warps (``_apply_grid_transform`` rounds before the
    cast), applied to every op that interpolates or blends: a uint8 result is
    exactly ``fn(x.float())`` rounded to the nearest value in [0, 255].
    """
    return fn(x) if x.is_floating_point() else to_integer(fn(x.float()), x.dtype)


def fill_for(value: float, dtype: torch.dtype) -> float:
    """A constant fill as the image dtype holds it: itself for floats, rounded and clamped for integers."""
    if dtype.is_floating_point:
        return value
    lo, hi = _integer_range(dtype)
    return min(max(round(value), lo), hi)


def keep_layout(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``out`` in ``channels_last`` memory format when ``x`` was (and is not also plainly contiguous)."""
    if out.dim() == 4 and x.dim() == 4 and not x.is_contiguous() \
            and x.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out


# --------------------------------------------------------------------------- randomness
# Every draw goes through regularkit._util.rng (on the generator's device, then moved to x's).
def uniform(n: int | Sequence[int], low, high, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """U[low, high) float32 on ``x.device``; ``low``/``high`` numbers or broadcastable tensors (per-sample ranges)."""
    return low + (high - low) * rng.rand(n, device=x.device, generator=generator)


def randint(n: int | Sequence[int], low, high, x: torch.Tensor,
            generator: torch.Generator | None) -> torch.Tensor:
    """Integers uniform in ``[low, high)`` (int64), with per-sample tensor bounds allowed.

    ``torch.randint`` takes only scalar bounds; flooring a scaled uniform does
    per-sample bounds in one draw (exact while ``high - low`` < 2**24).
    """
    u = rng.rand(n, device=x.device, generator=generator).double()
    return (low + torch.floor(u * (high - low))).long()


def shape_proxy(shape: Sequence[int], like: torch.Tensor) -> torch.Tensor:
    """A tensor with ``shape``, ``like``'s dtype and device, and no memory (stride 0).

    ``make_params`` only reads shape, dtype and device, so a pipeline can be
    sampled through shape-changing ops without computing the images.
    """
    return torch.empty((), dtype=like.dtype, device=like.device).expand(*shape)


# --------------------------------------------------------------------------- base class
def _tree_walk_aware(apply):
    """Wrap an op's ``apply(x, y, params)`` so that ``apply(fn)`` stays ``nn.Module.apply`` (module docstring)."""
    @functools.wraps(apply)
    def wrapper(self, x, *args, **kwargs):
        if not args and not kwargs and callable(x) and not isinstance(x, torch.Tensor):
            return nn.Module.apply(self, x)
        return apply(self, x, *args, **kwargs)
    return wrapper


class Augmentation(SeededStream, nn.Module):
    """Base of every batched augmentation (see the module docstring for the contract)."""

    #: True for ops whose output ``y`` is soft targets mixing two samples.
    mixes_targets: bool = False
    #: True for ops that need images; False for ops on any batch N x ... (dim 0 the batch).
    images_only: bool = True
    #: False for ops whose output is floating point whatever the input (ImageDataGenerator, as Keras).
    keeps_integer_dtype: bool = True

    def __init__(self, *, seed: int | None = None):
        super().__init__()
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        self._generator: torch.Generator | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "apply" in cls.__dict__:
            cls.apply = _tree_walk_aware(cls.__dict__["apply"])

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, y: torch.Tensor | None = None, params: Params | None = None) -> Batch:
        if params is None and y is None and callable(x) and not isinstance(x, torch.Tensor):
            return nn.Module.apply(self, x)
        raise NotImplementedError

    def output_shape(self, shape: Sequence[int]) -> Tuple[int, ...]:
        """Shape of ``apply``'s image output for an input of ``shape`` (most ops keep it)."""
        return tuple(shape)

    # ------------------------------------------------------------------ randomness
    def seeded_generator(self, device: torch.device | str) -> torch.Generator | None:
        """The private generator of ``seed=`` (created on first use, on ``device``, rank-aware), or None."""
        if self.seed is not None:
            break_before_draw(GENERATOR_NOT_TRACEABLE)
        if self.seed is not None and self._generator is None:
            self._generator = self.new_stream(device)  # rank_seed(seed)'s start, or a stream loaded from a state_dict
        return self._generator

    def private_generator(self) -> torch.Generator | None:
        return self._generator

    def reset_generator(self) -> None:
        """Forget the private generator: the next call restarts the ``seed`` stream."""
        self._generator = None
        self.forget_stream()

    def resolve_generator(self, generator: torch.Generator | None, device) -> torch.Generator | None:
        """The call's ``generator`` if given, else the op's seeded one, else None (torch's global RNG)."""
        if generator is not None:
            break_before_draw(GENERATOR_NOT_TRACEABLE)
        return rng.check_generator(generator) if generator is not None else self.seeded_generator(device)

    # ------------------------------------------------------------------ nn.Module
    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None,
                generator: torch.Generator | None = None):
        """Sample and apply in training mode, return the input in eval mode; ``x`` alone when ``y`` is None."""
        batch, single = check_input(x, images=self.images_only)
        yb = check_targets(_one_image_targets(y) if single else y, batch.shape[0])
        rng.check_generator(generator)
        if not self.training:
            return x if y is None else (x, y)
        out, y_out = self.apply(batch, yb, self.make_params(batch, self.resolve_generator(generator, batch.device)))
        out = keep_layout(out, batch)
        if single:
            out, y_out = out[0], (y if y_out is yb else y_out[0])
        return out if y is None else (out, y_out)

    # Keras' habit: every object round-trips through its constructor arguments.
    def get_config(self) -> Dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}

    @classmethod
    def from_config(cls, config: Dict[str, Any]):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
