"""The speed-run network: a whitening stem that downsamples, then conv groups with batch norm.

The shape is airbench's (Keller Jordan, 2024, ``airbench94.py``), cut for a
2-core CPU and 28 x 28 images::

    WhiteningConv(k=4, stride 2, padding 1)   28 x 28 -> 14 x 14, 2 * 16 channels, frozen
    GELU
    ConvGroup(w1)   conv 3x3 -> max-pool 2 -> BN -> GELU -> conv 3x3 -> BN -> GELU    14 -> 7
    ConvGroup(w2)   ...                                                               7 -> 3
    ConvGroup(w3)   ...                                                               3 -> 1
    global max-pool -> Linear(w3, K, bias=False) -> times ``head_scale``

The first layer's stride 2 is the "downsample early": on two CPU cores a
3 x 3 convolution over 28 x 28 maps with few input channels is the slowest
layer there is (little arithmetic per byte moved), so every trained layer here
runs at 14 x 14 or below.  Pooling comes right after each group's first
convolution (airbench's order), so the second convolution of a group runs at
the pooled size.  Convolutions before batch norm have no bias (BN's shift is
the bias); without batch norm (the ablation) they get one.  ``head_scale``
(airbench's ``1/9``) keeps the initial logits small, which suits the
high learning rate the schedule starts from.

Initialisation: convolutions and the head use torch's defaults (as airbench);
the stem is whitening-initialised by :meth:`SpeedrunNet.fit_whitening` from
training images, unless the run is the ablation without it, in which case the
stem is an ordinary trainable convolution of the same shape.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from regularkit._util.checks import check_bool, check_int, check_int_tuple, check_number
from regularkit.speedrun.whitening import WhiteningConv

__all__ = ["ConvGroup", "SpeedrunNet"]


class ConvGroup(nn.Sequential):
    """conv 3x3 -> max-pool 2 (while the map is >= 2 wide) -> BN -> GELU -> conv 3x3 -> BN -> GELU."""

    def __init__(self, in_channels: int, out_channels: int, *, pool: bool = True, batchnorm: bool = True,
                 bn_momentum: float = 0.1):
        def norm():
            return nn.BatchNorm2d(out_channels, momentum=bn_momentum) if batchnorm else nn.Identity()

        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=not batchnorm)]
        if pool:
            layers.append(nn.MaxPool2d(2))
        layers += [norm(), nn.GELU(), nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=not batchnorm),
                   norm(), nn.GELU()]
        super().__init__(*layers)


class SpeedrunNet(nn.Module):
    """The network above for ``input_shape`` (C, H, W) and ``num_classes`` outputs."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, widths: Sequence[int] = (64, 128, 256),
                 patch: int = 4, whiten_eps: float = 5e-4, batchnorm: bool = True, bn_momentum: float = 0.1,
                 head_scale: float = 1 / 9):
        super().__init__()
        c, h, w = check_int_tuple("input_shape", input_shape)
        num_classes = check_int("num_classes", num_classes, minimum=2)
        widths = check_int_tuple("widths", widths)
        patch = check_int("patch", patch, minimum=1)
        batchnorm = check_bool("batchnorm", batchnorm)
        self.head_scale = check_number("head_scale", head_scale)
        # stride 2, padding (patch - 1) // 2: 28 x 28 -> 14 x 14 for patch 2, 3 and 4
        self.whiten = WhiteningConv(c, patch, stride=2, padding=(patch - 1) // 2, eps=whiten_eps)
        size = (h + 2 * self.whiten.padding[0] - patch) // 2 + 1
        groups: list[nn.Module] = []
        channels = self.whiten.out_channels
        for width in widths:
            groups.append(ConvGroup(channels, width, pool=size >= 2, batchnorm=batchnorm, bn_momentum=bn_momentum))
            size, channels = (size // 2 if size >= 2 else size), width
        self.act = nn.GELU()
        self.groups = nn.Sequential(*groups)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(channels, num_classes, bias=False)

    @torch.no_grad()
    def fit_whitening(self, images: torch.Tensor) -> "SpeedrunNet":
        """Whitening-initialise (and freeze) the stem from training images N x C x H x W."""
        self.whiten.fit(images)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(self.act(self.whiten(x)))
        return self.head(self.pool(x).flatten(1)) * self.head_scale
