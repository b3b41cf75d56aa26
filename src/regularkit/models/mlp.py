"""Multi-layer perceptron with per-layer dropout, optional batch norm and DropConnect.

Layer order per hidden unit block follows the cookbook (deck 003): Linear ->
BatchNorm (before the nonlinearity, Ioffe & Szegedy 2015) -> activation ->
Dropout.  Per-layer rates let a recipe use the cookbook's keep 0.8 on inputs
and 0.5 on hidden units, or the DuocUC advice of lower rates near the output.

Hidden units (deck 003 "Hidden Units" / "Generalizations of ReLu"; Goodfellow
et al. 2016, §6.3): ``activation`` names one of :data:`_ACTIVATIONS`, and
``bottleneck=r`` makes every hidden Linear a rank-r product ``W = U·V``
(:class:`~regularkit.models.layers.LowRankLinear`, §6.3.3); the head stays a
full ``nn.Linear``.  ``dropout_kind="alpha"`` uses alpha dropout (Klambauer et al. 2017) for
every dropout layer, the one that keeps a SELU network self-normalizing.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from regularkit._util.checks import check_bool, check_choice, check_int, check_int_tuple, check_rate
from regularkit.errors import RegularkitError
from regularkit.models.layers import AbsoluteValueRectification, LowRankLinear, split_before
from regularkit.noise import AlphaDropout, DropConnectLinear, Dropout

# Config name -> module class, built with no arguments (train.config.ACTIVATIONS lists the names).
# relu max(0, z); leaky_relu max(0, z) + 0.01 min(0, z) (Maas et al. 2013); prelu the same with a learned
# slope, torch's one slope per layer starting at 0.25 (He et al. 2015's channel-shared variant; Keras' PReLU
# learns one slope per unit from 0); abs_relu |z| (Jarrett et al. 2009); softplus log(1 + exp(z)) (Dugas et
# al. 2001).  The MLP and the CNN share this registry.
_ACTIVATIONS = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU, "abs_relu": AbsoluteValueRectification, "softplus": nn.Softplus,
    "selu": nn.SELU,  # scaled ELU, self-normalizing with LeCun-normal init and alpha dropout (Klambauer et al. 2017)
}


#: inverted / classic dropout (Srivastava et al.), or alpha dropout (Klambauer et al. 2017, with SELU)
DROPOUT_KINDS = ("inverted", "classic", "alpha")

#: the modules a hidden dense block starts with (DropConnectLinear is an nn.Linear)
DENSE_TYPES = (nn.Linear, LowRankLinear)


def check_activation(name: str) -> str:
    """``name`` is a key of the activation registry."""
    return check_choice("activation", name, _ACTIVATIONS)


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by its config name (``"relu"``, ``"tanh"``, ...)."""
    return _ACTIVATIONS[check_activation(name)]()


def check_rates(dropout: Sequence[float] | float, n: int) -> tuple[float, ...]:
    """One drop rate in [0, 1) per hidden layer: one number for all ``n``, or ``n`` of them."""
    if isinstance(dropout, (tuple, list)):
        rates = tuple(check_rate("dropout", p) for p in dropout)
        if len(rates) != n:
            raise RegularkitError(f"dropout has {len(rates)} rates but the model has {n} hidden layers; "
                                  f"got {tuple(dropout)}")
        return rates
    return (check_rate("dropout", dropout),) * n


def check_dense_args(widths, dropout, input_dropout, dropout_kind, batchnorm, dropconnect, bottleneck) -> dict:
    """The arguments the MLP and the CNN's dense head share, checked before any layer is built."""
    widths = check_int_tuple("widths", widths)
    return {"widths": widths, "rates": check_rates(dropout, len(widths)),
            "input_dropout": check_rate("input_dropout", input_dropout),
            "dropout_kind": check_choice("dropout_kind", dropout_kind, DROPOUT_KINDS),
            "batchnorm": check_bool("batchnorm", batchnorm), "dropconnect": check_rate("dropconnect", dropconnect),
            "bottleneck": None if bottleneck is None else check_int("bottleneck", bottleneck, minimum=1)}


def dropout_layer(p: float, kind: str = "inverted") -> nn.Module:
    """regularkit's dropout module (``"alpha"``: :class:`~regularkit.noise.AlphaDropout`, for SELU networks),
    or Identity when ``p == 0`` (keeps the graph small)."""
    if p == 0:
        return nn.Identity()
    if kind == "alpha":
        return AlphaDropout(p)
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
        num_classes = check_int("num_classes", num_classes, minimum=1)  # 1: one regression output
        input_shape = check_int_tuple("input_shape", input_shape)
        check_activation(activation)
        a = check_dense_args(widths, dropout, input_dropout, dropout_kind, batchnorm, dropconnect, bottleneck)
        n_in = math.prod(input_shape)
        self.input_dropout = dropout_layer(a["input_dropout"], a["dropout_kind"])
        self.features, n_out = dense_stack(
            n_in, a["widths"], activation=activation, dropout=a["rates"], dropout_kind=a["dropout_kind"],
            batchnorm=a["batchnorm"], dropconnect=a["dropconnect"], bottleneck=a["bottleneck"])
        self.head = nn.Linear(n_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_dropout(x.flatten(1))
        return self.head(self.features(x))

    def mixing_stages(self) -> list[nn.Module]:
        """The forward as a chain (Manifold MixUp mixes the input of one stage): flatten, input dropout and
        the first hidden block; each further hidden block; the head."""
        blocks = split_before(self.features, DENSE_TYPES)
        return [nn.Sequential(nn.Flatten(), self.input_dropout, *blocks[0]), *blocks[1:], self.head]


def from_config(cfg, input_shape: Sequence[int], num_classes: int) -> MLP:
    """The MLP a :class:`~regularkit.train.config.ModelConfig` describes."""
    return MLP(input_shape, num_classes, widths=cfg.widths, activation=cfg.activation, dropout=cfg.hidden_dropout(),
               input_dropout=cfg.input_dropout, dropout_kind=cfg.dropout_kind, batchnorm=cfg.batchnorm,
               dropconnect=cfg.dropconnect, bottleneck=cfg.bottleneck)
