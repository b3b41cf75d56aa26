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
Subsets of a size drawn at random are not one ``torch.compile`` graph: OneOf
breaks the graph with a message naming the alternatives (:data:`ONE_OF_SUBSETS`;
with ``fullgraph=True`` it is the error).

Plain callables: besides regularkit ops, a step may be any function or
module ``x -> x`` (``lambda x: x / 255``, ``nn.Identity()``, a normalisation),
as in torchvision's ``Compose``.  It takes the batch alone and must return a
tensor of the same shape (checked); ``y`` passes it untouched, so a step that
changes labels is written as an :class:`~regularkit.augment.Augmentation`
(functions of ``(x, y)`` are refused up front).  It runs in ``apply``, so it
should be deterministic: its randomness, if any, is not driven by the
pipeline's generator.  A pipeline pickles when its callables do
(module-level functions, not lambdas).

Randomness: the pipeline's generator (the call's, else its own ``seed=``)
drives every op; with neither, each op uses its own ``seed=`` if it has one,
else torch's global RNG.  A pipeline takes any batch N x ... when none of its
ops needs images, else images (or one image C x H x W).

Targets: when a mixing op is in a pipeline, the rows it did not touch are
converted to soft targets with the same ``num_classes`` and
``label_smoothing``, so ``y`` out is one consistent N x K tensor.
"""
from __future__ import annotations

import inspect
from typing import Callable, Sequence

import torch
from torch import nn

from regularkit._util import rng
from regularkit._util.checks import check_bool, check_number, check_probability
from regularkit.augment.base import (
    Augmentation,
    Batch,
    Params,
    sample_view,
    select,
    shape_proxy,
)
from regularkit.augment.mix import encode_targets
from regularkit.errors import RegularkitError
from regularkit.noise.stochastic import break_before_draw

#: Why OneOf is not one torch.compile graph: the message of the graph break it inserts (with fullgraph=True,
#: the error), instead of torch's "Could not guard on data-dependent expression".
ONE_OF_SUBSETS = ("regularkit: OneOf runs each op on the subset of samples that drew it, whose size torch.compile "
                  "cannot know (graph break here; the subsets run eagerly between graphs). For one graph "
                  "(fullgraph=True), use MixUpCutMix for MixUp/CutMix (partners from the whole batch), or compile "
                  "the ops without OneOf")


def _takes_x_alone(fn: Callable) -> bool:
    """False for a callable that needs two or more positional arguments (an ``(x, y)`` function)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume x -> x
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.default is p.empty]
    return len(positional) <= 1


def _ops(ops) -> list:
    ops = list(ops)
    if not ops:
        raise RegularkitError("ops must hold at least one augmentation, got an empty list")
    for op in ops:
        if isinstance(op, Augmentation):
            continue
        if not callable(op):
            raise RegularkitError(f"ops must be regularkit augmentations or callables x -> x, got {type(op).__name__}")
        if not _takes_x_alone(op):
            raise RegularkitError(f"a plain callable in a pipeline takes x alone and returns x; "
                                  f"{getattr(op, '__name__', type(op).__name__)} needs more arguments")
    return ops


def _mix_spec(ops) -> tuple[int, float] | None:
    """(num_classes, label_smoothing) shared by the mixing ops, or None if none mixes."""
    specs = {(op.num_classes, op.label_smoothing) for op in ops if getattr(op, "mixes_targets", False)}
    if len(specs) > 1:
        raise RegularkitError(
            f"mixing ops in one pipeline must share num_classes and label_smoothing, got {sorted(specs)}")
    return specs.pop() if specs else None


def _as_soft(y: torch.Tensor, spec: tuple[int, float]) -> torch.Tensor:
    return y if y.dim() == 2 else encode_targets(y, spec[0], spec[1])


def _sample(op, x: torch.Tensor, generator: torch.Generator | None) -> Params:
    """An op's params (a callable has none), from the pipeline's generator or, without one, the op's own seed."""
    if not isinstance(op, Augmentation):
        return {}
    return op.make_params(x, generator if generator is not None else op.seeded_generator(x.device))


def _run(op, x: torch.Tensor, y: torch.Tensor | None, params: Params) -> Batch:
    if isinstance(op, Augmentation):
        return op.apply(x, y, params)
    out = op(x)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise RegularkitError(f"a plain callable in a pipeline must return x's shape {tuple(x.shape)}; "
                              f"{getattr(op, '__name__', type(op).__name__)} returned {got}")
    return out, y


class _Pipeline(Augmentation):
    def _init_ops(self, ops) -> None:
        self.ops = _ops(ops)
        # Registered as submodules (keyed by position) so .train() / .eval() / .to() / state_dict reach them.
        self._steps = nn.ModuleDict({str(i): op for i, op in enumerate(self.ops) if isinstance(op, nn.Module)})
        augmentations = [op for op in self.ops if isinstance(op, Augmentation)]
        self.images_only = any(op.images_only for op in augmentations)
        self.keeps_integer_dtype = all(op.keeps_integer_dtype for op in augmentations)
        self._spec = _mix_spec(augmentations)
        self.mixes_targets = self._spec is not None
        if self._spec is not None:
            self.num_classes, self.label_smoothing = self._spec

    @staticmethod
    def _out_shape(op, shape):
        return op.output_shape(shape) if isinstance(op, Augmentation) else tuple(shape)


class Compose(_Pipeline):
    """Apply ``ops`` in order; ``p`` is None (always), one probability, or one per op (per sample).

    ``ops``: regularkit augmentations or plain callables ``x -> x`` (module docstring).
    """

    def __init__(self, ops: Sequence[Augmentation | Callable], p=None, *, seed: int | None = None):
        super().__init__(seed=seed)
        self._init_ops(ops)
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

    def output_shape(self, shape):
        for op in self.ops:
            shape = self._out_shape(op, shape)
        return tuple(shape)

    def make_params(self, x, generator=None) -> Params:
        shape, steps = tuple(x.shape), []
        for op, prob in zip(self.ops, self._probs):
            mask = rng.rand(shape[0], device=x.device, generator=generator) < prob if prob < 1.0 else None
            steps.append((mask, _sample(op, shape_proxy(shape, x), generator)))
            new = self._out_shape(op, shape)
            if mask is not None and new != shape:
                raise RegularkitError(f"{type(op).__name__} changes the image shape {shape} -> {new}, "
                                      f"so it cannot be applied to some samples only (p must be 1)")
            shape = new
        return {"steps": steps}

    def apply(self, x, y, params) -> Batch:
        for op, (mask, sub) in zip(self.ops, params["steps"]):
            x_new, y_new = _run(op, x, y, sub)
            if mask is not None:
                x_new = select(sample_view(mask, x), x_new, x)
                if y_new is not None and y_new is not y:  # a step that leaves y alone keeps it as it is
                    if y_new.dim() != y.dim():
                        y = _as_soft(y, (op.num_classes, op.label_smoothing))
                    y_new = select(sample_view(mask, y_new), y_new, y)
            x, y = x_new, y_new
        return x, y


class OneOf(_Pipeline):
    """Each sample gets one of ``ops``, drawn with weights ``p`` (uniform by default); see the module docstring."""

    def __init__(self, ops: Sequence[Augmentation | Callable], p=None, *, per_sample: bool = True,
                 seed: int | None = None):
        super().__init__(seed=seed)
        self._init_ops(ops)
        weights = [1.0] * len(self.ops) if p is None else [check_number("p", v) for v in p]
        if len(weights) != len(self.ops) or min(weights) < 0 or sum(weights) <= 0:
            raise RegularkitError(f"p must be one non-negative weight per op, not all zero, got {p!r}")
        self.p = p
        self._weights = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.per_sample = check_bool("per_sample", per_sample)

    def output_shape(self, shape):
        outs = {self._out_shape(op, shape) for op in self.ops}
        if outs != {tuple(shape)}:
            raise RegularkitError(f"OneOf needs ops that keep the image shape {tuple(shape)}, got {sorted(outs)}")
        return tuple(shape)

    def make_params(self, x, generator=None) -> Params:
        n = x.shape[0]
        self.output_shape(x.shape)
        break_before_draw(ONE_OF_SUBSETS)
        # Inverse CDF on one uniform per sample (torch.multinomial costs ~0.4 ms per call on CPU).
        cdf = torch.cumsum(self._weights, 0)[:-1].float().to(x.device)
        u = rng.rand(n if self.per_sample else 1, device=x.device, generator=generator)
        choice = torch.searchsorted(cdf, u, right=True)
        choice = choice.expand(n)
        index, subs = [], []
        for k, op in enumerate(self.ops):
            idx = torch.nonzero(choice == k).squeeze(1)
            index.append(idx)
            subs.append(_sample(op, shape_proxy((len(idx),) + tuple(x.shape[1:]), x), generator)
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
            xk, yk = _run(op, x[idx], None if y is None else y[idx], sub)
            x_out[idx] = xk
            if y is not None:
                y_out[idx] = _as_soft(yk, self._spec).to(y_out.dtype) if self._spec is not None else yk
        return x_out, y_out
