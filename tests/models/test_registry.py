"""MLP and CNN: shapes, per-layer dropout, layer order, seeded construction."""

import pickle

import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.models import CNN, MLP, AbsoluteValueRectification, LowRankLinear, build_model
from regularkit.study.recipes import DEFAULT_RECIPES, RECIPES, resolve
from regularkit.train import ModelConfig, Recipe


def test_build_model_is_seeded_and_leaves_global_rng_alone():
    cfg = ModelConfig(kind="cnn", channels=(4,), widths=(8,))
    torch.manual_seed(7)
    state = torch.get_rng_state()
    a = build_model(cfg, (1, 8, 8), 10, seed=3)
    b = build_model(cfg, (1, 8, 8), 10, seed=3)
    c = build_model(cfg, (1, 8, 8), 10, seed=4)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.head.weight, c.head.weight)


def test_build_model_applies_init_and_bias():
    cfg = ModelConfig(widths=(512,), init="he_normal", bias_init=0.1)
    m = build_model(cfg, (256,), 10, seed=0)
    w = m.features[0].weight
    assert w.std().item() == pytest.approx((2 / 256) ** 0.5, rel=0.05)
    assert torch.all(m.features[0].bias == 0.1)


def test_models_pickle():
    for m in (MLP((6,), 2, widths=(4,), dropout=0.5), CNN((1, 4, 4), 2, channels=(2,))):
        clone = pickle.loads(pickle.dumps(m))
        x = torch.randn(2, *(6,) if isinstance(m, MLP) else (1, 4, 4))
        m.eval(), clone.eval()
        assert torch.equal(m(x), clone(x))


def test_num_classes_is_checked():
    with pytest.raises(RegularkitError, match="num_classes must be >= 1, got 0"):
        MLP((4,), 0)
    assert MLP((4,), 1)(torch.zeros(2, 4)).shape == (2, 1)  # one output: a regression model


@pytest.mark.parametrize("name, layer", [
    ("leaky-relu", nn.LeakyReLU), ("prelu", nn.PReLU), ("abs-relu", AbsoluteValueRectification),
    ("softplus", nn.Softplus), ("bottleneck", LowRankLinear)])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_hidden_unit_recipes_build_their_layers_and_are_opt_in(name, layer, kind):
    base = Recipe(model=ModelConfig(kind=kind, channels=(4,), widths=(32, 16)))
    (recipe,) = resolve([name], base)
    assert name in RECIPES and name not in DEFAULT_RECIPES and RECIPES[name][0]
    m = build_model(recipe.model, (1, 8, 8), 10, seed=0)
    assert any(type(x) is layer for x in m.modules())
    assert type(m.head) is nn.Linear and m(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_build_model_with_a_bottleneck_is_seeded_and_initializes_the_factors():
    cfg = ModelConfig(widths=(64,), bottleneck=8, init="he_normal", bias_init=0.1)
    a, b = build_model(cfg, (32,), 10, seed=3), build_model(cfg, (32,), 10, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    layer = a.features[0]
    assert isinstance(layer, LowRankLinear) and layer.rank == 8
    assert torch.all(layer.u.bias == 0.1)  # initialize() reaches the factors, plain nn.Linear layers
