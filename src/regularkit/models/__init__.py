"""Models built from a :class:`~regularkit.train.config.ModelConfig`.

Builder contract: ``builder(input_shape, num_classes, **kwargs) -> nn.Module``
mapping ``N x input_shape`` floats to ``N x num_classes`` logits; the last
layer is an ``nn.Linear`` named ``head`` (transfer learning and the class-prior
output bias find it there).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from regularkit.models.cnn import CNN, build_cnn
from regularkit.models.mlp import MLP, build_mlp


def _build_resnet(input_shape, num_classes, **kwargs):
    from regularkit.models.resnet import build_resnet
    return build_resnet(input_shape, num_classes, **kwargs)


# The registry: one literal dict (Keras' habit), no decorators scattered over imports.
MODELS = {"mlp": build_mlp, "cnn": build_cnn, "resnet": _build_resnet}


def build_model(cfg, input_shape: Sequence[int], num_classes: int, *, seed: int | None = None) -> nn.Module:
    """Build the model a ModelConfig describes; ``seed`` makes the initial weights reproducible.

    torch's layer constructors draw from the global RNG, so we fork it: the
    caller's global RNG state is left exactly as it was.
    """
    common = dict(dropout=cfg.hidden_dropout(), input_dropout=cfg.input_dropout,
                  dropout_kind=cfg.dropout_kind, batchnorm=cfg.batchnorm, dropconnect=cfg.dropconnect)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if cfg.kind == "mlp":
            model = build_mlp(input_shape, num_classes, widths=cfg.widths, activation=cfg.activation, **common)
        elif cfg.kind == "cnn":
            model = build_cnn(input_shape, num_classes, channels=cfg.channels, widths=cfg.widths,
                              activation_name=cfg.activation, **common)
        else:
            model = _build_resnet(input_shape, num_classes, widths=cfg.channels, drop_path=cfg.drop_path,
                                  batchnorm=cfg.batchnorm, dropout=max(cfg.hidden_dropout(), default=0.0))
        if cfg.init is not None or cfg.bias_init != 0.0:
            from regularkit.init import initialize
            initialize(model, weight=cfg.init, bias=cfg.bias_init)
    return model


__all__ = ["MODELS", "MLP", "CNN", "build_model", "build_mlp", "build_cnn"]
