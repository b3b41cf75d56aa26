"""Where training runs and in which precision: ``--device auto|cpu|cuda|mps``, ``--precision fp32|bf16|fp16``.

Mixed precision is PyTorch's automatic mixed precision: the forward pass and the
loss run under ``torch.autocast`` in bfloat16 or float16 (matrix products in the
low precision, reductions and the loss in float32), the weights and the
optimizer stay float32.  float16 has 5 exponent bits, so small gradients
underflow: it needs loss scaling (``torch.amp.GradScaler``: multiply the loss
by S before ``backward``, unscale the gradients before the step, skip steps
with inf/NaN gradients and lower S).  bfloat16 has float32's exponent range and
needs no scaling.  Measuring (``evaluate``) runs under the same autocast but
computes the cross-entropy on float32 logits.

Data: a split that fits in a quarter of the device's free memory is moved to the
device once; a larger one stays on the CPU and each batch is moved as it is used.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from regularkit._util.checks import check_choice
from regularkit.errors import RegularkitError

__all__ = ["DEVICES", "PRECISIONS", "resolve_device", "Precision", "fits_on_device"]

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: Move a tensor to the device once only if it takes at most this share of the free memory.
DEVICE_MEMORY_SHARE = 0.25


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when present, else MPS, else the CPU; a named device must exist."""
    if isinstance(device, torch.device):
        return device
    name = check_choice("device", device, DEVICES)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RegularkitError("device 'cuda' asked for, but torch sees no CUDA device "
                              f"(torch {torch.__version__}); use --device cpu or auto")
    if name == "mps" and not _mps_available():
        raise RegularkitError("device 'mps' asked for, but this torch has no Apple MPS backend; use --device cpu or auto")
    return torch.device(name)


@dataclass(frozen=True)
class Precision:
    """Autocast and loss scaling for one precision on one device type."""

    name: str = "fp32"
    device_type: str = "cpu"

    def __post_init__(self):
        check_choice("precision", self.name, PRECISIONS)

    @property
    def dtype(self) -> torch.dtype | None:
        return _DTYPES.get(self.name)

    def autocast(self):
        """``torch.autocast`` in this precision (a null context for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler | None:
        """A loss scaler for fp16, else None (bf16 and fp32 need none)."""
        return torch.amp.GradScaler(self.device_type) if self.name == "fp16" else None


def fits_on_device(*tensors: torch.Tensor, device: torch.device) -> bool:
    """Whether ``tensors`` together fit in :data:`DEVICE_MEMORY_SHARE` of ``device``'s free memory."""
    if device.type != "cuda":
        return True  # CPU data is already there; MPS shares the host's memory
    free, _ = torch.cuda.mem_get_info(device)
    return sum(t.numel() * t.element_size() for t in tensors) <= DEVICE_MEMORY_SHARE * free
