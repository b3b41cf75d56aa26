"""Where random numbers come from: one set of helpers for every noise layer and augmentation.

One rule holds everywhere in regularkit:

* ``generator=None`` draws from torch's global RNG on the target device (what
  the training loop forks and seeds); an explicit ``torch.Generator`` makes a
  draw reproducible on its own: same generator state, same numbers.
* A draw happens on the generator's device and is then moved to the target
  device (torch requires the generator and the output to share a device), so
  a CPU generator drives CUDA data too: slower, never an error.
* Numbers are drawn in float32 whatever the dtype of the data and cast by the
  caller: a bfloat16 uniform has only 8 significant bits (it would bias a drop
  fraction), and float32 draws make a mask identical across dtypes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from regularkit.errors import RegularkitError

DRAW_DTYPE = torch.float32

Shape = int | Sequence[int]


def _shape(shape: Shape) -> tuple[int, ...]:
    return (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)


def same_device(a: torch.device | str, b: torch.device | str) -> bool:
    """``"cuda"`` and ``"cuda:0"`` name the same device (``torch.device`` equality says they differ)."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    return a.index is None or b.index is None or a.index == b.index


def draw_device(device: torch.device | str, generator: torch.Generator | None) -> torch.device:
    """Where a draw happens: the generator's device if given, else ``device``."""
    return torch.device(device) if generator is None else generator.device


def _moved(t: torch.Tensor, device) -> torch.Tensor:
    return t if same_device(t.device, device) else t.to(device)


def rand(shape: Shape, *, device: torch.device | str, generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) float32 numbers of ``shape`` on ``device``."""
    out = torch.rand(_shape(shape), generator=generator, device=draw_device(device, generator), dtype=DRAW_DTYPE)
    return _moved(out, device)


def randn(shape: Shape, *, device: torch.device | str, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, 1) float32 numbers of ``shape`` on ``device``."""
    out = torch.randn(_shape(shape), generator=generator, device=draw_device(device, generator), dtype=DRAW_DTYPE)
    return _moved(out, device)


def keep_mask(shape: Shape, keep: float, *, device: torch.device | str,
              generator: torch.Generator | None) -> torch.Tensor:
    """Boolean Bernoulli(``keep``) mask: ``True`` where a unit survives."""
    return rand(shape, device=device, generator=generator) < keep


def seed_from(generator: torch.Generator | None, device: torch.device | str = "cpu") -> int:
    """One integer drawn from ``generator`` (or the global RNG): seeds a sampler torch cannot drive."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=draw_device(device, generator)).item())


def beta(n: int, alpha: float, *, device: torch.device | str, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` Beta(alpha, alpha) draws, float32 on ``device``.

    torch's Beta/Gamma samplers take no ``generator``; a private NumPy
    ``Generator`` seeded from one draw of ``generator`` keeps the result a pure
    function of the torch generator's state (NumPy's global RNG is never used).
    """
    lam = np.random.default_rng(seed_from(generator, device)).beta(alpha, alpha, size=n)
    return torch.as_tensor(lam, dtype=DRAW_DTYPE).to(device)


def check_generator(generator) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise RegularkitError(f"generator must be a torch.Generator or None, got {generator!r}")
    return generator
