"""Weight sparsity: the fraction of selected weights near zero (the penalties' selection, frozen weights counted)."""
import pytest
import torch
from _helpers.penalties import LSTM_WEIGHTS, lstm_model
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError


def test_weight_sparsity():
    lin = nn.Linear(10, 10)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.weight[:3] = 1e-4  # 30 of 100 below 1e-3
        lin.bias.zero_()  # biases are not counted
    assert P.weight_sparsity(lin) == pytest.approx(0.3)
    assert P.weight_sparsity(lin, threshold=2.0) == 1.0
    assert P.weight_sparsity(lin, threshold=0.0) == 0.0
    with pytest.raises(RegularkitError, match=r"threshold must be >= 0, got -1"):
        P.weight_sparsity(lin, threshold=-1)
    with pytest.raises(RegularkitError, match=r"weight_sparsity: no parameter selected"):
        P.weight_sparsity(nn.BatchNorm1d(3))


def test_weight_sparsity_counts_every_weight_frozen_ones_too():
    model = lstm_model()
    params = dict(model.named_parameters())
    with torch.no_grad():
        params["embed.weight"].zero_()  # 66 zeros among the weights; biases zeroed too but not counted
        params["lstm.bias_ih_l0"].zero_()
    total = sum(params[n].numel() for n in LSTM_WEIGHTS)
    expected = sum(int((params[n].abs() < 1e-3).sum()) for n in LSTM_WEIGHTS) / total
    assert expected >= 66 / total
    assert P.weight_sparsity(model) == pytest.approx(expected)
    model.requires_grad_(False)  # an EMA copy is frozen: still measured
    assert P.weight_sparsity(model) == pytest.approx(expected)
    head = model["head"].weight
    old = int((head.abs() < 1e-3).sum()) / head.numel()  # the module-type rule: Linear/Conv weights only
    assert P.weight_sparsity(model, modules=P.DEFAULT_MODULES) == pytest.approx(old)
