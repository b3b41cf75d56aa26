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
           "bare_model", "bare_copy", "SeededStream"]

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


# --------------------------------------------------------------------------- a seeded stream in the state_dict
def _set_state(generator: torch.Generator, state: torch.Tensor) -> None:
    try:
        generator.set_state(state)
    except RuntimeError as err:
        raise RegularkitError(f"cannot resume a random stream of {state.numel()} bytes on a {generator.device.type} "
                              f"generator (saved on another device type?): {str(err).splitlines()[0]}") from None


class SeededStream:
    """Mixin for an ``nn.Module`` owning a private generator made from ``seed=``: its stream in ``state_dict()``.

    The one implementation behind the noise layers (:class:`regularkit.noise.stochastic.Stochastic`)
    and the augmentations (:class:`regularkit.augment.base.Augmentation`).  The host sets
    ``seed`` (int or None) and ``_pending_state = None``, creates its generator with
    :meth:`new_stream` and returns it from :meth:`private_generator`; its ``reset_generator()``
    forgets it (and calls :meth:`forget_stream`).  ``_extra_state`` is one 1-D ``uint8``
    tensor (so code copying a ``state_dict`` tensor by tensor keeps working):
    ``torch.Generator.get_state()`` then 8 bytes naming the rank that saved it.  Nothing to
    resume (unseeded, or no draw yet): no entry, so the ``state_dict`` is the plain module's.
    Loading a state without the entry restarts the ``seed`` stream; loading another rank's
    stream restarts this rank's own ``rank_seed(seed)`` stream instead of copying it (a
    checkpoint written by rank 0 would otherwise make every rank draw rank 0's masks).
    """

    seed: int | None = None
    _pending_state: torch.Tensor | None = None

    def private_generator(self) -> torch.Generator | None:  # pragma: no cover - the host's
        raise NotImplementedError

    def new_stream(self, device: torch.device | str) -> torch.Generator:
        """The private generator on ``device``: a loaded stream if one waits, else ``rank_seed(seed)``'s start."""
        pending, self._pending_state = self._pending_state, None
        if pending is None:
            return rank_generator(self.seed, device)
        generator = torch.Generator(device=device)
        _set_state(generator, pending)
        return generator

    def forget_stream(self) -> None:
        self._pending_state = None

    def get_extra_state(self) -> torch.Tensor:
        generator = self.private_generator() if self.seed is not None else None
        state = generator.get_state() if generator is not None else self._pending_state
        if self.seed is None or state is None:
            return torch.empty(0, dtype=torch.uint8)
        return torch.cat([state.cpu(), torch.tensor([rank()], dtype=torch.int64).view(torch.uint8)])

    def set_extra_state(self, state) -> None:
        if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8 or state.dim() != 1:
            raise RegularkitError(f"{type(self).__name__} extra state must be a 1-D uint8 tensor (a generator state), "
                                  f"got {state!r}")
        if state.numel() == 0:  # saved unseeded or before any draw: the stream starts from its seed
            self.reset_generator()
            return
        if self.seed is None:
            raise RegularkitError(f"the state_dict holds the random stream of a seeded {type(self).__name__}, but this "
                                  f"one has seed=None: build it with the saved one's seed= to resume that stream")
        if int(state[-8:].clone().view(torch.int64)) != rank():  # another rank's stream: restart this rank's own
            self.reset_generator()
            return
        self.reset_generator()
        self._pending_state = state[:-8].clone()  # set when the generator is made, on the data's device

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        key = prefix + "_extra_state"
        value = destination.get(key)
        if isinstance(value, torch.Tensor) and value.numel() == 0:
            del destination[key]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        key = prefix + "_extra_state"
        had = key in state_dict
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if not had:
            if key in missing_keys:
                missing_keys.remove(key)
            self.reset_generator()
