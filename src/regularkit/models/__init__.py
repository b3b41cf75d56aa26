"""Models built from a :class:`~regularkit.train.config.ModelConfig`, through one registry.

Builder contract: ``builder(input_shape, num_classes, **kwargs) -> nn.Module``
mapping ``N x input_shape`` floats to ``N x num_classes`` logits; the last
layer is an ``nn.Linear`` named ``head`` (transfer learning and the class-prior
output bias find it there).  :data:`MODELS` maps a ``ModelConfig.kind`` to the
function that reads the config and calls its builder.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from regularkit._util.checks import check_choice
from regularkit.init import initialize
from regularkit.models import cnn, mlp, resnet
from regularkit.models.adapt import adapt
from regularkit.models.cnn import CNN
from regularkit.models.factory import Factory, call_factory, load_factory
from regularkit.models.layers import AbsoluteValueRectification, LowRankLinear
from regularkit.models.mlp import MLP
from regularkit.models.resnet import ResNet, build_resnet

# The registry: one literal dict (Keras' habit), no decorators scattered over imports.
MODELS = {"mlp": mlp.from_config, "cnn": cnn.from_config, "resnet": resnet.from_config}


def build_model(cfg, input_shape: Sequence[int], num_classes: int, *, seed: int | None = None,
                factory: Factory | None = None) -> nn.Module:
    """Build the model a ModelConfig describes; ``seed`` makes the initial weights reproducible.

    ``cfg.kind == "factory"``: the user's ``build(input_shape, num_classes)`` (``factory``, or
    loaded from ``cfg.factory``), checked on a batch of zeros, then the config's regularization
    knobs applied by the rules of :mod:`regularkit.models.adapt`.  torch's layer constructors
    draw from the global RNG, so we fork it: the caller's global RNG state is left as it was.
    """
    build = None
    if cfg.kind == "factory":
        build = factory if factory is not None else load_factory(cfg.factory)
    else:
        check_choice("model.kind", cfg.kind, MODELS)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if build is None:
            model = MODELS[cfg.kind](cfg, input_shape, num_classes)
        else:
            model = adapt(call_factory(build, input_shape, num_classes, cfg.factory), cfg)
        if cfg.init is not None or cfg.bias_init != 0.0:
            initialize(model, weight=cfg.init, bias=cfg.bias_init)
    return model


__all__ = ["MODELS", "MLP", "CNN", "ResNet", "build_model", "build_resnet", "load_factory",
           "AbsoluteValueRectification", "LowRankLinear"]
