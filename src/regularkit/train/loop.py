"""``fit`` and ``evaluate``: a readable training loop with explicit hook points.

Per batch::

    x, y = batch_transform(x, y, generator)          # augmentation, mixing (optional)
    out = step(ctx, x, y)                            # forward, loss, backward, optimizer step
    for fn in after_step: fn(model)                  # constraints, EMA updates
    for term in scheduled loss terms: term.step()

The step (:mod:`regularkit.train.step`) owns one batch; the default,
:class:`~regularkit.train.step.StandardStep`, is::

    loss = loss_fn(model(x), y) + sum(term(model) for term in graph_terms)
    loss.backward()                                  # fp16: scaled, then unscaled if fused terms follow
    loss += sum(term.add_grad_(model) for term in fused_terms)   # value; gradient added to p.grad
    optimizer.step()                                 # unless the loss diverged (below)

Other steps: :class:`~regularkit.train.sam.SAM` (two forward/backward passes),
:class:`~regularkit.train.rdrop.RDrop` (two dropout masks, symmetric KL).

Fused terms: a loss term with ``fused = True`` and an ``add_grad_(model) -> value``
method (every weight penalty by default: :mod:`regularkit.penalties.fused`) is not put
in the autograd graph; after ``backward()`` it adds its closed-form gradient to
``p.grad`` in ``torch._foreach_*`` passes and returns its value, which joins the
loss ``fit`` records (``train_objective``) and checks for divergence.  The weights
and the record are those of the same penalty in the graph, to float rounding.  With
fp16 loss scaling the gradients are unscaled first (``scaler.unscale_``), so the
penalty's gradient is never multiplied by the scale.  Every other term (activity
penalties, ``fused=False``, any plain callable) stays in the graph.

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

Schedules: a loss term with a ``step()`` method (a penalty whose strength is a
schedule) is advanced by ``fit`` itself, after every optimizer step, or after
every epoch when it declares ``schedule_unit = "epoch"``; the user never calls it.

Divergence: a loss that is not finite, or larger than ``max_loss`` (default
1e4: the cross-entropy of a uniform guess is ln K, 2.3 for ten classes, so 1e4
means logits wrong by thousands), stops training at that step, after its
backward pass (the fused terms' values are known only then) and before the
optimizer applies it (the step's ``ctx.check`` raises ``Diverged``).
``History.diverged`` then holds the epoch, the step and the value, and
``stop_reason`` says so; callbacks' ``on_train_end`` still runs.

Checks (:mod:`regularkit.train.checks`): everything ``fit`` and ``evaluate`` are
given is checked before any work, each bad input a one-line
:class:`~regularkit.errors.RegularkitError` naming it, with one ``torch.isfinite``
pass over every split, once at the start of ``fit`` (not every epoch); the first
batch then checks what only the model can tell (its input shape, its K outputs
against every split's labels).

Device and precision: see :mod:`regularkit.train.device`.

Streamed data: ``x`` of any split may be a :class:`~regularkit.data.streaming.Streamed`
view (an image folder decoded by Pillow, a torch Dataset's items) instead of a tensor.
The order is the same ``torch.randperm(n, generator)`` cut into the same batches; each
batch is then decoded by the view's DataLoader (``num_workers`` processes, pinned memory
when the device is CUDA) instead of indexed, so a streamed split gives the numbers its
tensor gives, with memory bounded by a batch.  Its labels stay a tensor; the finiteness
pass is done per sample as it is read (:mod:`regularkit.data.streaming`).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_bool, check_instance, check_int, check_positive, describe
from regularkit.data.streaming import Streamed
from regularkit.errors import RegularkitError
from regularkit.targets import hard_labels
from regularkit.train.callbacks import Callback, TrainState
from regularkit.train.checks import (
    check_data,
    check_device,
    check_fit_arguments,
    check_labels,
    check_optimizer_params,
    first_forward,
)
from regularkit.train.device import Precision, fits_on_device
from regularkit.train.regression import measure
from regularkit.train.step import Diverged, StandardStep, StepContext

__all__ = ["MAX_LOSS", "History", "default_loss", "evaluate", "fit"]

Batch = tuple[torch.Tensor, torch.Tensor]
BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], Batch]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: A training loss above this (or not finite) is divergence: the run stops at that step.
MAX_LOSS = 1e4


def _to(t, device: torch.device):
    """A tensor moved to ``device``; a streamed split stays where it is read (its batches move)."""
    return t if isinstance(t, Streamed) else t.to(device)


def _batches(x, chunks: list, *, pin_memory: bool):
    """The inputs of each chunk of indices: ``x[idx]`` for a tensor, decoded batches for a streamed split."""
    return x.batches(chunks, pin_memory=pin_memory) if isinstance(x, Streamed) else (x[idx] for idx in chunks)


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
    diverged: dict[str, float] | None = None   # {"epoch", "step", "value"} of the first bad loss

    def last(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024, target_scale=None,
             device: torch.device | str | None = None, precision: Precision | None = None) -> tuple[float, float]:
    """Mean cross-entropy and error rate (fraction misclassified) of ``model`` in eval mode.

    The one measuring function: every split, every epoch, the final numbers (regression: see ``measure``).
    ``y`` may be class indices or soft targets; both the loss and the error use
    hard labels (the argmax of soft targets), never a smoothed or mixed target.
    ``device``: where batches go (default: where ``x`` is); ``precision``: autocast
    for the forward pass, the loss on float32 logits.  The inputs are checked
    first (see the module docstring: one ``torch.isfinite`` pass over ``x``).
    """
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    batch_size = check_int("batch_size", batch_size, minimum=1)
    x, y = check_data("evaluate", (x, y))
    device = check_device(device)
    if precision is not None:
        check_instance("precision", precision, Precision, "a regularkit.train.device.Precision or None")
    return _evaluate(model, x, y, batch_size=batch_size, device=device, precision=precision, name="evaluate",
                     first_checks=True, target_scale=target_scale)


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024,
              device: torch.device | str | None = None, precision: Precision | None = None,
              name: str = "evaluate", first_checks: bool = False, target_scale=None) -> tuple[float, float]:
    """:func:`evaluate` on checked inputs (``fit`` checks its splits once, not every epoch)."""
    if target_scale is not None:  # regression: MSE on standardized targets, RMSE in the target's units
        return measure(model, x, y, target_scale, batch_size=batch_size, device=device, precision=precision)
    was_training = model.training
    model.eval()
    total_loss, wrong, n = 0.0, 0, int(x.shape[0])
    autocast = precision.autocast() if precision is not None else contextlib.nullcontext()
    if isinstance(x, Streamed):  # large samples in smaller batches: the losses then differ by float rounding
        batch_size = x.eval_batch(batch_size)
    starts = range(0, n, batch_size)
    if isinstance(x, Streamed):
        inputs = x.batches([range(i, min(i + batch_size, n)) for i in starts],
                           pin_memory=device is not None and torch.device(device).type == "cuda")
    else:
        inputs = (x[i:i + batch_size] for i in starts)
    try:
        for i, xb in zip(starts, inputs):
            labels = hard_labels(y[i:i + batch_size])
            if device is not None:
                xb, labels = xb.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with autocast:
                logits = model(xb) if i else first_forward(model, xb, x, name)
            if not i and first_checks:
                check_labels(name, y, logits)
            logits = logits.float()
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            wrong += int((logits.argmax(1) != labels).sum())
    finally:
        model.train(was_training)
    if n == 0:
        return float("nan"), float("nan")
    return total_loss / n, wrong / n


def _scheduled(terms, unit: str) -> list:
    """Loss terms whose strength follows a schedule advanced per ``unit`` ("step" or "epoch")."""
    return [t for t in terms if callable(getattr(t, "step", None)) and getattr(t, "schedule_unit", "step") == unit]


def fit(model: nn.Module, train: Batch, *, optimizer: torch.optim.Optimizer, epochs: int,
        batch_size: int, scheduler=None, eval_sets: Mapping[str, Batch] | None = None,
        loss_fn: LossFn = default_loss, batch_transform: BatchTransform | None = None,
        loss_terms: Sequence[Callable[[nn.Module], torch.Tensor]] = (),
        after_step: Sequence[Callable[[nn.Module], None]] = (),
        callbacks: Iterable[Callback] = (), eval_model: Callable[[], nn.Module] | None = None,
        seed: int = 0, on_epoch: Callable[[dict[str, float]], None] | None = None,
        drop_last: bool = False, device: torch.device | str | None = None, precision: str = "fp32",
        channels_last: bool = False, max_loss: float = MAX_LOSS, step=None, target_scale=None) -> History:
    """Train ``model`` on ``train = (x, y)`` and evaluate each epoch on ``eval_sets``.

    ``eval_sets`` maps a split name (``"train"``, ``"val"``, ``"test"``) to
    ``(x, y)``; metrics are recorded as ``{name}_loss`` and ``{name}_error``.
    ``eval_model`` (e.g. an EMA's averaged copy) is what gets evaluated, if given.
    The test split, when passed, is only recorded: no callback should monitor it.
    ``device`` (default: where ``model``'s parameters are) receives the model and the
    data; ``precision`` is ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast, loss scaling
    for fp16); ``channels_last`` stores image batches and the model NHWC (faster
    convolutions on CUDA).  ``step`` (default :class:`~regularkit.train.step.StandardStep`)
    does one batch: forward, loss, backward and the optimizer step (see
    :mod:`regularkit.train.step` for the protocol).  Every argument is checked before
    any work (:mod:`regularkit.train.checks`): one ``torch.isfinite`` pass over each
    split's tensors, once.
    """
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    callbacks = check_fit_arguments(model, optimizer, scheduler, loss_fn, batch_transform, loss_terms, after_step,
                                    callbacks, eval_model, on_epoch, step)
    step = StandardStep() if step is None else step
    seed = check_int("seed", seed)
    drop_last, channels_last = check_bool("drop_last", drop_last), check_bool("channels_last", channels_last)
    if not (isinstance(max_loss, float) and max_loss == math.inf):
        max_loss = check_positive("max_loss", max_loss)
    if eval_sets is not None and not isinstance(eval_sets, Mapping):
        raise RegularkitError(f"eval_sets must be a dict {{split name: (x, y)}}, got {describe(eval_sets)}")
    x, y = check_data("train", train)
    for k in eval_sets or {}:
        if not isinstance(k, str) or not k:
            raise RegularkitError(f"eval_sets keys must be split names like 'val', got {describe(k)}")
    eval_sets = {k: check_data(k, v) for k, v in (eval_sets or {}).items()}
    check_optimizer_params(model, optimizer)
    device = check_device(device) if device is not None else next(model.parameters(), x).device
    amp = Precision(precision, device.type)
    model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    everything = [t for t in (x, y, *(t for pair in eval_sets.values() for t in pair)) if not isinstance(t, Streamed)]
    if fits_on_device(*everything, device=device):
        x, y = _to(x, device), y.to(device)
        eval_sets = {k: (_to(ex, device), ey.to(device)) for k, (ex, ey) in eval_sets.items()}
    per_step, per_epoch = _scheduled(loss_terms, "step"), _scheduled(loss_terms, "epoch")
    history = History()
    state = TrainState(model=model, history=history.epochs)
    generator = torch.Generator().manual_seed(seed)
    ctx = StepContext(model, optimizer, loss_fn=loss_fn, loss_terms=loss_terms, precision=amp, generator=generator,
                      max_loss=max_loss, probe=(x, {"train": y, **{k: ey for k, (_, ey) in eval_sets.items()}}))
    n = int(x.shape[0])
    t_start = time.perf_counter()
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for cb in callbacks:
            cb.on_train_begin(state)
        try:
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                model.train()
                order = torch.randperm(n, generator=generator).to(x.device)
                stop = n - n % batch_size if drop_last and n >= batch_size else n
                running = torch.zeros((), device=device)
                chunks = [order[i:i + batch_size] for i in range(0, stop, batch_size)]
                inputs = _batches(x, chunks, pin_memory=device.type == "cuda")
                for i_step, (idx, xb) in enumerate(zip(chunks, inputs), start=1):
                    xb, yb = xb.to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
                    if batch_transform is not None:
                        xb, yb = batch_transform(xb, yb, generator)
                    if channels_last and xb.dim() == 4:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    try:
                        out = step(ctx, xb, yb)
                    except Diverged as exc:
                        history.diverged = {"epoch": epoch, "step": i_step, "value": exc.value}
                        break
                    for fn in after_step:
                        fn(model)
                    for term in per_step:
                        term.step()
                    running += out.loss * idx.shape[0]
                if history.diverged is not None:
                    d = history.diverged
                    history.stop_reason = (f"diverged: training loss {d['value']:.4g} at epoch {d['epoch']}, "
                                           f"step {d['step']} (not finite or above {max_loss:g})")
                    history.stopped_epoch = epoch
                    break
                for term in per_epoch:
                    term.step()
                lr = optimizer.param_groups[0]["lr"]
                if scheduler is not None:
                    scheduler.step()
                metrics = {"epoch": epoch, "lr": lr, "train_objective": float(running) / max(stop, 1),
                           "train_seconds": time.perf_counter() - t0}
                target = eval_model() if eval_model is not None else model
                for name, (ex, ey) in eval_sets.items():
                    metrics[f"{name}_loss"], metrics[f"{name}_error"] = _evaluate(
                        target, ex, ey, device=device, precision=amp, name=name, target_scale=target_scale)
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
