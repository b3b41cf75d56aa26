"""Penalties: NumPy formulas, worked examples, analytic gradients, selection, schedules, Keras parity."""



import pytest
import torch
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
