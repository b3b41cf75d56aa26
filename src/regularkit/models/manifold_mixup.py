"""Manifold MixUp: MixUp at a hidden layer drawn at random for every batch.

Verma, Lamb, Beckham, Najafi, Mitliagkas, Lopez-Paz & Bengio (2019),
"Manifold Mixup: better representations by interpolating hidden states", ICML.
Write the network as a chain ``f = f_S o ... o f_1``.  For every batch draw a
mixing point ``k`` uniformly from the eligible set, ``lam ~ Beta(alpha, alpha)``
and a partner ``j`` for every sample ``i``; then

    h_k = f_k o ... o f_1 (x)                     (k = 0: the input itself)
    h~  = lam h_k[i] + (1 - lam) h_k[j]           y~ = lam y_i + (1 - lam) y_j
    logits = f_S o ... o f_{k+1} (h~)

and train on ``CE(logits, y~)``.  ``k = 0`` is input MixUp (Zhang et al. 2018).
The paper draws one ``lam`` per batch (the default here, ``per_sample=False``)
and ``alpha = 2`` in most of its experiments; for its PreActResNets the
eligible set is the input and the first two stages (``layers=(0, 1, 2)``).

The chain comes from the model: the built-in MLP, CNN and ResNet expose
``mixing_stages()`` (their blocks: a point ``k`` mixes the input of stage ``k``,
so the head's input is the last point), and a plain ``nn.Sequential`` is the
chain of its children.  Any other model is refused with one line: its forward
is not a chain we can cut.  The mixing itself and the targets are the MixUp
kernels of :mod:`regularkit.augment.mix` (``mixup``, ``mix_targets``,
``partner_index``, ``encode_targets``), so both mix exactly as input MixUp does
(pairing on a random cycle, no sample paired with itself).

Sample, then apply: :meth:`ManifoldMixup.make_params` draws ``layer``, ``lam``
and ``partner``; :func:`mixed_forward` / :meth:`ManifoldMixup.apply` are
deterministic.  Two ways to train with it:

* ``logits, y_mixed = wrapper(x, y)`` (training mode), then any loss on soft targets;
* ``fit`` with any step (``loss_fn(model(x), y)`` after ``batch_transform``):
  ``fit(wrapper, ..., batch_transform=wrapper.batch_transform)``.  The transform
  draws the parameters, mixes the targets and keeps the draw for the training
  forwards of that batch (a step with two forwards, SAM or R-Drop, mixes both
  alike); the next ``batch_transform`` replaces it and any change of mode
  (``train()`` / ``eval()``: every epoch of ``fit``, ``evaluate``, BN
  recalibration) forgets it.  Eval is always the plain model.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from regularkit._util import rng
from regularkit._util.checks import check_bool, check_in_range, check_int, check_positive
from regularkit.augment.mix import encode_targets, mix_targets, mixup, partner_index
from regularkit.errors import RegularkitError
from regularkit.noise.stochastic import Stochastic

__all__ = ["mixing_stages", "mixed_forward", "ManifoldMixup"]

Params = dict


def mixing_stages(model: nn.Module) -> list[nn.Module]:
    """The chain of stages whose composition is ``model``'s forward; refused (one line) for other models."""
    if hasattr(model, "mixing_stages"):
        return list(model.mixing_stages())
    if isinstance(model, nn.Sequential) and len(model) >= 2:
        return list(model)
    raise RegularkitError(
        f"manifold mixup cannot mix inside {type(model).__name__}: it needs a model whose forward is a chain of "
        f"stages (the built-in mlp, cnn or resnet, or an nn.Sequential of at least 2 modules)")


def mixed_forward(stages: Sequence[nn.Module], x: torch.Tensor, params: Params) -> torch.Tensor:
    """Run the chain, mixing the input of stage ``params["layer"]`` with ``lam`` and ``partner`` (deterministic)."""
    layer = params["layer"]
    if not 0 <= layer < len(stages):
        raise RegularkitError(f"layer must be in [0, {len(stages) - 1}] for a chain of {len(stages)} stages, "
                              f"got {layer}")
    h = x
    for k, stage in enumerate(stages):
        if k == layer:
            if not h.is_floating_point():
                raise RegularkitError(f"manifold mixup mixes floating tensors, got dtype {h.dtype} at layer {k}")
            h = mixup(h, params["partner"], params["lam"])
        h = stage(h)
    return h


class ManifoldMixup(Stochastic):
    """Manifold MixUp around a model (module docstring); eval and ``y=None`` are the plain model.

    Args:
        model: the built-in MLP / CNN / ResNet or an ``nn.Sequential`` (refused otherwise).
        alpha: Beta concentration (> 0).
        num_classes: K, the width of the soft targets.
        layers: the eligible mixing points (``0`` = input, ``k`` = input of stage ``k``); ``None``: all.
        per_sample: one ``lam`` per sample instead of one per batch (the paper's).
        label_smoothing: uniform smoothing of class-index targets before mixing (as MixUp's).
        seed / generator: the source of the draws (``None``: torch's global RNG).
    """

    def __init__(self, model: nn.Module, alpha: float = 2.0, *, num_classes: int,
                 layers: Sequence[int] | None = None, per_sample: bool = False, label_smoothing: float = 0.0,
                 seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        if not isinstance(model, nn.Module):
            raise RegularkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        n = len(mixing_stages(model))
        self.alpha = check_positive("alpha", alpha)
        self.num_classes = check_int("num_classes", num_classes, minimum=2)
        if layers is None:
            self.layers = tuple(range(n))
        else:
            if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__") or not list(layers):
                raise RegularkitError(f"layers must be a non-empty list of mixing points, got {layers!r}")
            self.layers = tuple(check_int("layers", k, minimum=0) for k in layers)
            if max(self.layers) >= n:
                raise RegularkitError(f"layers must be in [0, {n - 1}] ({type(model).__name__} has {n} mixing "
                                      f"points), got {max(self.layers)}")
        self.per_sample = check_bool("per_sample", per_sample)
        self.label_smoothing = check_in_range("label_smoothing", label_smoothing, 0.0, 1.0)
        self._pending: Params | None = None

    def make_params(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Params:
        """Draw the mixing point (one per batch), ``lam`` (one, or one per sample) and the partners."""
        if generator is None:
            generator = self._generator_for(x.device)
        n = x.shape[0]
        pick = int(torch.randint(len(self.layers), (1,), generator=generator,
                                 device=rng.draw_device(x.device, generator)))
        lam = rng.beta(n if self.per_sample else 1, self.alpha, device=x.device, generator=generator)
        return {"layer": self.layers[pick], "lam": lam.expand(n).clone(),
                "partner": partner_index(n, "shuffle", x, generator)}

    def mix_targets(self, y: torch.Tensor, params: Params) -> torch.Tensor:
        """``lam y_i + (1 - lam) y_partner`` as soft targets N x K."""
        return mix_targets(encode_targets(y, self.num_classes, self.label_smoothing), params["partner"],
                           params["lam"])

    def apply(self, x: torch.Tensor, y: torch.Tensor, params: Params) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed logits and the mixed soft targets for fixed ``params`` (deterministic)."""
        return mixed_forward(mixing_stages(self.model), x, params), self.mix_targets(y, params)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, *,
                generator: torch.Generator | None = None):
        if not self.training:
            return self.model(x)
        if y is not None:
            return self.apply(x, y, self.make_params(x, generator))
        params = self._pending
        if params is None:
            return self.model(x)
        if params["partner"].shape[0] != x.shape[0]:
            raise RegularkitError(f"the mixing drawn by batch_transform is for {params['partner'].shape[0]} "
                                  f"samples, but the model got a batch of {x.shape[0]}")
        return mixed_forward(mixing_stages(self.model), x, params)

    def batch_transform(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None):
        """``fit``'s ``batch_transform``: draw, mix the targets now, mix the hidden layer in the training
        forwards of this batch (module docstring)."""
        params = self.make_params(x, generator)
        self._pending = params
        return x, self.mix_targets(y, params)

    def train(self, mode: bool = True) -> "ManifoldMixup":
        """Switching mode (``fit`` every epoch, ``evaluate``, BN recalibration) forgets a pending draw."""
        self._pending = None
        return super().train(mode)

    def get_config(self) -> dict:
        return {"alpha": self.alpha, "num_classes": self.num_classes, "layers": list(self.layers),
                "per_sample": self.per_sample, "label_smoothing": self.label_smoothing, "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict, *, model: nn.Module) -> "ManifoldMixup":
        """A wrapper from :meth:`get_config`'s dict around ``model`` (the model is not config)."""
        if not isinstance(config, dict):
            raise RegularkitError(f"config must be a dict of constructor arguments, got {config!r}")
        return cls(model, **config)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, layers={self.layers}" + (", per_sample=True" if self.per_sample else "")
