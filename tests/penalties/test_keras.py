"""Penalties: NumPy formulas, worked examples, analytic gradients, selection, schedules, Keras parity."""

import copy
import pickle

import pytest
import torch
from _helpers.penalties import keras_l1_l2
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError


def test_keras_shortcuts_match_the_keras_formula():
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    xn = x.numpy()
    assert P.l1()(x).item() == pytest.approx(keras_l1_l2(xn, 0.01, 0.0))
    assert P.l2()(x).item() == pytest.approx(keras_l1_l2(xn, 0.0, 0.01))
    assert P.l1_l2()(x).item() == pytest.approx(keras_l1_l2(xn, 0.01, 0.01))
    assert P.l1_l2(l1=0.3, l2=0.02)(x).item() == pytest.approx(keras_l1_l2(xn, 0.3, 0.02))
    reg = P.l1_l2(l1=0.3, l2=0.02)
    assert P.WeightRegularizer.from_config(reg.get_config()) == reg
    assert pickle.loads(pickle.dumps(reg)) == reg
    with pytest.raises(RegularkitError, match=r"l2 must be >= 0, got -0.5"):
        P.l2(-0.5)


def test_regularize_and_regularization_loss_match_keras_dense():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    P.regularize(model[0], kernel_regularizer=P.l2(0.01), bias_regularizer=P.l1(0.1),
                 activity_regularizer=P.l1(0.05))
    P.regularize(model[2], kernel_regularizer=P.l1_l2(l1=0.02, l2=0.03))
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    out0 = nn.functional.linear(x, model[0].weight, model[0].bias).detach().numpy()  # not via the hook
    model(x)
    # Keras stores a Dense kernel as (in, out) = W^T: the penalties are sums, so equal.  Keras 3 (>= 3.14,
    # keras/src/layers/layer.py Layer.__call__) divides the activity term by the batch size, here 6.
    k0, k2 = model[0].weight.detach().numpy().T, model[2].weight.detach().numpy().T
    activity = keras_l1_l2(out0, 0.05, 0.0) / 6
    expected = (keras_l1_l2(k0, 0.0, 0.01) + keras_l1_l2(model[0].bias.detach().numpy(), 0.1, 0.0)
                + activity + keras_l1_l2(k2, 0.02, 0.03))
    total = P.regularization_loss(model)
    assert total.item() == pytest.approx(expected, rel=1e-5)
    # activity terms were consumed; kernel and bias terms remain
    assert P.regularization_loss(model).item() == pytest.approx(expected - activity, rel=1e-5)
    total = P.regularization_loss(model)
    total.backward()
    torch.testing.assert_close(model[0].weight.grad, 2 * 0.01 * model[0].weight.detach())
    # pickling / deepcopy keep the attachment working on the copy
    clone = copy.deepcopy(model)
    clone(x)
    assert P.regularization_loss(clone).item() == pytest.approx(expected, rel=1e-5)
    # calling again replaces; all None removes (and its hook)
    P.regularize(model[0])
    assert not model[0]._forward_hooks
    assert P.regularization_loss(model).item() == pytest.approx(keras_l1_l2(k2, 0.02, 0.03), rel=1e-5)


def test_regularize_errors():
    with pytest.raises(RegularkitError, match=r"bias_regularizer given but Linear has no bias tensor"):
        P.regularize(nn.Linear(2, 2, bias=False), bias_regularizer=P.l2())
    with pytest.raises(RegularkitError, match=r"kernel_regularizer must be callable \(tensor -> scalar\), got 0.01"):
        P.regularize(nn.Linear(2, 2), kernel_regularizer=0.01)
    with pytest.raises(RegularkitError, match=r"module must be a torch.nn.Module, got str"):
        P.regularize("dense", kernel_regularizer=P.l2())
    assert P.regularization_loss(nn.Linear(2, 2)).item() == 0.0
