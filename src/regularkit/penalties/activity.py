"""Activity penalties: L1 / L2 on hidden representations (Keras' ``activity_regularizer``).

Representational sparsity (Goodfellow et al. 2016, sec. 7.10):
``J~ = J + lambda * ||h||_1`` where ``h`` are a layer's outputs, not its weights.

Scaling, as Keras 3: ``Layer.__call__`` (keras/src/layers/layer.py, since Keras 3.14,
keras-team/keras#22021) adds ``activity_regularizer(output) / batch_size`` for every
output with ``ndim > 0``, ``batch_size = output.shape[0]`` and 0 for an empty batch
(``ops.divide_no_nan``); tf.keras 2 divided by the batch size too, Keras 3.0-3.13 did
not.  So the default ``reduction="mean"`` is ``(l1 * sum|h| + l2 * sum h^2) / B`` per
output: the strength means the same at any batch size.  ``reduction="sum"`` keeps
the plain sum (Keras 3.0-3.13), ``B`` times stronger.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from regularkit._util.checks import check_choice
from regularkit.errors import RegularkitError
from regularkit.penalties.functional import elastic_net_penalty, per_example
from regularkit.penalties.schedule import Scheduled, Strength, check_strength

__all__ = ["ActivityPenalty", "REDUCTIONS"]

#: ``"mean"``: each output's term divided by its batch size (Keras 3); ``"sum"``: not divided.
REDUCTIONS = ("mean", "sum")


class ActivityPenalty(Scheduled):
    """Penalty on chosen modules' outputs h: ``(l1 * sum|h| + l2 * sum h^2) / B`` (Keras 3 ``activity_regularizer``).

    Lifecycle.  Construction attaches a forward hook to each module (``detach()`` removes
    them, ``attach()`` puts them back; also a context manager).  Every forward of a hooked
    module *in training mode* adds its term to a running total; eval-mode forwards add
    nothing, so validation passes never leak into a training loss.  ``penalty(model)``
    returns the total and clears it, so each batch starts empty; ``value`` peeks without
    clearing, and ``reset()`` drops a total that will not be used (an aborted batch).
    ``reduction="mean"`` (default) divides each output's term by its batch size ``B``
    (dim 0; 0 for an empty batch; a 0-d output is not divided), as Keras 3 (>= 3.14) and
    tf.keras 2 do -- not the mean over every element; ``"sum"`` leaves it undivided.
    Dim 0 is the batch, as in Keras, whose tensors are batch-first: for an RNN with
    ``batch_first=False`` it is time.  Outputs are the module's tensor, or the tensors
    directly inside a returned tuple/list (nested ones, e.g. an LSTM's ``(h, c)``, are
    not penalised).  ``schedule_unit``: how ``fit`` advances scheduled strengths.
    """

    def __init__(self, modules: nn.Module | Sequence[nn.Module], *, l1: Strength = 0.0,
                 l2: Strength = 0.0, reduction: str = "mean", schedule_unit: str = "step"):
        mods = ([modules] if isinstance(modules, nn.Module)
                else list(modules) if isinstance(modules, (list, tuple)) else None)
        if not mods or not all(isinstance(m, nn.Module) for m in mods):
            raise RegularkitError(f"modules must be an nn.Module or a non-empty list of them, got {modules!r}")
        self.modules = mods
        self.l1 = check_strength("l1", l1)
        self.l2 = check_strength("l2", l2)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.init_schedule(schedule_unit)
        self._terms: list[Tensor] = []
        self._handles: list = []
        self.attach()

    def attach(self) -> "ActivityPenalty":
        """Register the forward hooks (no-op when already attached)."""
        if not self._handles:
            self._handles = [m.register_forward_hook(self._hook) for m in self.modules]
        return self

    def detach(self) -> None:
        """Remove the forward hooks and drop any accumulated value."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._terms = []

    def _hook(self, module, inputs, output):
        if not module.training:
            return
        outs = output if isinstance(output, (tuple, list)) else (output,)
        l1, l2 = self.strength_now("l1", self.l1), self.strength_now("l2", self.l2)
        for h in outs:
            if isinstance(h, Tensor):
                term = elastic_net_penalty([h], l1=l1, l2=l2)
                self._terms.append(per_example(term, h) if self.reduction == "mean" else term)

    @property
    def value(self) -> Tensor:
        """The total accumulated since the last read or reset, without clearing it."""
        return torch.stack(self._terms).sum() if self._terms else torch.zeros(())

    def reset(self) -> None:
        self._terms = []

    def __call__(self, model: nn.Module | None = None) -> Tensor:
        """The accumulated total; clears it.  ``model`` is accepted for the penalty contract."""
        out = self.value
        self._terms = []
        return out

    def __enter__(self) -> "ActivityPenalty":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (``modules`` are the module objects: a config for this process, not a file)."""
        return {"modules": list(self.modules), "l1": self.l1, "l2": self.l2, "reduction": self.reduction,
                "schedule_unit": self.schedule_unit}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ActivityPenalty":
        return cls(**config)

    def __getstate__(self):
        # Accumulated terms hold autograd graphs, which cannot be pickled; a copy starts empty.
        state = dict(self.__dict__)
        state["_terms"] = []
        return state

    def __repr__(self) -> str:
        return (f"ActivityPenalty(modules=[{', '.join(type(m).__name__ for m in self.modules)}], "
                f"l1={self.l1!r}, l2={self.l2!r}, reduction={self.reduction!r}, schedule_unit={self.schedule_unit!r})")
