"""A small CNN: conv stages (3x3 conv -> [BN] -> act -> 2x2 max-pool), then a dense head.

Sized for 8x8 digits and 28x28 Fashion-MNIST on a CPU.  Each stage halves the
map, so ``k`` stages need inputs of at least ``2**k x 2**k``: a smaller input is
refused at construction, naming that size (a stage on a 1-pixel map would be a
3x3 conv reduced to its centre tap, said by nobody).  The
activations are the MLP's registry (:data:`regularkit.models.mlp._ACTIVATIONS`);
``bottleneck=r`` makes the hidden Linear layers of the dense head rank-r
products ``W = U·V`` (:class:`~regularkit.models.layers.LowRankLinear`).
``drop_block=p`` puts a :class:`~regularkit.noise.DropBlock2d` (``drop_block_size``,
the exact variant: the fast one overshoots on small maps, docs/noise.md) after
the activation of every conv stage but the first (of the only one, if one),
before its pooling.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from regularkit._util.checks import check_int, check_int_tuple, check_rate
from regularkit.errors import RegularkitError
from regularkit.models.layers import split_before
from regularkit.models.mlp import (
    DENSE_TYPES,
    check_activation,
    check_dense_args,
    dense_stack,
    dropout_layer,
    make_activation,
)
from regularkit.noise import DropBlock2d


class CNN(nn.Module):
    def __init__(self, input_shape: Sequence[int], num_classes: int, *, channels: Sequence[int] = (32, 64),
                 widths: Sequence[int] = (128,), activation: str = "relu",
                 dropout: Sequence[float] | float = 0.0, input_dropout: float = 0.0,
                 dropout_kind: str = "inverted", batchnorm: bool = False, dropconnect: float = 0.0,
                 bottleneck: int | None = None, drop_block: float = 0.0, drop_block_size: int = 3):
        super().__init__()
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
            shown = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else repr(input_shape)
            raise RegularkitError(f"the CNN needs images C x H x W, got input shape {shown}")
        num_classes = check_int("num_classes", num_classes, minimum=1)  # 1: one regression output
        c, h, w = check_int_tuple("input_shape", input_shape)
        channels = check_int_tuple("channels", channels)
        need = 2 ** len(channels)  # every stage's 3x3 conv sees at least 2 x 2 (on 1 x 1 it is a 1x1 conv)
        if min(h, w) < need:
            fits = min(h, w).bit_length() - 1  # the most stages this size takes: floor(log2(min(h, w)))
            advice = f"give at most {fits} channel stage(s)" if fits else "use an MLP"
            raise RegularkitError(f"a CNN with {len(channels)} conv stage(s) halves the image {len(channels)} time(s) "
                                  f"and needs inputs of at least {need} x {need}, got {h} x {w}; {advice}")
        check_activation(activation)
        a = check_dense_args(widths, dropout, input_dropout, dropout_kind, batchnorm, dropconnect, bottleneck)
        batchnorm = a["batchnorm"]
        self.input_dropout = dropout_layer(a["input_dropout"], a["dropout_kind"])
        drop_block = check_rate("drop_block", drop_block)
        drop_block_size = check_int("drop_block_size", drop_block_size, minimum=1)
        convs: list[nn.Module] = []
        for stage, out in enumerate(channels):
            convs.append(nn.Conv2d(c, out, 3, padding=1, bias=not batchnorm))
            if batchnorm:
                convs.append(nn.BatchNorm2d(out))
            convs.append(make_activation(activation))
            if drop_block > 0 and (stage > 0 or len(channels) == 1):  # the later stages (Ghiasi et al.)
                convs.append(DropBlock2d(drop_block, drop_block_size, fast=False))
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

    def mixing_stages(self) -> list[nn.Module]:
        """The forward as a chain (Manifold MixUp mixes the input of one stage): input dropout and the first
        conv stage; each further conv stage; flatten and the first dense block; each further one; the head."""
        convs = split_before(self.conv, (nn.Conv2d,))
        dense = split_before(self.features, DENSE_TYPES)
        return [nn.Sequential(self.input_dropout, *convs[0]), *convs[1:],
                nn.Sequential(nn.Flatten(), *dense[0]), *dense[1:], self.head]


def from_config(cfg, input_shape: Sequence[int], num_classes: int) -> CNN:
    """The CNN a :class:`~regularkit.train.config.ModelConfig` describes (``widths``: its dense head)."""
    return CNN(input_shape, num_classes, channels=cfg.channels, widths=cfg.widths, activation=cfg.activation,
               dropout=cfg.hidden_dropout(), input_dropout=cfg.input_dropout, dropout_kind=cfg.dropout_kind,
               batchnorm=cfg.batchnorm, dropconnect=cfg.dropconnect, bottleneck=cfg.bottleneck,
               drop_block=cfg.drop_block, drop_block_size=cfg.drop_block_size)
