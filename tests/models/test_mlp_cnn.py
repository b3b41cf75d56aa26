"""MLP and CNN: shapes, per-layer dropout, layer order, seeded construction."""
import pickle

import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.models import CNN, MLP, build_model
from regularkit.noise import Dropout, DropConnectLinear
from regularkit.train import ModelConfig


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


def test_cnn_pools_until_one_pixel_and_handles_tiny_inputs():
    m = CNN((1, 8, 8), 10, channels=(4, 8, 16, 16), widths=(12,))
    assert m(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert m.feature_size == 16  # 8 -> 4 -> 2 -> 1 -> (no pool) 1
    assert CNN((1, 1, 1), 2, channels=(4,))(torch.randn(2, 1, 1, 1)).shape == (2, 2)


def test_cnn_needs_images():
    with pytest.raises(RegularkitError, match=r"C x H x W, got input shape \(64,\)"):
        CNN((64,), 10)


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
    with pytest.raises(RegularkitError, match="num_classes must be >= 2, got 1"):
        MLP((4,), 1)
