"""``fit`` and ``evaluate``: a readable training loop with explicit hook points.

Per batch::

    x, y = batch_transform(x, y, generator)          # augmentation, mixing (optional)
    loss = loss_fn(model(x), y) + sum(term(model) for term in graph_terms)
    loss.backward()                                  # fp16: scaled, then unscaled if fused terms follow
    loss += sum(term.add_grad_(model) for term in fused_terms)   # value; gradient added to p.grad
    optimizer.step()                                 # unless the loss diverged (below)
    for fn in after_step: fn(model)                  # constraints, EMA updates

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
optimizer applies it.  ``History.diverged`` then holds the epoch, the step and
the value, and ``stop_reason`` says so; callbacks' ``on_train_end`` still runs.

Checks: everything ``fit`` and ``evaluate`` are given is checked before any work,
each bad input a one-line :class:`~regularkit.errors.RegularkitError` naming it:
types (a model, an optimizer, callables, real booleans), ``(x, y)`` pairs of
tensors of equal length and at least one row, labels that are class indices
(N,) of an integer dtype or soft targets N x K of a float dtype, and finite
inputs: one ``torch.isfinite`` pass over every floating tensor, the training
and every evaluation split, once at the start of ``fit`` (not every epoch).
The first batch then checks what only the model can tell: a model that cannot
take the inputs (torch's shape, dtype or index error in its first forward,
re-raised as one line naming the shapes and torch's first line), class indices
out of range for its K outputs, soft targets of other than K columns (one
comparison pass over each ``y``).

Device and precision: see :mod:`regularkit.train.device`.
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

from regularkit._util.checks import (
    check_bool,
    check_callable,
    check_callables,
    check_instance,
    check_int,
    check_positive,
    describe,
)
from regularkit.errors import RegularkitError
from regularkit.targets import hard_labels
from regularkit.train.callbacks import Callback, TrainState
from regularkit.train.device import Precision, fits_on_device
from regularkit.train.regression import measure

Batch = tuple[torch.Tensor, torch.Tensor]
BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], Batch]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: A training loss above this (or not finite) is divergence: the run stops at that step.
MAX_LOSS = 1e4


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
    x, y = _check_data("evaluate", (x, y))
    device = _check_device(device)
    if precision is not None:
        check_instance("precision", precision, Precision, "a regularkit.train.device.Precision or None")
    return _evaluate(model, x, y, batch_size=batch_size, device=device, precision=precision, name="evaluate",
                     check_labels=True, target_scale=target_scale)


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024,
              device: torch.device | str | None = None, precision: Precision | None = None,
              name: str = "evaluate", check_labels: bool = False, target_scale=None) -> tuple[float, float]:
    """:func:`evaluate` on checked inputs (``fit`` checks its splits once, not every epoch)."""
    if target_scale is not None:  # regression: MSE on standardized targets, RMSE in the target's units
        return measure(model, x, y, target_scale, batch_size=batch_size, device=device, precision=precision)
    was_training = model.training
    model.eval()
    total_loss, wrong, n = 0.0, 0, int(x.shape[0])
    autocast = precision.autocast() if precision is not None else contextlib.nullcontext()
    try:
        for i in range(0, n, batch_size):
            xb, labels = x[i:i + batch_size], hard_labels(y[i:i + batch_size])
            if device is not None:
                xb, labels = xb.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            with autocast:
                logits = model(xb) if i else _first_forward(model, xb, x, name)
            if not i and check_labels:
                _check_labels(name, y, logits)
            logits = logits.float()
            total_loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            wrong += int((logits.argmax(1) != labels).sum())
    finally:
        model.train(was_training)
    if n == 0:
        return float("nan"), float("nan")
    return total_loss / n, wrong / n


def _check_data(name: str, data: Batch) -> Batch:
    """``(x, y)``: tensors of equal length, at least one row, labels of a known kind, finite (one pass each)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise RegularkitError(f"{name} must be a pair (x, y) of tensors, got {describe(data)}")
    x, y = data
    for part, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise RegularkitError(f"{name}: {part} must be a torch.Tensor, got {describe(t)}")
        if t.dim() == 0:
            raise RegularkitError(f"{name}: {part} must have one row per sample, got a 0-d tensor")
    if x.shape[0] != y.shape[0]:
        raise RegularkitError(f"{name}: x has {x.shape[0]} rows but y has {y.shape[0]}")
    if x.shape[0] == 0:
        raise RegularkitError(f"{name}: x and y are empty (0 rows); at least one sample is needed")
    integer = not (y.is_floating_point() or y.is_complex() or y.dtype == torch.bool)
    if not ((y.dim() == 1 and integer) or (y.dim() == 2 and y.is_floating_point())):
        hint = " (cast class indices with y.long())" if y.dim() == 1 and y.is_floating_point() else ""
        raise RegularkitError(f"{name}: y must be class indices (N,) of an integer dtype or soft targets N x K of a "
                              f"float dtype, got shape {tuple(y.shape)} and dtype {y.dtype}{hint}")
    for part, t in (("x", x), ("y", y)):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise RegularkitError(f"{name}: {part} holds {bad} non-finite values (NaN or inf)")
    return x, y


def _check_device(device) -> torch.device | None:
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise RegularkitError(f"device must be a torch.device or a name like 'cpu' or 'cuda:0', "
                              f"got {describe(device)}") from None


def _first_forward(model: nn.Module, xb: torch.Tensor, x: torch.Tensor, name: str) -> torch.Tensor:
    """``model(xb)`` on the first batch: torch's shape or dtype error becomes one line naming the shapes."""
    try:
        return model(xb)
    except torch.cuda.OutOfMemoryError:
        raise
    except (RuntimeError, TypeError, IndexError) as exc:  # torch's shape, dtype and index errors
        if "out of memory" in str(exc):
            raise
        said = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RegularkitError(f"{name}: the model fails on a batch of shape {tuple(xb.shape)} (samples of shape "
                              f"{tuple(x.shape[1:])}, dtype {x.dtype}): {type(exc).__name__}: {said}") from None


def _check_labels(name: str, y: torch.Tensor, logits: torch.Tensor) -> None:
    """Labels against the model's K outputs (``logits`` N x K): indices in [0, K), K columns of soft targets."""
    if logits.dim() != 2:
        return
    k = logits.shape[1]
    if y.dim() == 2:
        if y.shape[1] != k:
            raise RegularkitError(f"{name}: soft targets y have {y.shape[1]} columns but the model gives {k} outputs")
        return
    lo, hi = int(y.min()), int(y.max())  # one pass, one host sync, once per split
    if lo < 0 or hi >= k:
        raise RegularkitError(f"{name}: y holds class index {lo if lo < 0 else hi}, out of range for the model's "
                              f"{k} outputs (labels must be in [0, {k}))")


def _check_fit_arguments(model, optimizer, scheduler, loss_fn, batch_transform, loss_terms, after_step, callbacks,
                         eval_model, on_epoch) -> list:
    """Types of what ``fit`` calls, before any work; returns the callbacks as a list."""
    check_instance("model", model, nn.Module, "a torch.nn.Module")
    if not isinstance(optimizer, torch.optim.Optimizer) and not (
            callable(getattr(optimizer, "step", None)) and callable(getattr(optimizer, "zero_grad", None))
            and hasattr(optimizer, "param_groups")):
        raise RegularkitError(f"optimizer must be a torch.optim.Optimizer, got {describe(optimizer)}")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise RegularkitError(f"scheduler must have a step() method (a torch LR scheduler) or be None, "
                              f"got {describe(scheduler)}")
    check_callable("loss_fn", loss_fn)
    check_callable("batch_transform", batch_transform, allow_none=True)
    check_callables("loss_terms", loss_terms, "callables term(model) -> tensor")
    check_callables("after_step", after_step, "callables fn(model)")
    check_callable("eval_model", eval_model, allow_none=True)
    check_callable("on_epoch", on_epoch, allow_none=True)
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise RegularkitError(f"callbacks must be a list of callbacks, got {describe(callbacks)}")
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        if not all(callable(getattr(cb, m, None)) for m in ("on_train_begin", "on_epoch_end", "on_train_end")):
            raise RegularkitError(f"callbacks[{i}] must be a callback (on_train_begin, on_epoch_end, on_train_end), "
                                  f"got {describe(cb)}")
    return callbacks


def _scheduled(terms, unit: str) -> list:
    """Loss terms whose strength follows a schedule advanced per ``unit`` ("step" or "epoch")."""
    return [t for t in terms if callable(getattr(t, "step", None)) and getattr(t, "schedule_unit", "step") == unit]


def _is_fused(term) -> bool:
    """A loss term that adds its own gradient after ``backward()`` (a weight penalty with ``fused=True``)."""
    return getattr(term, "fused", False) is True and callable(getattr(term, "add_grad_", None))


def fit(model: nn.Module, train: Batch, *, optimizer: torch.optim.Optimizer, epochs: int,
        batch_size: int, scheduler=None, eval_sets: Mapping[str, Batch] | None = None,
        loss_fn: LossFn = default_loss, batch_transform: BatchTransform | None = None,
        loss_terms: Sequence[Callable[[nn.Module], torch.Tensor]] = (),
        after_step: Sequence[Callable[[nn.Module], None]] = (),
        callbacks: Iterable[Callback] = (), eval_model: Callable[[], nn.Module] | None = None,
        seed: int = 0, on_epoch: Callable[[dict[str, float]], None] | None = None,
        drop_last: bool = False, device: torch.device | str | None = None, precision: str = "fp32",
        channels_last: bool = False, max_loss: float = MAX_LOSS, target_scale=None) -> History:
    """Train ``model`` on ``train = (x, y)`` and evaluate each epoch on ``eval_sets``.

    ``eval_sets`` maps a split name (``"train"``, ``"val"``, ``"test"``) to
    ``(x, y)``; metrics are recorded as ``{name}_loss`` and ``{name}_error``.
    ``eval_model`` (e.g. an EMA's averaged copy) is what gets evaluated, if given.
    The test split, when passed, is only recorded: no callback should monitor it.
    ``device`` (default: where ``model``'s parameters are) receives the model and the
    data; ``precision`` is ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast, loss scaling
    for fp16); ``channels_last`` stores image batches and the model NHWC (faster
    convolutions on CUDA).  Every argument is checked before any work (see "Checks" in
    the module docstring): one ``torch.isfinite`` pass over each split's tensors, once.
    """
    epochs = check_int("epochs", epochs, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    callbacks = _check_fit_arguments(model, optimizer, scheduler, loss_fn, batch_transform, loss_terms, after_step,
                                     callbacks, eval_model, on_epoch)
    seed = check_int("seed", seed)
    drop_last, channels_last = check_bool("drop_last", drop_last), check_bool("channels_last", channels_last)
    if not (isinstance(max_loss, float) and max_loss == math.inf):
        max_loss = check_positive("max_loss", max_loss)
    if eval_sets is not None and not isinstance(eval_sets, Mapping):
        raise RegularkitError(f"eval_sets must be a dict {{split name: (x, y)}}, got {describe(eval_sets)}")
    x, y = _check_data("train", train)
    for k in eval_sets or {}:
        if not isinstance(k, str) or not k:
            raise RegularkitError(f"eval_sets keys must be split names like 'val', got {describe(k)}")
    eval_sets = {k: _check_data(k, v) for k, v in (eval_sets or {}).items()}
    device = _check_device(device) if device is not None else next(model.parameters(), x).device
    amp = Precision(precision, device.type)
    scaler = amp.scaler()
    model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    if fits_on_device(x, y, *(t for pair in eval_sets.values() for t in pair), device=device):
        x, y = x.to(device), y.to(device)
        eval_sets = {k: (ex.to(device), ey.to(device)) for k, (ex, ey) in eval_sets.items()}
    per_step, per_epoch = _scheduled(loss_terms, "step"), _scheduled(loss_terms, "epoch")
    fused_terms = [t for t in loss_terms if _is_fused(t)]
    graph_terms = [t for t in loss_terms if not _is_fused(t)]
    history = History()
    state = TrainState(model=model, history=history.epochs)
    generator = torch.Generator().manual_seed(seed)
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
                for step, i in enumerate(range(0, stop, batch_size), start=1):
                    idx = order[i:i + batch_size]
                    xb, yb = x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True)
                    if batch_transform is not None:
                        xb, yb = batch_transform(xb, yb, generator)
                    if channels_last and xb.dim() == 4:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    with amp.autocast():
                        if epoch == 1 and step == 1:  # what only the model can tell: its input shape, its K
                            logits = _first_forward(model, xb, x, "train")
                            for name, pair in {"train": (x, y), **eval_sets}.items():
                                _check_labels(name, pair[1], logits)
                        else:
                            logits = model(xb)
                        loss = loss_fn(logits, yb)
                        for term in graph_terms:
                            loss = loss + term(model)
                    optimizer.zero_grad(set_to_none=True)
                    (loss if scaler is None else scaler.scale(loss)).backward()
                    objective = loss.detach()
                    if fused_terms:
                        if scaler is not None:
                            scaler.unscale_(optimizer)  # the penalty's gradient is added unscaled
                        for term in fused_terms:
                            objective = objective + term.add_grad_(model)
                    value = float(objective)  # one host sync per step: the divergence check needs it
                    if not math.isfinite(value) or value > max_loss:
                        history.diverged = {"epoch": epoch, "step": step, "value": value}
                        break
                    if scaler is None:
                        optimizer.step()
                    else:
                        scaler.step(optimizer)
                        scaler.update()
                    for fn in after_step:
                        fn(model)
                    for term in per_step:
                        term.step()
                    running += objective * idx.shape[0]
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
