"""Multi-layer perceptron with per-layer dropout, optional batch norm and DropConnect.

Layer order per hidden unit block follows the cookbook (deck 003): Linear ->
BatchNorm (before the nonlinearity, Ioffe & Szegedy 2015) -> activation ->
Dropout.  Per-layer rates let a recipe use the cookbook's keep 0.8 on inputs
and 0.5 on hidden units, or the DuocUC advice of lower rates near the output.

Hidden units (deck 003 "Hidden Units" / "Generalizations of ReLu"; Goodfellow
et al. 2016, §6.3): ``activation`` names one of :data:`_ACTIVATIONS`, and
``bottleneck=r`` makes every hidden Linear a rank-r product ``W = U·V``
(:class:`~regularkit.models.layers.LowRankLinear`, §6.3.3); the head stays a
full ``nn.Linear``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from regularkit._util.checks import check_choice, check_int
from regularkit.models.layers import AbsoluteValueRectification, LowRankLinear
from regularkit.noise import DropConnectLinear, Dropout

# Config name -> module class, built with no arguments (train.config.ACTIVATIONS lists the names).
# relu max(0, z); leaky_relu max(0, z) + 0.01 min(0, z) (Maas et al. 2013); prelu the same with a learned
# slope, torch's one slope per layer starting at 0.25 (He et al. 2015's channel-shared variant; Keras' PReLU
# learns one slope per unit from 0); abs_relu |z| (Jarrett et al. 2009); softplus log(1 + exp(z)) (Dugas et
# al. 2001).  The MLP and the CNN share this registry.
_ACTIVATIONS = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU, "abs_relu": AbsoluteValueRectification, "softplus": nn.Softplus,
}


def check_activation(name: str) -> str:
    """``name`` is a key of the activation registry."""
    return check_choice("activation", name, _ACTIVATIONS)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by its config name (``"relu"``, ``"tanh"``, ...)."""
    return _ACTIVATIONS[check_activation(name)]()


def dropout_layer(p: float, kind: str = "inverted") -> nn.Module:
    """regularkit's dropout module, or Identity when ``p == 0`` (keeps the graph small)."""
    if p == 0:
        return nn.Identity()
    return Dropout(p, classic=(kind == "classic"))


def linear_layer(n_in: int, n_out: int, dropconnect: float = 0.0, rank: int | None = None) -> nn.Module:
    """A hidden dense layer: ``nn.Linear``, or ``LowRankLinear`` of ``rank``; DropConnect on its Linear(s)."""
    if rank is not None:
        layer = LowRankLinear(n_in, n_out, rank)
        if dropconnect > 0:  # each factor drops its own connections, as models.adapt does to every hidden Linear
            layer.v = DropConnectLinear.from_linear(layer.v, p=dropconnect)
            layer.u = DropConnectLinear.from_linear(layer.u, p=dropconnect)
        return layer
    if dropconnect > 0:
        return DropConnectLinear(n_in, n_out, p=dropconnect)
    return nn.Linear(n_in, n_out)


def dense_stack(n_in: int, widths: Sequence[int], *, activation: str, dropout: Sequence[float],
                dropout_kind: str, batchnorm: bool, dropconnect: float = 0.0,
                bottleneck: int | None = None) -> tuple[nn.Sequential, int]:
    """Hidden dense blocks; returns the stack and its output width."""
    layers: list[nn.Module] = []
    for width, p in zip(widths, dropout):
        layers.append(linear_layer(n_in, width, dropconnect, bottleneck))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(make_activation(activation))
        layers.append(dropout_layer(p, dropout_kind))
        n_in = width
    return nn.Sequential(*layers), n_in


class MLP(nn.Module):
    """``input -> [input dropout] -> hidden blocks -> head`` (the head is a plain Linear).

    ``bottleneck=r``: every hidden Linear is a ``LowRankLinear`` of rank r.
    """

    def __init__(self, input_shape: Sequence[int], num_classes: int, *, widths: Sequence[int] = (256, 256),
                 activation: str = "relu", dropout: Sequence[float] | float = 0.0, input_dropout: float = 0.0,
                 dropout_kind: str = "inverted", batchnorm: bool = False, dropconnect: float = 0.0,
                 bottleneck: int | None = None):
        super().__init__()
        num_classes = check_int("num_classes", num_classes, minimum=2)
        check_activation(activation)
        if bottleneck is not None:
            bottleneck = check_int("bottleneck", bottleneck, minimum=1)
        n_in = math.prod(input_shape)
        rates = tuple(dropout) if isinstance(dropout, (tuple, list)) else (float(dropout),) * len(widths)
        self.input_dropout = dropout_layer(input_dropout, dropout_kind)
        self.features, n_out = dense_stack(
            n_in, widths, activation=activation, dropout=rates, dropout_kind=dropout_kind,
            batchnorm=batchnorm, dropconnect=dropconnect, bottleneck=bottleneck)
        self.head = nn.Linear(n_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(x.flatten(1))
        return self.head(self.features(x))


def build_mlp(input_shape, num_classes, **kwargs) -> MLP:
    return MLP(input_shape, num_classes, **kwargs)


def from_config(cfg, input_shape: Sequence[int], num_classes: int) -> MLP:
    """The MLP a :class:`~regularkit.train.config.ModelConfig` describes."""
    return MLP(input_shape, num_classes, widths=cfg.widths, activation=cfg.activation, dropout=cfg.hidden_dropout(),
               input_dropout=cfg.input_dropout, dropout_kind=cfg.dropout_kind, batchnorm=cfg.batchnorm,
               dropconnect=cfg.dropconnect, bottleneck=cfg.bottleneck)
