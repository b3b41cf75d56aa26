"""Penalties: NumPy formulas, worked examples, analytic gradients, selection, schedules, Keras parity."""



import pytest
import torch
from _helpers.penalties import make_model
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError


def test_default_selection_is_linear_and_conv_weights_only():
    model = make_model()
    names = [n for n, _ in P.select_parameters(model)]
    assert names == ["0.weight", "4.weight", "7.weight"]  # no bias, no BatchNorm/LayerNorm weight


def test_selection_by_type_and_pattern():
    model = make_model()
    assert [n for n, _ in P.select_parameters(model, nn.Linear)] == ["4.weight", "7.weight"]
    assert [n for n, _ in P.select_parameters(model, pattern=r"^7\.")] == ["7.weight"]
    biases = [n for n, _ in P.select_parameters(model, None, r"bias$")]
    assert biases == ["0.bias", "1.bias", "4.bias", "5.bias", "7.bias"]
    assert len(P.select_parameters(model, None)) == len(list(model.parameters()))


def test_tied_weights_counted_once():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert len(P.select_parameters(model)) == 1
    assert P.L2(1.0)(model).item() == pytest.approx(a.weight.square().sum().item())


@pytest.mark.parametrize("kwargs, match", [
    ({"modules": "Linear"}, r"modules must be None or a tuple of nn.Module types, got 'Linear'"),
    ({"modules": (int,)}, r"modules must be None or a tuple of nn.Module types"),
    ({"pattern": "("}, r"pattern is not a valid regular expression: '\('"),
    ({"pattern": 3}, r"pattern must be a regular expression string, got 3"),
])
def test_selection_errors(kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        P.select_parameters(make_model(), **kwargs)
    with pytest.raises(RegularkitError, match=match):
        P.L2(0.1, **kwargs)


def test_select_needs_a_module():
    with pytest.raises(RegularkitError, match="model must be a torch.nn.Module, got Tensor"):
        P.select_parameters(torch.zeros(3))


def test_empty_selection_is_a_zero_loss_term():
    model = nn.Sequential(nn.BatchNorm1d(3))
    value = P.L2(0.1)(model)
    assert value.shape == () and value.item() == 0.0
