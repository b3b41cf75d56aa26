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


def generator_kwargs(generator: torch.Generator | None) -> dict:
    """``{"generator": generator}``, or nothing for the global RNG: the same numbers, and ``torch.compile``
    with a dynamic batch size needs it (torch 2.13's ``rand(..., generator=None)`` overload refuses a
    symbolic size: "SymIntArrayRef expected to contain only concrete integers")."""
    return {} if generator is None else {"generator": generator}


def rand(shape: Shape, *, device: torch.device | str, generator: torch.Generator | None) -> torch.Tensor:
    """U[0, 1) float32 numbers of ``shape`` on ``device``."""
    out = torch.rand(_shape(shape), **generator_kwargs(generator), device=draw_device(device, generator),
                     dtype=DRAW_DTYPE)
    return _moved(out, device)


def randn(shape: Shape, *, device: torch.device | str, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, 1) float32 numbers of ``shape`` on ``device``."""
    out = torch.randn(_shape(shape), **generator_kwargs(generator), device=draw_device(device, generator),
                      dtype=DRAW_DTYPE)
    return _moved(out, device)


def keep_mask(shape: Shape, keep: float, *, device: torch.device | str,
              generator: torch.Generator | None) -> torch.Tensor:
    """Boolean Bernoulli(``keep``) mask: ``True`` where a unit survives."""
    return rand(shape, device=device, generator=generator) < keep


def seed_from(generator: torch.Generator | None, device: torch.device | str = "cpu") -> int:
    """One integer drawn from ``generator`` (or the global RNG): seeds a sampler torch cannot drive."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=draw_device(device, generator)).item())


def log_gamma(concentration: torch.Tensor, *, device: torch.device | str,
              generator: torch.Generator | None) -> torch.Tensor:
    """Logarithms of Gamma(a, 1) draws, ``a = concentration`` (any shape), float32 on ``device``.

    ``log G = log G' + log(U) / a`` with ``G' ~ Gamma(a + 1, 1)`` and ``U ~ U(0, 1]``
    (Marsaglia & Tsang 2000's boost, exact for every ``a > 0``): in log space a small
    ``a`` stays finite where ``G`` itself underflows float32 (``a = 1e-5`` gives
    ``G < 1e-38`` almost always, and ``G1 / (G1 + G2)`` would read 0/0).  torch's own
    sampler (``torch._standard_gamma``, what ``torch.distributions.Gamma`` calls)
    takes the generator, so the draw is a pure function of its state, and
    ``torch.compile`` traces it unseeded (no host sync).
    """
    conc = concentration.to(device=draw_device(device, generator), dtype=DRAW_DTYPE)
    boosted = torch._standard_gamma(conc + 1, **generator_kwargs(generator))
    u = 1 - torch.rand(conc.shape, **generator_kwargs(generator), device=conc.device, dtype=DRAW_DTYPE)  # (0, 1]
    return _moved(boosted.log() + u.log() / conc, device)


def dirichlet(n: int, concentration: Sequence[float], *, device: torch.device | str,
              generator: torch.Generator | None) -> torch.Tensor:
    """``n`` Dirichlet(concentration) rows, n x K float32 on ``device``: K Gamma draws normalised to sum 1
    (a softmax of their logarithms, :func:`log_gamma`)."""
    where = draw_device(device, generator)
    conc = torch.tensor([float(c) for c in concentration], dtype=DRAW_DTYPE, device=where).expand(n, -1)
    return _moved(torch.softmax(log_gamma(conc, device=where, generator=generator), -1), device)


def beta(n: int, alpha: float, *, device: torch.device | str, generator: torch.Generator | None) -> torch.Tensor:
    """``n`` Beta(alpha, alpha) draws, float32 on ``device``: ``G1 / (G1 + G2)`` of two Gamma(alpha, 1) draws.

    The first column of :func:`dirichlet` with ``(alpha, alpha)``; graph-break free
    under ``torch.compile``.  (Until issue 24 a NumPy generator seeded through
    ``.item()`` drew it: the same law, another stream of numbers.)
    """
    return dirichlet(n, (alpha, alpha), device=device, generator=generator)[:, 0].contiguous()


def check_generator(generator) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise RegularkitError(f"generator must be a torch.Generator or None, got {generator!r}")
    return generator
