"""Distributed and compiled training: which rank this process is, its own random stream, the bare model.

Under DistributedDataParallel every rank runs the same code with the same
seed; a noise layer or an augmentation seeded with ``seed=s`` on every rank
would then draw the *same* masks on every rank, so the ranks' gradients would
average over one mask instead of ``world_size`` of them.  PyTorch's own
dropout avoids this only because each rank's global RNG is usually seeded
differently; timm seeds ``seed + rank`` for the same reason.  regularkit's rule:
a ``seed=`` given to a layer or an augmentation is the seed of rank 0, and rank
``r`` draws from ``rank_seed(seed) = seed + r * RANK_STRIDE`` (a large stride, so
consecutive user seeds never meet another rank's stream).  Outside a process
group the rank is 0 and nothing changes.

Wrappers: ``DistributedDataParallel`` (and ``DataParallel``) keep the model in
``.module``; ``torch.compile`` returns an ``OptimizedModule`` holding it in
``._orig_mod``.  :func:`unwrap_model` peels both, so weight averaging and
ensembles work on the parameters themselves and never deep-copy a wrapper.
:func:`bare_model` is the bare model after checking that no wrapper hides
*inside* it (one it cannot peel), and :func:`bare_copy` its deep copy: what
``EMA``, ``SWA`` and ``SnapshotEnsemble`` keep.  A DDP wrapper must never be
copied: the copy would hold a process group and a gradient reducer of its own,
and its forward would start collectives that the other ranks never join.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from regularkit._util.checks import check_int
from regularkit.errors import RegularkitError

__all__ = ["RANK_STRIDE", "rank", "world_size", "rank_seed", "rank_generator", "unwrap_model", "is_wrapped",
           "bare_model", "bare_copy"]

#: Distance between the random streams of consecutive ranks for one user seed.
RANK_STRIDE = 1_000_003


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's rank in the default process group (0 outside one)."""
    return torch.distributed.get_rank() if _initialized() else 0


def world_size() -> int:
    """The number of processes in the default process group (1 outside one)."""
    return torch.distributed.get_world_size() if _initialized() else 1


def rank_seed(seed: int) -> int:
    """The seed this rank uses for a user's ``seed``: ``seed + rank * RANK_STRIDE`` (``seed`` on rank 0)."""
    return check_int("seed", seed, minimum=0) + rank() * RANK_STRIDE


def rank_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`rank_seed` (each rank its own stream)."""
    return torch.Generator(device=device).manual_seed(rank_seed(seed))


_WRAPPERS = (nn.parallel.DistributedDataParallel, nn.DataParallel)


def is_wrapped(model: nn.Module) -> bool:
    """Whether ``model`` is a DDP / DataParallel wrapper or a ``torch.compile`` module."""
    return isinstance(model, _WRAPPERS) or hasattr(model, "_orig_mod")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside DDP / DataParallel (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, _WRAPPERS):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def bare_model(model: nn.Module) -> nn.Module:
    """:func:`unwrap_model`, refusing a DDP / DataParallel wrapper nested inside the bare model.

    Raises :class:`~regularkit.errors.RegularkitError` naming the submodule: wrap the
    whole model once (``DDP(model)``), never a part of it.
    """
    if not isinstance(model, nn.Module):
        raise RegularkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    bare = unwrap_model(model)
    for name, sub in bare.named_modules():
        if isinstance(sub, _WRAPPERS):
            raise RegularkitError(f"cannot copy a model with a wrapper inside it: submodule {name!r} is a "
                                  f"{type(sub).__name__}; wrap the whole model once instead of a part of it")
    return bare


def bare_copy(model: nn.Module) -> nn.Module:
    """A deep copy of :func:`bare_model` ``(model)``: never a copy of a wrapper."""
    return copy.deepcopy(bare_model(model))
