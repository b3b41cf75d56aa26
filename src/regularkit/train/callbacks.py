"""Per-epoch callbacks: a small contract, decisions that return their reason.

Contract (Lightning's shape, without integer orders or hidden control flow):

* ``on_train_begin(state)``: reset; a callback used in two fits starts fresh.
* ``on_epoch_end(state) -> Decision | None``: look at the epoch's metrics and
  say whether to stop, and why.  Callbacks never touch the batch or the loss.
* ``on_train_end(state)``: runs however training ends (a stop decision, the
  last epoch, an exception, Ctrl-C), because ``fit`` calls it in ``finally``.
* ``state_dict()`` / ``load_state_dict()``: a resumed run continues exactly.
* ``get_config()`` / ``from_config()``: the constructor arguments (Keras' habit),
  read from the attributes of the same name; the state reached while training
  is in ``state_dict()``, not in the config.

:data:`REGISTRY` names every callback; :func:`get` builds one from a name or a
``{"class_name", "config"}`` dict.
"""
from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from regularkit._util.checks import (
    check_bool,
    check_choice,
    check_int,
    check_monitor,
    check_non_negative,
    check_optional_number,
)
from regularkit._util.registry import build
from regularkit.errors import RegularkitError


@dataclass(frozen=True)
class Decision:
    stop: bool
    reason: str = ""


@dataclass
class TrainState:
    """What callbacks see: the model, the epoch just finished (1-based) and its metrics."""

    model: nn.Module
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)


class Callback:
    def on_train_begin(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> Decision | None:
        return None

    def on_train_end(self, state: TrainState) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments by name, read from the attributes of the same name."""
        # a subclass without its own __init__ has object's (*args, **kwargs): no arguments to report
        names = [p.name for p in inspect.signature(type(self).__init__).parameters.values()
                 if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return {k: getattr(self, k) for k in names}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Callback":
        if not isinstance(config, dict):
            raise RegularkitError(f"config must be a dict of constructor arguments, got {config!r}")
        return cls(**config)


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights.

    Early stopping (Goodfellow et al. 2016, §7.8; deck 003): monitor the
    validation error, stop when it does not decrease for several steps, "and
    return stored optimal parameters".  An improvement is
    ``current < best - min_delta`` for ``mode="min"`` (``>`` / ``+`` for
    ``"max"``).  The direction is never guessed from the metric's name.

    ``monitor`` names a recorded metric, never one of the test split (``test_loss``,
    ``test_error``: refused, as any choice made by watching the test split is).
    ``start_from_epoch`` epochs are a warm-up: not monitored at all.
    ``baseline``: training stops after ``patience`` epochs unless the metric
    beats the baseline.  With ``restore_best_weights`` the best epoch's
    weights (and buffers) are loaded back in ``on_train_end``, whatever ended
    training; if no epoch was ever monitored, the weights are left as they are.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "min", patience: int = 5, min_delta: float = 0.0,
                 restore_best_weights: bool = True, start_from_epoch: int = 0, baseline: float | None = None):
        self.monitor = check_monitor("monitor", monitor)
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.patience = check_int("patience", patience, minimum=0)
        self.min_delta = check_non_negative("min_delta", min_delta)
        self.restore_best_weights = check_bool("restore_best_weights", restore_best_weights)
        self.start_from_epoch = check_int("start_from_epoch", start_from_epoch, minimum=0)
        self.baseline = check_optional_number("baseline", baseline)
        self._reset()

    def _reset(self) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.restored_epoch: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None

    def _improved(self, current: float, reference: float) -> bool:
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def decide(self, epoch: int, current: float) -> Decision:
        """Pure decision for one epoch's value; updates ``best``/``wait`` and returns the reason.

        ``wait`` counts the epochs since the last improvement; training stops
        once ``wait >= patience`` (Keras' semantics: ``patience=2`` stops on
        the second epoch in a row without improvement).
        """
        if math.isnan(current):
            return Decision(True, f"{self.monitor} is NaN at epoch {epoch}")
        if epoch <= self.start_from_epoch:
            return Decision(False, f"epoch {epoch} <= start_from_epoch={self.start_from_epoch}: not monitored")
        self.wait += 1
        if self.best is None or self._improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
                return Decision(False, f"{self.monitor} improved to {current:.6g} at epoch {epoch}")
        if self.wait >= self.patience:
            if self.baseline is not None and not self._improved(self.best, self.baseline):
                why = f"did not beat baseline {self.baseline:.6g} in {self.wait} epochs"
            else:
                why = f"did not improve for {self.wait} epochs (best {self.best:.6g} at epoch {self.best_epoch})"
            return Decision(True, f"{self.monitor} {why}")
        return Decision(False, f"{self.monitor} did not improve ({self.wait}/{self.patience})")

    def on_train_begin(self, state: TrainState) -> None:
        self._reset()

    def on_epoch_end(self, state: TrainState) -> Decision:
        if self.monitor not in state.metrics:
            raise RegularkitError(
                f"EarlyStopping monitors {self.monitor!r}, which is not among the metrics: "
                f"{', '.join(sorted(state.metrics))}")
        previous_best_epoch = self.best_epoch
        decision = self.decide(state.epoch, float(state.metrics[self.monitor]))
        if self.restore_best_weights and self.best_epoch == state.epoch and self.best_epoch != previous_best_epoch:
            self._best_state = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        if decision.stop:
            self.stopped_epoch = state.epoch
        return decision

    def on_train_end(self, state: TrainState) -> None:
        if self.restore_best_weights and self._best_state is not None:
            state.model.load_state_dict(self._best_state)
            self.restored_epoch = self.best_epoch

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_state": copy.deepcopy(self._best_state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self._best_state = copy.deepcopy(state["best_state"])


#: The one registry of callbacks (Keras-style names), used by :func:`get`, configs and the conformance suite.
REGISTRY: dict[str, type[Callback]] = {"early_stopping": EarlyStopping}


def get(identifier) -> Callback:
    """A callback from a name (``"early_stopping"``: default arguments), ``{"class_name": ..., "config": {...}}``,
    or a callback (returned as is)."""
    return build(REGISTRY, identifier, family="callback", base=Callback)


