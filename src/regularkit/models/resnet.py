"""A small residual CNN with stochastic depth, sized for 8x8 digits and 28x28 Fashion-MNIST.

He, Zhang, Ren & Sun (2016), "Deep residual learning for image recognition",
CVPR -- the basic block ``relu(shortcut(x) + bn(conv(relu(bn(conv(x))))))``;
Huang et al. (2016), "Deep networks with stochastic depth", ECCV -- the
residual branch of block ``l`` of ``L`` is dropped per sample with probability
``l / L * drop_path`` (the linear rule), while the shortcut always survives,
so at eval every block is its full deterministic residual function.

Layout: stem (3x3 conv) -> one stage per entry of ``widths``, each of
``blocks_per_stage`` basic blocks (the first block of every stage after the
first halves the resolution with stride 2 and a 1x1 projection shortcut,
unless the map is already 1 pixel) -> global average pool -> [dropout] ->
``head`` (an ``nn.Linear``, the last module applied; the builder contract).

Ghiasi et al. (2018), "DropBlock" -- ``drop_block=p``: a
:class:`~regularkit.noise.DropBlock2d` after both batch norms of the branch of
every block in the last two stages, as timm's ResNets place it (``gamma_scale``
0.25 in the second-last stage, 1 in the last).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from regularkit._util.checks import check_bool, check_int, check_int_tuple, check_rate
from regularkit.errors import RegularkitError
from regularkit.noise import DropBlock2d, Dropout, DropPath, linear_drop_path_rates


def _norm(channels: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


def _drop_block(p: float, block_size: int, stage: int, stages: int) -> DropBlock2d | None:
    """timm's placement (``drop_blocks`` in timm/models/resnet.py): the last two stages, ``gamma_scale``
    0.25 on the second-last and 1 on the last; the exact variant (the fast one overshoots on small maps)."""
    if p == 0 or stage < stages - 2:
        return None
    return DropBlock2d(p, block_size, gamma_scale=1.0 if stage == stages - 1 else 0.25, fast=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions on the branch, DropPath on the branch output, identity or projection shortcut."""

    def __init__(self, c_in: int, c_out: int, *, stride: int = 1, drop_path: float = 0.0, batchnorm: bool = True,
                 drop_block: nn.Module | None = None):
        super().__init__()
        # A conv followed by BN needs no bias: BN's beta replaces it.
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batchnorm)
        self.bn1 = _norm(c_out, batchnorm)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=not batchnorm)
        self.bn2 = _norm(c_out, batchnorm)
        self.act = nn.ReLU()
        self.drop_path = DropPath(drop_path)
        self.drop_block = drop_block  # after each BN of the branch, as timm's blocks; None: no module at all
        if stride == 1 and c_in == c_out:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=not batchnorm),
                                          _norm(c_out, batchnorm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn1(self.conv1(x))
        if self.drop_block is not None:
            h = self.drop_block(h)
        branch = self.bn2(self.conv2(self.act(h)))
        if self.drop_block is not None:
            branch = self.drop_block(branch)
        return self.act(self.shortcut(x) + self.drop_path(branch))


class ResNet(nn.Module):
    """``stem -> stages of BasicBlocks -> global average pool -> [dropout] -> head``."""

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, widths: Sequence[int] = (16, 32, 64),
                 blocks_per_stage: int = 1, drop_path: float = 0.0, batchnorm: bool = True, dropout: float = 0.0,
                 drop_block: float = 0.0, drop_block_size: int = 3):
        super().__init__()
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
            shown = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else repr(input_shape)
            raise RegularkitError(f"the resnet needs images C x H x W, got input shape {shown}")
        c, h, w = check_int_tuple("input_shape", input_shape)
        num_classes = check_int("num_classes", num_classes, minimum=1)  # 1: one regression output
        if isinstance(widths, (tuple, list)) and not widths:
            raise RegularkitError(f"widths must name at least one stage, got {tuple(widths)}")
        widths = check_int_tuple("widths", widths)
        blocks_per_stage = check_int("blocks_per_stage", blocks_per_stage, minimum=1)
        drop_path = check_rate("drop_path", drop_path)
        dropout = check_rate("dropout", dropout)
        batchnorm = check_bool("batchnorm", batchnorm)
        drop_block = check_rate("drop_block", drop_block)
        drop_block_size = check_int("drop_block_size", drop_block_size, minimum=1)

        self.stem = nn.Sequential(nn.Conv2d(c, widths[0], 3, padding=1, bias=not batchnorm),
                                  _norm(widths[0], batchnorm), nn.ReLU())
        self.drop_path_rates = linear_drop_path_rates(drop_path, len(widths) * blocks_per_stage)
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for stage, width in enumerate(widths):
            for b in range(blocks_per_stage):
                stride = 2 if stage > 0 and b == 0 and min(h, w) >= 2 else 1
                if stride == 2:
                    h, w = (h + 1) // 2, (w + 1) // 2  # 3x3 conv, padding 1, stride 2
                blocks.append(BasicBlock(c_in, width, stride=stride, batchnorm=batchnorm,
                                         drop_path=self.drop_path_rates[len(blocks)],
                                         drop_block=_drop_block(drop_block, drop_block_size, stage, len(widths))))
                c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(self.dropout(self.pool(x).flatten(1)))

    def mixing_stages(self) -> list[nn.Module]:
        """The forward as a chain (Manifold MixUp mixes the input of one stage): the stem, each block, then
        pool, dropout and head."""
        return [self.stem, *self.blocks, nn.Sequential(self.pool, nn.Flatten(), self.dropout, self.head)]


def build_resnet(input_shape: Sequence[int], num_classes: int, *, widths: Sequence[int] = (16, 32, 64),
                 blocks_per_stage: int = 1, drop_path: float = 0.0, batchnorm: bool = True,
                 dropout: float = 0.0, drop_block: float = 0.0, drop_block_size: int = 3) -> nn.Module:
    """Builder (models contract): ``N x C x H x W`` floats -> ``N x num_classes`` logits.

    Args:
        input_shape: ``(C, H, W)``.
        num_classes: number of logits (>= 2).
        widths: channels of each stage; every stage after the first halves the resolution.
        blocks_per_stage: basic blocks per stage.
        drop_path: stochastic-depth rate of the *last* block; block ``l`` of ``L`` gets ``l / L * drop_path``.
        batchnorm: BatchNorm2d after every convolution.
        dropout: inverted dropout rate before the head.
        drop_block: DropBlock's drop probability in the last two stages (module docstring).
        drop_block_size: DropBlock's block side.
    """
    return ResNet(input_shape, num_classes, widths=widths, blocks_per_stage=blocks_per_stage,
                  drop_path=drop_path, batchnorm=batchnorm, dropout=dropout, drop_block=drop_block,
                  drop_block_size=drop_block_size)


def from_config(cfg, input_shape: Sequence[int], num_classes: int) -> ResNet:
    """The ResNet a :class:`~regularkit.train.config.ModelConfig` describes (``channels``: its stage widths;
    ``dropout``: before the head, the largest hidden rate)."""
    return ResNet(input_shape, num_classes, widths=cfg.channels, drop_path=cfg.drop_path, batchnorm=cfg.batchnorm,
                  dropout=max(cfg.hidden_dropout(), default=0.0), drop_block=cfg.drop_block,
                  drop_block_size=cfg.drop_block_size)
