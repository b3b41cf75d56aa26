"""The augmentation contract: sample the random parameters, then apply them.

Every op in :mod:`regularkit.augment` follows torchvision v2's split between
``make_params`` (all randomness, one draw per sample) and a deterministic
``apply`` (Keras' ``get_random_transform`` / ``apply_transform`` pair, batched):

* ``params = op.make_params(x, generator)``: a dict of small tensors, one row
  per sample (offsets, flip flags, lambdas...).  It reads only ``x``'s shape,
  dtype and device, never its values, so :class:`~regularkit.augment.Compose`
  can sample a whole pipeline before touching a pixel.
* ``x, y = op.apply(x, y, params)``: no randomness; fixed params give
  identical outputs, which is how the tests pin every kernel exactly.
* ``x, y = op(x, y=None, generator=None)``: both steps, the batch transform
  ``(x, y, generator) -> (x, y)`` a training loop calls.

``x`` is N x C x H x W on any device; ``y`` is ``None``, class indices (N,)
or soft targets N x K.  Ops that do not mix samples return ``y`` unchanged;
mixing ops (``mixes_targets = True``) return soft targets N x K.

Randomness: parameters are drawn with ``generator`` on *its* device (CPU for
``torch.Generator()``) and moved to ``x.device``; with ``generator=None`` they
come from torch's global RNG on ``x.device``.  The same seeded generator gives
the same output; NumPy's global RNG is never used.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from regularkit._util import rng
from regularkit._util.checks import check_in_range, check_number
from regularkit.errors import RegularkitError

Params = Dict[str, Any]
Batch = Tuple[torch.Tensor, Optional[torch.Tensor]]


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


def check_probability(name: str, value: Any) -> float:
    return check_in_range(name, value, 0.0, 1.0)


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


def select(mask: torch.Tensor, a: torch.Tensor, b) -> torch.Tensor:
    """``where(mask, a, b)`` with broadcasting; ``b`` may be a number, ``mask`` bool or 0/1 floats.

    For floating-point data this is ``lerp(b, a, mask)``: torch's lerp returns
    its end points exactly at weights 0 and 1, and on CPU it is about ten times
    faster than ``torch.where`` with a broadcast bool mask (docs/bench_augment.md).
    The price: an infinite pixel on the unselected side would give NaN
    (0 * inf), so images are assumed finite.  Integer data uses ``torch.where``.
    """
    if not a.is_floating_point():
        return torch.where(mask, a, b if isinstance(b, torch.Tensor) else torch.as_tensor(b, dtype=a.dtype,
                                                                                           device=a.device))
    if not isinstance(b, torch.Tensor):
        b = torch.full((1,) * a.dim(), float(b), dtype=a.dtype, device=a.device).expand_as(a)  # no copy
    return torch.lerp(b, a, mask if mask.dtype == a.dtype else mask.to(a.dtype))


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
class Augmentation:
    """Base of every batched augmentation (see the module docstring for the contract)."""

    #: True for ops whose output ``y`` is soft targets mixing two samples.
    mixes_targets: bool = False

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        raise NotImplementedError

    def apply(self, x: torch.Tensor, y: torch.Tensor | None, params: Params) -> Batch:
        raise NotImplementedError

    def output_shape(self, shape: Sequence[int]) -> Tuple[int, ...]:
        """Shape of ``apply``'s image output for an input of ``shape`` (most ops keep it)."""
        return tuple(shape)

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> Batch:
        x = check_images(x)
        y = check_targets(y, x.shape[0])
        return self.apply(x, y, self.make_params(x, generator))

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
