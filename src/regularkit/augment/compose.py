"""Pipelines: ``Compose`` (ops in sequence, each with a per-sample probability) and ``OneOf`` (a switch).

``Compose([RandomCrop(padding=4), HorizontalFlip(), MixUp(num_classes=10)], p=[1, 1, 0.5])``
samples every op's parameters in one ``make_params`` (through shape-only
proxies, so no pixel is computed while sampling) and applies them in order.
An op with probability ``p < 1`` is applied to each sample with probability
``p``: the op runs on the batch and a per-sample mask keeps the original rows
(so ops that change the image size need ``p = 1``).

``OneOf([MixUp(...), CutMix(...)], p=[0.5, 0.5])`` is timm's ``switch_prob``
made per sample: each sample draws which op it gets, and each op runs once on
the subset that drew it (so a MixUp partner comes from the same subset).
``per_sample=False`` draws one op for the whole batch, as timm does.

Targets: when a mixing op is in a pipeline, the rows it did not touch are
converted to soft targets with the same ``num_classes`` and
``label_smoothing``, so ``y`` out is one consistent N x K tensor.
"""
from __future__ import annotations

from typing import Sequence

import torch

from regularkit._util import rng
from regularkit._util.checks import check_number
from regularkit.augment.base import Augmentation, Batch, Params, check_probability, select, shape_proxy
from regularkit.errors import RegularkitError
from regularkit.targets import to_soft_targets


def _ops(ops) -> list:
    ops = list(ops)
    if not ops:
        raise RegularkitError("ops must hold at least one augmentation, got an empty list")
    for op in ops:
        if not isinstance(op, Augmentation):
            raise RegularkitError(f"ops must be regularkit augmentations, got {type(op).__name__}")
    return ops


def _mix_spec(ops) -> tuple[int, float] | None:
    """(num_classes, label_smoothing) shared by the mixing ops, or None if none mixes."""
    specs = {(op.num_classes, op.label_smoothing) for op in ops if op.mixes_targets}
    if len(specs) > 1:
        raise RegularkitError(f"mixing ops in one pipeline must share num_classes and label_smoothing, got {sorted(specs)}")
    return specs.pop() if specs else None


def _as_soft(y: torch.Tensor, spec: tuple[int, float]) -> torch.Tensor:
    return y if y.dim() == 2 else to_soft_targets(y, spec[0], spec[1])


class Compose(Augmentation):
    """Apply ``ops`` in order; ``p`` is None (always), one probability, or one per op (per sample)."""

    def __init__(self, ops: Sequence[Augmentation], p=None):
        self.ops = _ops(ops)
        if p is None:
            probs = [1.0] * len(self.ops)
        elif isinstance(p, (tuple, list)):
            if len(p) != len(self.ops):
                raise RegularkitError(f"p must give one probability per op ({len(self.ops)}), got {len(p)}")
            probs = [check_probability("p", v) for v in p]
        else:
            probs = [check_probability("p", p)] * len(self.ops)
        self.p = p
        self._probs = probs
        self._spec = _mix_spec(self.ops)
        self.mixes_targets = self._spec is not None
        if self._spec is not None:
            self.num_classes, self.label_smoothing = self._spec

    def output_shape(self, shape):
        for op in self.ops:
            shape = op.output_shape(shape)
        return tuple(shape)

    def make_params(self, x, generator=None) -> Params:
        shape, steps = tuple(x.shape), []
        for op, prob in zip(self.ops, self._probs):
            mask = rng.rand(shape[0], device=x.device, generator=generator) < prob if prob < 1.0 else None
            steps.append((mask, op.make_params(shape_proxy(shape, x), generator)))
            new = op.output_shape(shape)
            if mask is not None and new != shape:
                raise RegularkitError(f"{type(op).__name__} changes the image shape {shape} -> {new}, "
                                      f"so it cannot be applied to some samples only (p must be 1)")
            shape = new
        return {"steps": steps}

    def apply(self, x, y, params) -> Batch:
        for op, (mask, sub) in zip(self.ops, params["steps"]):
            x_new, y_new = op.apply(x, y, sub)
            if mask is not None:
                x_new = select(mask.view(-1, 1, 1, 1), x_new, x)
                if y_new is not None:
                    if y_new.dim() != y.dim():
                        y = _as_soft(y, (op.num_classes, op.label_smoothing))
                    y_new = select(mask.view((-1,) + (1,) * (y_new.dim() - 1)), y_new, y)
            x, y = x_new, y_new
        return x, y


class OneOf(Augmentation):
    """Each sample gets one of ``ops``, drawn with weights ``p`` (uniform by default); see the module docstring."""

    def __init__(self, ops: Sequence[Augmentation], p=None, *, per_sample: bool = True):
        self.ops = _ops(ops)
        weights = [1.0] * len(self.ops) if p is None else [check_number("p", v) for v in p]
        if len(weights) != len(self.ops) or min(weights) < 0 or sum(weights) <= 0:
            raise RegularkitError(f"p must be one non-negative weight per op, not all zero, got {p!r}")
        self.p = p
        self._weights = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.per_sample = bool(per_sample)
        self._spec = _mix_spec(self.ops)
        self.mixes_targets = self._spec is not None
        if self._spec is not None:
            self.num_classes, self.label_smoothing = self._spec

    def output_shape(self, shape):
        outs = {op.output_shape(shape) for op in self.ops}
        if outs != {tuple(shape)}:
            raise RegularkitError(f"OneOf needs ops that keep the image shape {tuple(shape)}, got {sorted(outs)}")
        return tuple(shape)

    def make_params(self, x, generator=None) -> Params:
        n = x.shape[0]
        self.output_shape(x.shape)
        # Inverse CDF on one uniform per sample (torch.multinomial costs ~0.4 ms per call on CPU).
        cdf = torch.cumsum(self._weights, 0)[:-1].float().to(x.device)
        u = rng.rand(n if self.per_sample else 1, device=x.device, generator=generator)
        choice = torch.searchsorted(cdf, u, right=True)
        choice = choice.expand(n)
        index, subs = [], []
        for k, op in enumerate(self.ops):
            idx = torch.nonzero(choice == k).squeeze(1)
            index.append(idx)
            subs.append(op.make_params(shape_proxy((len(idx),) + tuple(x.shape[1:]), x), generator)
                        if len(idx) else None)
        return {"choice": choice, "index": index, "params": subs}

    def apply(self, x, y, params) -> Batch:
        x_out = torch.empty_like(x)
        y_out = None
        if y is not None:
            y_out = torch.empty((y.shape[0], self._spec[0]), dtype=torch.float32, device=y.device) \
                if self._spec is not None and y.dim() == 1 else torch.empty_like(y)
        for op, idx, sub in zip(self.ops, params["index"], params["params"]):
            if sub is None:
                continue
            xk, yk = op.apply(x[idx], None if y is None else y[idx], sub)
            x_out[idx] = xk
            if y is not None:
                y_out[idx] = _as_soft(yk, self._spec).to(y_out.dtype) if self._spec is not None else yk
        return x_out, y_out
