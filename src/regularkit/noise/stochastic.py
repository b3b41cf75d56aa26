"""Randomness of the noise layers: the ``seed=`` / ``generator=`` mixin, and one generator for a whole model.

Every technique in :mod:`regularkit.noise` draws its noise through
:mod:`regularkit._util.rng` (the one rule: ``generator=None`` uses torch's
global RNG, an explicit generator makes a draw reproducible on its own, draws
happen in float32 on the generator's device and are moved to the data).

:class:`Stochastic` is the mixin of the modules: ``seed=`` or ``generator=``,
a lazily created generator (so copies and pickles carry their own state, the
Optuna habit), and :func:`use_generator`, which Monte Carlo prediction uses to
drive every noise layer of a model from one generator.

Configs (Keras' ``get_config`` / ``from_config``): the constructor arguments,
read once here for every layer from the constructor's signature.  ``seed`` is
config, a ``generator`` object is not: a layer built with ``generator=``
gives ``seed=None`` and its rebuild draws from torch's global RNG (pass a
generator again, or build with ``seed=`` to make configs reproducible).
``device`` and ``dtype`` (the DropConnect layers' weights) are placement, not
config: move the rebuilt layer with ``.to()`` and load its ``state_dict()``,
as for any module.  ``from_config(get_config())`` then behaves as the
original: same seed, same masks.

State: the private generator of a seeded layer travels in the layer's ``state_dict()``
(``_extra_state``, through ``get_extra_state`` / ``set_extra_state``), so a checkpoint
saved with ``torch.save(model.state_dict())`` and loaded into a freshly built model
resumes the same random stream: the next masks are the ones the saved model would have
drawn (Lightning's checkpoints are ``state_dict``s, so a resumed ``Trainer`` continues
too).  The extra state is a 1-D ``uint8`` tensor, not a dict, so code that copies a
``state_dict`` tensor by tensor (early stopping's best weights, snapshots) keeps working:
``torch.Generator.get_state()`` followed by 8 bytes naming the rank that saved it.  An
unseeded layer, or a seeded one that has not drawn yet, has nothing to resume and no
``_extra_state`` entry, so its ``state_dict`` is the plain layer's (a
``DropConnectLinear``'s loads into an ``nn.Linear`` and back); loading a ``state_dict``
without the entry restarts a seeded layer's ``seed`` stream, as the saved layer would
have.  Loading a generator state saved by another rank (a checkpoint written by rank 0,
loaded on every rank) restarts this rank's own ``rank_seed(seed)``
stream instead of copying rank 0's, which would make every rank draw the same masks.
A ``generator=`` passed by the caller is the caller's: it is neither saved nor
overwritten.  A ``state_dict`` saved before this existed (no ``_extra_state``) still
loads, strict or not.  torch's
``Generator`` states are per device type: a CPU state loads into a layer drawing on
the CPU, a CUDA state into one drawing on CUDA; the other way round is an error.

Data-parallel training: a ``seed=`` is the seed of rank 0.  The private
generator is seeded with :func:`regularkit._util.distributed.rank_seed`
(``seed + rank * RANK_STRIDE``), so under DistributedDataParallel every rank
drops different units (``world_size`` masks per step, as with a batch
``world_size`` times larger) while each rank stays reproducible.  Rank 0,
and any run outside a process group, draws exactly what ``seed`` alone gave
before.  The rank is read when the generator is created (the first forward,
or the first after :meth:`Stochastic.reset_generator`), so build the model
before or after ``init_process_group`` as you like, but run it after.  timm
seeds each rank's *global* RNG with ``seed + rank`` (its ``random_seed``);
here the layer owns its generator, so the layer applies the rank.

torch.compile: torch 2.13's dynamo cannot trace a ``torch.Generator`` (a draw from one
is a graph break, creating or seeding one inside a graph is an "opaque object").
:func:`break_before_draw` is the one guard, used by the noise layers and by the
augmentations alike: while compiling, it breaks the graph just before such a draw
with regularkit's message (:func:`generator_not_traceable`: why, and the fix), so
``fullgraph=True`` raises that message instead of torch's, and without ``fullgraph``
the draw runs eagerly between graphs (the eager stream, exactly).
"""
from __future__ import annotations

import contextlib
import inspect
from typing import Any, Iterator

import torch
from torch import nn

from regularkit._util.checks import check_int
from regularkit._util.distributed import SeededStream
from regularkit._util.rng import check_generator, seed_from
from regularkit.errors import RegularkitError


def generator_not_traceable(what: str, unit: str) -> str:
    """The message of the graph break before a draw from a torch.Generator: ``what`` draws, build the ``unit`` so."""
    return (f"regularkit: this {what} draws from a torch.Generator (seed= or generator=), which torch.compile "
            f"cannot trace (torch 2.13: graph break at the draw); the draw runs eagerly between graphs. For one "
            f"graph (fullgraph=True), build the {unit} with seed=None, call it without generator=, and seed "
            f"torch's global RNG (torch.manual_seed)")


def break_before_draw(message: str) -> None:
    """Under ``torch.compile``, a graph break with ``message``; eagerly, nothing (see the module docstring)."""
    if torch.compiler.is_compiling():
        torch._dynamo.graph_break(msg=message)


def check_float_tensor(name: str, x) -> torch.Tensor:
    """Noise only makes sense on floating tensors (an int mask times 1/keep would truncate)."""
    if not isinstance(x, torch.Tensor):
        raise RegularkitError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise RegularkitError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    return x


class Stochastic(SeededStream, nn.Module):
    """Base of the noise modules: resolves ``seed=`` / ``generator=`` to a generator.

    ``seed`` creates a private ``torch.Generator`` on the device of the first
    input, lazily, seeded with ``rank_seed(seed)`` (``seed`` itself on rank 0 and
    outside a process group; see the module docstring): two modules built with
    the same seed produce the same masks on one rank and different masks on
    different ranks, and a deep copy or a pickle carries the generator's state
    with it (a layer unpickled on another rank continues the stream it carries;
    :meth:`reset_generator` restarts it on the new rank's own).  Neither given:
    torch's global RNG, which the training loop seeds.  An explicit ``generator``
    is used as given, on every rank (use
    :func:`regularkit.distributed.rank_generator` for one per rank).  A seeded
    layer's generator state is in its ``state_dict`` (see the module docstring).
    """

    def __init__(self, *, seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__()
        self._init_randomness(seed, generator)

    def _init_randomness(self, seed: int | None, generator: torch.Generator | None) -> None:
        # Separate from __init__ so layers that also derive from nn.Linear / nn.Conv2d
        # (whose __init__ runs first and knows nothing of seeds) can call it afterwards.
        if seed is not None and generator is not None:
            raise RegularkitError(f"give seed or generator, not both; got seed={seed} and a generator")
        self.seed = None if seed is None else check_int("seed", seed, minimum=0)
        self.generator = check_generator(generator)
        self._override: torch.Generator | None = None
        self._pending_state: torch.Tensor | None = None  # a loaded stream, set when the generator is made

    def _generator_for(self, device: torch.device) -> torch.Generator | None:
        if self._override is not None:
            return self._override
        if self.generator is None and self.seed is not None:
            self.generator = self.new_stream(device)  # rank_seed(seed)'s start, or a stream loaded from a state_dict
        return self.generator

    def private_generator(self) -> torch.Generator | None:
        """The generator made from ``seed=`` (None before the first draw, and for a caller's ``generator=``)."""
        return self.generator if self.seed is not None else None

    def reset_generator(self) -> None:
        """Forget the private generator: the next forward restarts this rank's ``seed`` stream."""
        if self.seed is not None:
            self.generator = None
            self.forget_stream()

    def __setstate__(self, state):
        state.setdefault("_override", None)
        state.setdefault("_pending_state", None)
        super().__setstate__(state)

    #: constructor arguments that are not config: a generator object, and where/in what precision weights live
    _not_config = ("generator", "device", "dtype")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments by name, from the attributes of the same name (see the module docstring).

        A bool argument that torch keeps as a parameter (``nn.Linear``'s ``bias=True``
        becomes the ``bias`` tensor, or ``None``) is saved as whether it exists.
        """
        config = {}
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or name in self._not_config or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            value = getattr(self, name)
            if isinstance(param.default, bool) and not isinstance(value, bool):
                value = value is not None
            config[name] = value
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Stochastic":
        """A new layer from :meth:`get_config`'s dict (fresh weights: load the ``state_dict`` to copy them)."""
        if not isinstance(config, dict):
            raise RegularkitError(f"config must be a dict of constructor arguments, got {config!r}")
        return cls(**config)


@contextlib.contextmanager
def use_generator(model: nn.Module, generator: torch.Generator | None) -> Iterator[None]:
    """Within the block, every regularkit noise layer of ``model`` draws from ``generator``.

    torch's own dropout layers cannot take a generator; the global RNG is forked
    and seeded from ``generator`` instead, so they are reproducible too.
    """
    if generator is None:
        yield
        return
    layers = [m for m in model.modules() if isinstance(m, Stochastic)]
    seed = seed_from(generator)
    previous = [m._override for m in layers]
    # Fork (and seed) CUDA's RNG only when CUDA is already in use: never initialise it for a CPU model.
    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    devices = list(range(torch.cuda.device_count())) if cuda else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.random.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.manual_seed_all(seed)
            for m in layers:
                m._override = generator
            yield
    finally:
        for m, p in zip(layers, previous):
            m._override = p
