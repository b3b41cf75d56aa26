"""The documented rules that put a recipe's knobs on a model someone else built."""
import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.models.adapt import adapt, dropout_layers, hidden_linears, inapplicable
from regularkit.noise import DropConnectLinear, Dropout
from regularkit.train import ModelConfig

BASE = ModelConfig(kind="factory", factory="f.py:build")


def user_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 6), nn.ReLU(), nn.Dropout(0.1), nn.Linear(6, 5), nn.ReLU(),
                         nn.Dropout1d(0.2), nn.Linear(5, 3))


def cfg(**kw):
    return ModelConfig(**{**BASE.__dict__, **kw})


def test_dropout_rates_set_in_module_order_one_or_per_layer():
    m = adapt(user_model(), cfg(dropout=0.3))
    assert [d.p for _, d in dropout_layers(m)] == [0.3, 0.3]
    m = adapt(user_model(), cfg(dropout=(0.2, 0.5), widths=(1, 1)))
    assert [d.p for _, d in dropout_layers(m)] == [0.2, 0.5]


def test_classic_dropout_replaces_the_layers():
    m = adapt(user_model(), cfg(dropout=0.3, dropout_kind="classic"))
    layers = [d for _, d in dropout_layers(m)]
    assert all(isinstance(d, Dropout) and d.classic and d.p == 0.3 for d in layers)


def test_dropconnect_swaps_every_linear_but_the_head_and_shares_parameters():
    model = user_model()
    before = [model[1].weight, model[4].weight, model[7].weight]
    m = adapt(model, cfg(dropconnect=0.25))
    assert isinstance(m[1], DropConnectLinear) and isinstance(m[4], DropConnectLinear)
    assert type(m[7]) is nn.Linear  # the head keeps its weights deterministic
    assert m[1].weight is before[0] and m[4].weight is before[1] and m[1].p == 0.25
    m.eval()
    x = torch.randn(4, 8)
    assert torch.allclose(m(x), user_model().eval()(x))  # eval: the same function as before the swap


def test_input_dropout_wraps_the_model():
    m = adapt(user_model(), cfg(input_dropout=0.2))
    assert isinstance(m, nn.Sequential) and isinstance(m[0], Dropout) and m[0].p == 0.2
    assert [n for n, _ in hidden_linears(m)] == ["1.1", "1.4"]


@pytest.mark.parametrize("kw, match", [
    ({"batchnorm": True}, "it adds batch norm"),
    ({"drop_path": 0.1}, "stochastic depth"),
    ({"widths": (1024, 1024)}, r"changes the architecture \(model.widths\)"),
    ({"activation": "tanh"}, r"changes the architecture \(model.activation\)"),
])
def test_architecture_knobs_are_inapplicable(kw, match):
    assert inapplicable(cfg(**kw), BASE, user_model()) is not None
    assert match.split(" ")[0] in inapplicable(cfg(**kw), BASE, user_model())


def test_a_model_without_dropout_or_hidden_linears_cannot_take_them():
    plain = nn.Sequential(nn.Flatten(), nn.Linear(8, 3))
    assert "has none" in inapplicable(cfg(dropout=0.3), BASE, plain)
    assert "none besides its head" in inapplicable(cfg(dropconnect=0.3), BASE, plain)
    assert inapplicable(cfg(input_dropout=0.2), BASE, plain) is None
    with pytest.raises(RegularkitError, match="your model has none: add nn.Dropout"):
        adapt(plain, cfg(dropout=0.3))


def test_regularization_in_states_every_rate_after_adaptation():
    from regularkit.models.adapt import as_built_note, regularization_in
    model = user_model()
    assert regularization_in(model) == {"dropout": [0.1, 0.2], "dropconnect": [], "drop_path": [], "normalization": 0}
    assert as_built_note(model) == "its own dropout p=0.1/0.2"
    adapted = adapt(user_model(), cfg(dropout=0.3, dropconnect=0.25))
    assert regularization_in(adapted) == {"dropout": [0.3, 0.3], "dropconnect": [0.25, 0.25], "drop_path": [],
                                          "normalization": 0}
    plain = nn.Sequential(nn.Flatten(), nn.Linear(8, 3))
    assert as_built_note(plain) is None and regularization_in(plain)["dropout"] == []
    assert as_built_note(nn.Sequential(nn.Linear(8, 4), nn.BatchNorm1d(4))) == "1 normalization layer"
