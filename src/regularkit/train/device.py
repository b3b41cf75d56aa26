"""Where training runs and in which precision: ``--device auto|cpu|cuda|mps``, ``--precision auto|fp32|bf16|fp16``.

Mixed precision is PyTorch's automatic mixed precision: the forward pass and the
loss run under ``torch.autocast`` in bfloat16 or float16 (matrix products in the
low precision, reductions and the loss in float32), the weights and the
optimizer stay float32.  float16 has 5 exponent bits, so small gradients
underflow: it needs loss scaling (``torch.amp.GradScaler``: multiply the loss
by S before ``backward``, unscale the gradients before the step, skip steps
with inf/NaN gradients and lower S).  bfloat16 has float32's exponent range and
needs no scaling.  Measuring (``evaluate``) runs under the same autocast but
computes the cross-entropy on float32 logits.

``"auto"`` (:func:`resolve_precision`) is bf16 where the device multiplies
bf16 matrices natively and fp32 everywhere else (:func:`native_bf16`), with a
reason the plan prints.  bf16 is only worth it where it is native: on a CPU
without bf16 instructions oneDNN emulates it, and a speed-run step measured 11x
slower than fp32 (3.2 s against 0.29 s, docs/speedrun.md).  What counts as native:

* CUDA: compute capability 8.0 or newer (Ampere: bf16 tensor cores); on ROCm
  what ``torch.cuda.is_bf16_supported(including_emulation=False)`` says.
* x86 CPU: the ``avx512_bf16`` or ``amx_bf16`` flag that Linux reports in
  ``/proc/cpuinfo`` (the kernel's documented interface; it lists only what the
  OS enabled and a VM exposes), oneDNN in this torch
  (``torch.backends.mkldnn.is_available()``), and no ``ONEDNN_MAX_CPU_ISA``
  capping oneDNN below those instructions.  torch's documented
  ``torch.backends.cpu.get_cpu_capability()`` says ``"AVX512"`` with and without
  bf16, and ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` (private) is true on
  every AVX-512 CPU, where bf16 is still emulated: neither can decide.
* Elsewhere (macOS, Windows, Arm CPUs, Apple's MPS) bf16 is not assumed: we
  cannot read the flags there (macOS, Windows) or have not measured it (Arm's
  ``bf16`` extension, MPS), and a default must not rest on an unchecked feature.
  ``--precision bf16`` still asks for it.

Data: a split that fits in a quarter of the device's free memory is moved to the
device once; a larger one stays on the CPU and each batch is moved as it is used.
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from regularkit._util.checks import check_choice
from regularkit._util.environment import cpu_model
from regularkit.errors import RegularkitError

__all__ = ["DEVICES", "PRECISIONS", "MODES", "resolve_device", "Precision", "fits_on_device", "cpu_flags",
           "cpu_capability", "native_bf16", "resolve_precision"]

DEVICES = ("auto", "cpu", "cuda", "mps")
#: What a run is trained in (``Precision``).
MODES = ("fp32", "bf16", "fp16")
#: What may be asked for: a mode, or ``"auto"`` (:func:`resolve_precision` picks the mode for the device).
PRECISIONS = ("auto", *MODES)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: Move a tensor to the device once only if it takes at most this share of the free memory.
DEVICE_MEMORY_SHARE = 0.25
#: ``ONEDNN_MAX_CPU_ISA`` values that leave oneDNN its bf16 instructions (oneDNN's documented names).
_BF16_ISAS = frozenset({"ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512", "AVX512_CORE_AMX",
                        "AVX10_1_512_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
                        "AVX10_2_512_AMX_2"})


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


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them in ``/proc/cpuinfo`` (x86 ``flags``, Arm ``Features``).

    Empty where there is no ``/proc/cpuinfo`` (macOS, Windows).
    """
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_capability(flags: frozenset[str] | None = None) -> str:
    """The CPU's vector level for tables: ``AMX``, ``AVX-512 BF16``, ``AVX-512``, ``AVX2``, else torch's word for it."""
    flags = cpu_flags() if flags is None else flags
    for flag, label in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx512f", "AVX-512"),
                        ("avx2", "AVX2")):
        if flag in flags:
            return label
    return torch.backends.cpu.get_cpu_capability()


def _cpu_bf16() -> tuple[bool, str]:
    flags = cpu_flags()
    where = f"this CPU ({cpu_model()}, {cpu_capability(flags)})"
    if platform.machine().lower() in ("arm64", "aarch64"):
        return False, f"{where}: bf16 speed on Arm CPUs is not measured here, so bf16 is not assumed"
    if not flags:
        return False, f"{where}: its feature flags cannot be read on {sys.platform}, so bf16 is not assumed"
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return False, f"{where} has no native bf16 matmuls (bf16 would be emulated)"
    if not torch.backends.mkldnn.is_available():
        return False, f"{where} has bf16 instructions, but this torch has no oneDNN to use them"
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        cap = os.environ.get(name)
        if cap is not None and cap.strip().upper() not in _BF16_ISAS:
            return False, f"{where} has bf16 instructions, but {name}={cap} keeps oneDNN from them"
    return True, f"{where} has native bf16 matmuls"


def _cuda_bf16(device: torch.device) -> tuple[bool, str]:
    name = torch.cuda.get_device_name(device)
    if torch.version.hip:
        with torch.cuda.device(device):
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        return native, f"{name} {'has' if native else 'has no'} native bf16"
    major, minor = torch.cuda.get_device_capability(device)
    if (major, minor) >= (8, 0):
        return True, f"{name} (compute capability {major}.{minor}) has native bf16"
    return False, f"{name} (compute capability {major}.{minor}) has no native bf16 (it needs 8.0, Ampere)"


def native_bf16(device: str | torch.device) -> tuple[bool, str]:
    """Whether ``device`` multiplies bf16 matrices natively, and why (module docstring): ``(native, reason)``."""
    device = resolve_device(device)
    if device.type == "cuda":
        return _cuda_bf16(device)
    if device.type == "cpu":
        return _cpu_bf16()
    return False, f"{device.type}: native bf16 is not checked on this device, so it is not assumed"


def resolve_precision(requested: str, device: str | torch.device) -> tuple[str, str]:
    """The mode to train in and a short reason for the plan line: ``("fp32", "fp32: this CPU (...) has no ...")``.

    ``"auto"`` is bf16 where :func:`native_bf16` says so, else fp32.  A mode asked for
    is kept; asking for bf16 where it is emulated is allowed, and the reason says so.
    """
    requested = check_choice("precision", requested, PRECISIONS)
    if requested == "fp32" or requested == "fp16":
        return requested, f"{requested}: asked for"
    native, why = native_bf16(device)
    if requested == "bf16":
        return "bf16", "bf16: asked for" if native else f"bf16: asked for, though {why}: expect it slower than fp32"
    return ("bf16" if native else "fp32"), f"{'bf16' if native else 'fp32'}: {why}"


@dataclass(frozen=True)
class Precision:
    """Autocast and loss scaling for one precision on one device type."""

    name: str = "fp32"
    device_type: str = "cpu"

    def __post_init__(self):
        if self.name == "auto":
            raise RegularkitError("precision 'auto' is chosen per device: pass what "
                                  "regularkit.train.device.resolve_precision('auto', device) returns")
        check_choice("precision", self.name, MODES)

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
