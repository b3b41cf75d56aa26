"""In-model conversion of raw pixels: ``ToDtype`` (torchvision v2) and ``Rescaling`` (Keras), as modules.

Images often arrive as ``uint8`` in [0, 255].  Converting them inside the model
(``nn.Sequential(ToDtype(torch.float32), Standardize().fit(x_train), net)``) keeps the
stored data four times smaller, moves the bytes to the accelerator before the
conversion, and makes the exported / compiled model take what the camera gives.
Nothing is learned, so neither needs ``fit``; both are ``nn.Module``s with no state.

* :func:`to_dtype` / :class:`ToDtype` restate torchvision v2's ``to_dtype_image``
  (``v2.ToDtype(dtype, scale=True)``): integer -> float is ``x.to(dtype) * (1 / max)``
  with ``max`` the input dtype's largest value (255 for ``uint8``: [0, 255] -> [0, 1]);
  float -> integer is ``(x * (max + 1 - 1e-3)).to(dtype)`` with ``max`` the output's
  (so [0, 1] -> [0, 255], each bin of width 1/256 one integer; values outside [0, 1] are
  not clamped, as in torchvision); float -> float and ``scale=False`` are a plain cast.
  Differs on purpose: integer -> integer with ``scale=True`` (torchvision shifts bits)
  and the float32 -> int32/int64 or float64 -> int64 conversions (which torchvision
  also refuses: the float cannot hold every integer) raise a ``RegularkitError``.
* :func:`rescale` / :class:`Rescaling` restate Keras' ``Rescaling(scale, offset)``:
  ``x * scale + offset`` computed in floating point; an integer input is first cast to
  ``torch.get_default_dtype()`` (Keras casts to the layer's compute dtype, float32), a
  floating one keeps its dtype.  ``Rescaling(1/255)`` maps [0, 255] to [0, 1],
  ``Rescaling(1/127.5, offset=-1)`` to [-1, 1].
"""
from __future__ import annotations

import torch
from torch import nn

from regularkit._util.checks import check_bool, check_number
from regularkit.errors import RegularkitError

__all__ = ["to_dtype", "rescale", "ToDtype", "Rescaling"]

_FLOAT_EPS = 1e-3  # torchvision's margin: 1.0 maps to max, not max + 1


def _max_value(dtype: torch.dtype) -> int:
    return torch.iinfo(dtype).max


def _check_dtype(dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or dtype in (torch.bool,) or dtype.is_complex:
        raise RegularkitError(f"dtype must be a real torch dtype (torch.float32, torch.uint8, ...), got {dtype!r}")
    return dtype


def to_dtype(x: torch.Tensor, dtype: torch.dtype = torch.float32, scale: bool = True) -> torch.Tensor:
    """``x`` as ``dtype``; with ``scale``, integer ranges map to [0, 1] and back (torchvision v2's rule)."""
    if x.dtype == dtype:
        return x
    if not scale:
        return x.to(dtype)
    if x.dtype.is_floating_point:
        if dtype.is_floating_point:
            return x.to(dtype)
        if (x.dtype == torch.float32 and dtype in (torch.int32, torch.int64)) or (
                x.dtype == torch.float64 and dtype == torch.int64):
            raise RegularkitError(f"cannot scale {x.dtype} to {dtype}: the float cannot hold every integer of it")
        return (x * (_max_value(dtype) + 1.0 - _FLOAT_EPS)).to(dtype)
    if dtype.is_floating_point:
        return x.to(dtype) * (1.0 / _max_value(x.dtype))
    raise RegularkitError(f"scale=True converts between integer and floating dtypes, got {x.dtype} to {dtype}: "
                          "pass scale=False for a plain integer cast")


def rescale(x: torch.Tensor, scale: float, offset: float = 0.0) -> torch.Tensor:
    """``x * scale + offset`` in floating point (an integer ``x`` is cast to the default float dtype first)."""
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    x = x * scale
    return x + offset if offset else x


class ToDtype(nn.Module):
    """torchvision v2's ``ToDtype(dtype, scale=True)`` as a layer: ``uint8`` [0, 255] -> ``float32`` [0, 1].

    ``scale`` defaults to True here (torchvision's default is False), because the point
    of the layer is the in-model uint8 -> float step; see :func:`to_dtype`.
    """

    def __init__(self, dtype: torch.dtype = torch.float32, *, scale: bool = True):
        super().__init__()
        self.dtype = _check_dtype(dtype)
        self.scale = check_bool("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return to_dtype(x, self.dtype, self.scale)

    def get_config(self) -> dict:
        return {"dtype": self.dtype, "scale": self.scale}

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, scale={self.scale}"


class Rescaling(nn.Module):
    """Keras' ``Rescaling(scale, offset=0.0)`` layer: ``x * scale + offset`` (see :func:`rescale`)."""

    def __init__(self, scale: float, offset: float = 0.0):
        super().__init__()
        self.scale = check_number("scale", scale)
        self.offset = check_number("offset", offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rescale(x, self.scale, self.offset)

    def get_config(self) -> dict:
        return {"scale": self.scale, "offset": self.offset}

    def extra_repr(self) -> str:
        return f"scale={self.scale}, offset={self.offset}"
