"""Hidden-unit layers: absolute value rectification against the lecture's formula, the rank-r product W = U·V."""

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.metrics.sparsity import activation_modules
from regularkit.models import AbsoluteValueRectification, LowRankLinear


def test_absolute_value_rectification_is_the_lecture_formula_with_gradient_sign():
    z = torch.tensor([-2.5, -1.0, -1e-3, 0.0, 1e-3, 0.7, 3.0], requires_grad=True)
    g = AbsoluteValueRectification()
    out = g(z)
    zn = z.detach().numpy()
    np.testing.assert_array_equal(out.detach().numpy(), np.maximum(0, zn) - np.minimum(0, zn))  # deck 003
    assert torch.equal(out, F.prelu(z, torch.tensor([-1.0])))  # the PReLU family with alpha = -1
    out.sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), np.sign(zn))


def test_absolute_value_rectification_has_no_parameter_and_is_recognised_as_an_activation():
    g = AbsoluteValueRectification()
    assert list(g.parameters()) == [] and g.state_dict() == {}  # the slope is fixed: nothing to train or save
    assert isinstance(g, nn.PReLU) and activation_modules(nn.Sequential(nn.Linear(2, 2), g)) == [g]
    assert g.double().weight.dtype == torch.float64  # the fixed slope follows the module's dtype
    assert repr(g) == "AbsoluteValueRectification()"
    x = torch.randn(4, 3)
    assert torch.equal(pickle.loads(pickle.dumps(g))(x), x.abs())


@pytest.mark.parametrize("n_in, n_out, rank, bias", [(64, 256, 16, True), (256, 256, 4, False), (5, 3, 1, True)])
def test_low_rank_linear_has_rank_times_in_plus_out_weights(n_in, n_out, rank, bias):
    layer = LowRankLinear(n_in, n_out, rank, bias=bias)
    full = nn.Linear(n_in, n_out, bias=bias)
    count = sum(p.numel() for p in layer.parameters())
    assert count == rank * (n_in + n_out) + (n_out if bias else 0)
    assert sum(p.numel() for p in full.parameters()) == n_in * n_out + (n_out if bias else 0)
    assert layer(torch.randn(7, n_in)).shape == (7, n_out)
    w = layer.u.weight.detach().double() @ layer.v.weight.detach().double()  # W = U·V in float64
    assert np.linalg.matrix_rank(w.numpy()) == min(rank, n_in, n_out)


def test_low_rank_linear_applies_exactly_the_composed_matrix():
    rng = np.random.default_rng(0)
    layer = LowRankLinear(6, 4, 2)
    u, v, b = (rng.integers(-3, 4, size=s) for s in ((4, 2), (2, 6), (4,)))
    x = rng.integers(-5, 6, size=(9, 6))
    with torch.no_grad():  # small integers: every product and sum is exact in float32
        layer.u.weight.copy_(torch.from_numpy(u))
        layer.v.weight.copy_(torch.from_numpy(v))
        layer.u.bias.copy_(torch.from_numpy(b))
    assert layer.v.bias is None  # one bias, on the outer factor
    np.testing.assert_array_equal(layer.composed_weight().detach().numpy(), u @ v)  # W = U·V
    out = layer(torch.from_numpy(x).float())
    np.testing.assert_array_equal(out.detach().numpy(), x @ (u @ v).T + b)
    assert torch.equal(out, F.linear(torch.from_numpy(x).float(), layer.composed_weight(), layer.u.bias))


@pytest.mark.parametrize("call, match", [
    (lambda: LowRankLinear(4, 3, 0), "rank must be >= 1, got 0"),
    (lambda: LowRankLinear(4, 3, 2.5), "rank must be an integer, got 2.5"),
    (lambda: LowRankLinear(0, 3, 1), "in_features must be >= 1, got 0"),
])
def test_low_rank_linear_errors(call, match):
    with pytest.raises(RegularkitError, match=match):
        call()
