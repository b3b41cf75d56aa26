"""MLP and CNN: shapes, per-layer dropout, layer order, seeded construction."""


import pytest
import torch
from torch import nn

from regularkit.models import MLP
from regularkit.noise import DropConnectLinear, Dropout


@pytest.mark.parametrize("shape", [(64,), (1, 8, 8), (3, 5, 7)])
def test_mlp_maps_any_input_shape_to_logits(shape):
    m = MLP(shape, 10, widths=(32, 16))
    assert m(torch.randn(5, *shape)).shape == (5, 10)
    assert isinstance(m.head, nn.Linear) and m.head.out_features == 10


def test_per_layer_dropout_rates_and_input_dropout():
    m = MLP((20,), 3, widths=(32, 16, 8), dropout=(0.5, 0.3, 0.0), input_dropout=0.2)
    rates = [mod.p for mod in m.features if isinstance(mod, Dropout)]
    assert rates == [0.5, 0.3]  # a zero rate adds no layer
    assert isinstance(m.input_dropout, Dropout) and m.input_dropout.p == 0.2


def test_batchnorm_sits_before_the_nonlinearity():
    m = MLP((4,), 2, widths=(8,), batchnorm=True)
    kinds = [type(x) for x in m.features]
    assert kinds[:3] == [nn.Linear, nn.BatchNorm1d, nn.ReLU]


def test_classic_dropout_kind_and_dropconnect_are_built():
    m = MLP((4,), 2, widths=(8, 8), dropout=0.5, dropout_kind="classic", dropconnect=0.3)
    assert all(d.classic for d in m.modules() if isinstance(d, Dropout))
    assert sum(isinstance(x, DropConnectLinear) for x in m.modules()) == 2
    assert type(m.head) is nn.Linear  # the output layer keeps all its connections


def test_eval_mode_is_deterministic_and_train_mode_is_not():
    m = MLP((10,), 3, widths=(64,), dropout=0.5)
    x = torch.randn(8, 10)
    m.eval()
    assert torch.equal(m(x), m(x))
    m.train()
    assert not torch.equal(m(x), m(x))
