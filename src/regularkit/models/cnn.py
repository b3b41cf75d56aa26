"""A small CNN: conv stages (3x3 conv -> [BN] -> act -> 2x2 max-pool), then a dense head.

Sized for 8x8 digits and 28x28 Fashion-MNIST on a CPU.  Pooling stops when the
map is already 1 pixel wide, so any input size of at least 1x1 works.  The
activations are the MLP's registry (:data:`regularkit.models.mlp._ACTIVATIONS`);
``bottleneck=r`` makes the hidden Linear layers of the dense head rank-r
products ``W = U·V`` (:class:`~regularkit.models.layers.LowRankLinear`).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from regularkit._util.checks import check_int, check_int_tuple
from regularkit.errors import RegularkitError
from regularkit.models.mlp import check_activation, check_dense_args, dense_stack, dropout_layer, make_activation


class CNN(nn.Module):
    def __init__(self, input_shape: Sequence[int], num_classes: int, *, channels: Sequence[int] = (32, 64),
                 widths: Sequence[int] = (128,), activation: str = "relu",
                 dropout: Sequence[float] | float = 0.0, input_dropout: float = 0.0,
                 dropout_kind: str = "inverted", batchnorm: bool = False, dropconnect: float = 0.0,
                 bottleneck: int | None = None):
        super().__init__()
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
            shown = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else repr(input_shape)
            raise RegularkitError(f"the CNN needs images C x H x W, got input shape {shown}")
        num_classes = check_int("num_classes", num_classes, minimum=1)  # 1: one regression output
        c, h, w = check_int_tuple("input_shape", input_shape)
        channels = check_int_tuple("channels", channels)
        check_activation(activation)
        a = check_dense_args(widths, dropout, input_dropout, dropout_kind, batchnorm, dropconnect, bottleneck)
        batchnorm = a["batchnorm"]
        self.input_dropout = dropout_layer(a["input_dropout"], a["dropout_kind"])
        convs: list[nn.Module] = []
        for out in channels:
            convs.append(nn.Conv2d(c, out, 3, padding=1, bias=not batchnorm))
            if batchnorm:
                convs.append(nn.BatchNorm2d(out))
            convs.append(make_activation(activation))
            if min(h, w) >= 2:
                convs.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        self.conv = nn.Sequential(*convs)
        self.features, n_out = dense_stack(
            c * h * w, a["widths"], activation=activation, dropout=a["rates"], dropout_kind=a["dropout_kind"],
            batchnorm=batchnorm, dropconnect=a["dropconnect"], bottleneck=a["bottleneck"])
        self.head = nn.Linear(n_out, num_classes)
        self.feature_size = math.prod((c, h, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.input_dropout(x))
        return self.head(self.features(x.flatten(1)))


def build_cnn(input_shape, num_classes, **kwargs) -> CNN:
    return CNN(input_shape, num_classes, **kwargs)


def from_config(cfg, input_shape: Sequence[int], num_classes: int) -> CNN:
    """The CNN a :class:`~regularkit.train.config.ModelConfig` describes (``widths``: its dense head)."""
    return CNN(input_shape, num_classes, channels=cfg.channels, widths=cfg.widths, activation=cfg.activation,
               dropout=cfg.hidden_dropout(), input_dropout=cfg.input_dropout, dropout_kind=cfg.dropout_kind,
               batchnorm=cfg.batchnorm, dropconnect=cfg.dropconnect, bottleneck=cfg.bottleneck)
