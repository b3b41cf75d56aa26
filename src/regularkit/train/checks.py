"""What ``fit`` and ``evaluate`` check before any work, and what only the first batch can tell.

Each bad input is a one-line :class:`~regularkit.errors.RegularkitError` naming it:

* types (:func:`check_fit_arguments`): a model, an optimizer (a ``torch.optim.Optimizer``
  or a duck-typed one with ``step``, ``zero_grad`` and ``param_groups``), callables, a
  training step (``step(ctx, x, y)``: :mod:`regularkit.train.step`), callbacks;
* data (:func:`check_data`): ``(x, y)`` pairs of tensors of equal length and at least one
  row, labels that are class indices (N,) of an integer dtype or soft targets N x K of a
  float dtype, and finite inputs: one ``torch.isfinite`` pass over every floating tensor (a streamed
  ``x``, :class:`~regularkit.data.streaming.Streamed`, is checked sample by sample as it is read);
* the optimizer against the model (:func:`check_optimizer_params`): an optimizer that holds
  none of the model's parameters (built for another model) would train nothing;
* on the first batch (:func:`first_forward`, :func:`check_labels`): a model that cannot take
  the inputs (torch's shape, dtype or index error re-raised as one line naming the shapes
  and torch's first line), class indices out of range for its K outputs, soft targets of
  other than K columns (one comparison pass over each ``y``).

The loss the step builds is checked where it is built (:func:`check_scalar`): a loss
function or a loss term that returns a tensor of more than one element (a per-sample loss,
``reduction="none"``) is named with its shape instead of torch's "grad can be implicitly
created only for scalar outputs".
"""
from __future__ import annotations

import torch
from torch import nn

from regularkit._util.checks import check_callable, check_callables, check_instance, describe
from regularkit.data.streaming import Streamed
from regularkit.errors import RegularkitError

__all__ = ["check_data", "check_device", "check_fit_arguments", "check_labels", "check_optimizer_params",
           "check_scalar", "first_forward"]

Batch = tuple[torch.Tensor, torch.Tensor]


def check_data(name: str, data: Batch) -> Batch:
    """``(x, y)``: tensors of equal length, at least one row, labels of a known kind, finite (one pass each)."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise RegularkitError(f"{name} must be a pair (x, y) of tensors, got {describe(data)}")
    x, y = data
    for part, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) and not (part == "x" and isinstance(t, Streamed)):
            kinds = "a torch.Tensor or a streamed split (regularkit.data.streaming.Streamed)" if part == "x" \
                else "a torch.Tensor"
            raise RegularkitError(f"{name}: {part} must be {kinds}, got {describe(t)}")
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
        if isinstance(t, Streamed):
            continue  # read sample by sample: as_features / Pillow's [0, 1] pixels are checked as they come
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise RegularkitError(f"{name}: {part} holds {bad} non-finite values (NaN or inf)")
    return x, y


def check_device(device) -> torch.device | None:
    """``None``, a ``torch.device`` or a name torch knows."""
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise RegularkitError(f"device must be a torch.device or a name like 'cpu' or 'cuda:0', "
                              f"got {describe(device)}") from None


def first_forward(model: nn.Module, xb: torch.Tensor, x: torch.Tensor, name: str) -> torch.Tensor:
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


def check_labels(name: str, y: torch.Tensor, logits: torch.Tensor) -> None:
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


def check_scalar(name: str, value):
    """A loss or a loss term's value: one element (a 0-d tensor, or a number); returns it unchanged."""
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise RegularkitError(f"{name} returned a tensor of shape {tuple(value.shape)}; a loss must be one number "
                              f"(a 0-d tensor: reduce it, e.g. .mean() or reduction='mean')")
    return value


def check_fit_arguments(model, optimizer, scheduler, loss_fn, batch_transform, loss_terms, after_step, callbacks,
                        eval_model, on_epoch, step) -> list:
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
    if step is not None and (isinstance(step, type) or not callable(step)):
        raise RegularkitError(f"step must be a training step step(ctx, x, y) -> StepOutput (an instance, e.g. "
                              f"StandardStep()), or None, got {describe(step)}")
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise RegularkitError(f"callbacks must be a list of callbacks, got {describe(callbacks)}")
    callbacks = list(callbacks)
    for i, cb in enumerate(callbacks):
        if not all(callable(getattr(cb, m, None)) for m in ("on_train_begin", "on_epoch_end", "on_train_end")):
            raise RegularkitError(f"callbacks[{i}] must be a callback (on_train_begin, on_epoch_end, on_train_end), "
                                  f"got {describe(cb)}")
    return callbacks


def check_optimizer_params(model: nn.Module, optimizer) -> None:
    """The optimizer must hold at least one of the model's parameters, or ``fit`` would train nothing.

    Extra parameters (a learnable temperature of the loss) and a subset of the model's (a
    frozen backbone) are allowed; an optimizer built for another model is not.
    """
    own = {id(p) for p in model.parameters()}
    held = [p for group in optimizer.param_groups for p in group.get("params", ())]
    if held and not any(id(p) in own for p in held):
        raise RegularkitError(f"optimizer holds {len(held)} parameter tensor(s), none of them the model's "
                              f"(built for another model?): build it from model.parameters()")
