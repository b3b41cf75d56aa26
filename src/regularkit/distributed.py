"""Data-parallel training helpers (public): this process's rank, its own random stream, the bare model.

Under ``DistributedDataParallel`` every rank runs the same script with the same seed.
regularkit's rule is that a ``seed=`` is rank 0's seed: rank ``r`` draws from
``rank_seed(seed) = seed + r * RANK_STRIDE``, so each rank drops different units and
crops different patches while staying reproducible, and a single process (rank 0)
draws exactly what ``seed`` alone gives.  timm seeds each rank's *global* RNG with
``seed + rank`` (``random_seed``); here the seed goes to a generator you own, so the
global RNG is left alone.

>>> from regularkit.distributed import rank_generator
>>> flip = rank_generator(0)            # after init_process_group: this rank's stream
>>> x, y = augment(x, y, generator=flip)

The implementation lives in :mod:`regularkit._util.distributed`, which the noise
layers, augmentations and averaging wrappers import; this module is the promised
import path (docs/distributed.md, "Data-parallel training").
"""
from __future__ import annotations

from regularkit._util.distributed import (
    RANK_STRIDE,
    bare_copy,
    bare_model,
    is_wrapped,
    rank,
    rank_generator,
    rank_seed,
    unwrap_model,
    world_size,
)

__all__ = ["RANK_STRIDE", "rank", "world_size", "rank_seed", "rank_generator", "unwrap_model", "is_wrapped",
           "bare_model", "bare_copy"]
