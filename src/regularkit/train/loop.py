"""``fit`` and ``evaluate``: a readable training loop with explicit hook points.

Per batch::

    x, y = batch_transform(x, y, generator)          # augmentation, mixing (optional)
    loss = loss_fn(model(x), y) + sum(term(model) for term in loss_terms)
    loss.backward(); optimizer.step()
    for fn in after_step: fn(model)                  # constraints, EMA updates

Per epoch: ``scheduler.step()``, then :func:`evaluate` on every named split:
one measuring function with one loss, plain cross-entropy on hard labels,
whatever the training loss is (label smoothing, mixing and penalties change
what is minimised, never what is measured), so the gap is measured the same
way on train and test and early stopping watches the real validation loss.
Then the callbacks decide, each with its reason.  ``on_train_end`` runs in ``finally``,
so early stopping restores its best weights however training ends.

Determinism: the shuffling order comes from a ``torch.Generator`` seeded with
``seed``; the global RNG is forked and seeded too, so modules that draw from
it are reproducible and the caller's RNG state is left untouched.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_int
from regularkit.errors import RegularkitError
from regularkit.targets import hard_labels
from regularkit.train.callbacks import Callback, TrainState

Batch = tuple[torch.Tensor, torch.Tensor]
BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], Batch]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def default_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The default *training* loss: cross-entropy on class indices (N,) or soft targets (N x K)."""
    return F.cross_entropy(logits, y)


@dataclass
class History:
    """Per-epoch metrics and how training ended."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = ""
    stopped_epoch: int | None = None
    seconds: float = 0.0

    def last(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024) -> tuple[float, float]:
    """Mean cross-entropy and error rate (fraction misclassified) of ``model`` in eval mode.

    The one measuring function: every split, every epoch, the final numbers.
    ``y`` may be class indices or soft targets; both the loss and the error use
    hard labels (the argmax of soft targets), never a smoothed or mixed target.
    """
    was_training = model.training
    model.eval()
    total_loss, wrong, n = 0.0, 0, int(x.shape[0])
    try:
        for i in range(0, n, batch_size):
            xb, labels = x[i:i + batch_size], hard_labels(y[i:i + batch_size])
            logits = model(xb)
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            wrong += int((logits.argmax(1) != labels).sum())
    finally:
        model.train(was_training)
    if n == 0:
        return float("nan"), float("nan")
    return total_loss / n, wrong / n


def _check_data(name: str, data: Batch) -> Batch:
    x, y = data
    if x.shape[0] != y.shape[0]:
        raise RegularkitError(f"{name}: x has {x.shape[0]} rows but y has {y.shape[0]}")
    return x, y


def fit(model: nn.Module, train: Batch, *, optimizer: torch.optim.Optimizer, epochs: int,
        batch_size: int, scheduler=None, eval_sets: Mapping[str, Batch] | None = None,
        loss_fn: LossFn = default_loss, batch_transform: BatchTransform | None = None,
        loss_terms: Sequence[Callable[[nn.Module], torch.Tensor]] = (),
        after_step: Sequence[Callable[[nn.Module], None]] = (),
        callbacks: Iterable[Callback] = (), eval_model: Callable[[], nn.Module] | None = None,
        seed: int = 0, on_epoch: Callable[[dict[str, float]], None] | None = None,
        drop_last: bool = False) -> History:
    """Train ``model`` on ``train = (x, y)`` and evaluate each epoch on ``eval_sets``.

    ``eval_sets`` maps a split name (``"train"``, ``"val"``, ``"test"``) to
    ``(x, y)``; metrics are recorded as ``{name}_loss`` and ``{name}_error``.
    ``eval_model`` (e.g. an EMA's averaged copy) is what gets evaluated, if given.
    The test split, when passed, is only recorded: no callback should monitor it.
    """
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    x, y = _check_data("train", train)
    eval_sets = {k: _check_data(k, v) for k, v in (eval_sets or {}).items()}
    callbacks = list(callbacks)
    history = History()
    state = TrainState(model=model, history=history.epochs)
    generator = torch.Generator().manual_seed(seed)
    n = int(x.shape[0])
    t_start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for cb in callbacks:
            cb.on_train_begin(state)
        try:
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                model.train()
                order = torch.randperm(n, generator=generator)
                stop = n - n % batch_size if drop_last and n >= batch_size else n
                running = torch.zeros(())
                for i in range(0, stop, batch_size):
                    idx = order[i:i + batch_size]
                    xb, yb = x[idx], y[idx]
                    if batch_transform is not None:
                        xb, yb = batch_transform(xb, yb, generator)
                    loss = loss_fn(model(xb), yb)
                    for term in loss_terms:
                        loss = loss + term(model)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    for fn in after_step:
                        fn(model)
                    running += loss.detach() * idx.shape[0]
                lr = optimizer.param_groups[0]["lr"]
                if scheduler is not None:
                    scheduler.step()
                metrics = {"epoch": epoch, "lr": lr, "train_objective": float(running) / max(stop, 1),
                           "train_seconds": time.perf_counter() - t0}
                target = eval_model() if eval_model is not None else model
                for name, (ex, ey) in eval_sets.items():
                    metrics[f"{name}_loss"], metrics[f"{name}_error"] = evaluate(target, ex, ey)
                history.epochs.append(metrics)
                state.epoch, state.metrics = epoch, metrics
                if on_epoch is not None:
                    on_epoch(metrics)
                decisions = [d for cb in callbacks if (d := cb.on_epoch_end(state)) is not None]
                stops = [d.reason for d in decisions if d.stop]
                if stops:
                    history.stop_reason, history.stopped_epoch = "; ".join(stops), epoch
                    break
            else:
                history.stop_reason = f"completed {epochs} epochs"
        finally:
            for cb in callbacks:
                cb.on_train_end(state)
            history.seconds = time.perf_counter() - t_start
    return history
