"""MLP and CNN: shapes, per-layer dropout, layer order, seeded construction."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.metrics.sparsity import activation_modules
from regularkit.models import MLP, LowRankLinear
from regularkit.models.mlp import _ACTIVATIONS, make_activation
from regularkit.noise import AlphaDropout, DropConnectLinear, Dropout
from regularkit.train import param_groups
from regularkit.train.config import ACTIVATIONS
from regularkit.transfer import find_head


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


# --------------------------------------------------------------------------- hidden units (deck 003)
def lecture_formula(name, z):
    """Deck 003 "Generalizations of ReLu", in NumPy, with each module's initial or fixed slope."""
    return {"relu": np.maximum(0, z), "leaky_relu": np.maximum(0, z) + 0.01 * np.minimum(0, z),
            "prelu": np.maximum(0, z) + 0.25 * np.minimum(0, z), "abs_relu": np.maximum(0, z) - np.minimum(0, z),
            "softplus": np.log1p(np.exp(z)), "tanh": np.tanh(z), "sigmoid": 1 / (1 + np.exp(-z))}.get(name)


def test_the_config_names_are_the_registry():
    assert ACTIVATIONS == tuple(_ACTIVATIONS)  # train.config validates against the models' registry


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_builds_an_mlp_with_a_linear_head_and_measurable_units(name):
    z = np.linspace(-6, 6, 25)
    ref = lecture_formula(name, z)
    if ref is not None:
        out = make_activation(name).double()(torch.from_numpy(z)).detach().numpy()
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-12)
    m = MLP((5,), 3, widths=(8, 4), activation=name)
    assert find_head(m) == ("head", m.head) and type(m.head) is nn.Linear
    assert [type(a) for a in activation_modules(m)] == [_ACTIVATIONS[name]] * 2  # the sparsity probes see them
    assert torch.isfinite(m(torch.randn(3, 5))).all()


def test_prelu_slope_is_learned_and_never_decayed():
    m = MLP((4,), 2, widths=(6,), activation="prelu")
    slope = m.features[1].weight
    assert slope.shape == (1,) and slope.item() == 0.25
    decayed = {id(p) for g in param_groups(m, 0.1) if g["weight_decay"] for p in g["params"]}
    assert id(slope) not in decayed and id(m.features[0].weight) in decayed  # He et al. 2015: no decay on a
    F.cross_entropy(m(-torch.rand(16, 4) * 5), torch.randint(0, 2, (16,))).backward()
    assert slope.grad is not None and slope.grad.item() != 0.0


def test_bottleneck_makes_every_hidden_linear_rank_r_and_keeps_the_head():
    full = MLP((64,), 10, widths=(256, 256))
    low = MLP((64,), 10, widths=(256, 256), bottleneck=16)
    hidden = [x for x in low.features if isinstance(x, LowRankLinear)]
    assert [(h.in_features, h.out_features, h.rank) for h in hidden] == [(64, 256, 16), (256, 256, 16)]
    assert type(low.head) is nn.Linear and find_head(low) == ("head", low.head)
    count = sum(p.numel() for p in low.parameters())
    assert count == 16 * (64 + 256) + 256 + 16 * (256 + 256) + 256 + 256 * 10 + 10
    assert sum(p.numel() for p in full.parameters()) == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert low(torch.randn(3, 64)).shape == (3, 10)


def test_bottleneck_with_dropconnect_drops_the_factors_connections():
    m = MLP((4,), 2, widths=(8,), bottleneck=2, dropconnect=0.3)
    layer = m.features[0]
    assert isinstance(layer, LowRankLinear)
    assert isinstance(layer.u, DropConnectLinear) and isinstance(layer.v, DropConnectLinear)
    assert layer.v.bias is None and layer.u.p == layer.v.p == 0.3 and type(m.head) is nn.Linear


@pytest.mark.parametrize("call, match", [
    (lambda: MLP((4,), 2, activation="swish"), "activation must be one of 'relu', .*'selu'; got 'swish'"),
    (lambda: MLP((4,), 2, bottleneck=0), "bottleneck must be >= 1, got 0"),
])
def test_mlp_errors(call, match):
    with pytest.raises(RegularkitError, match=match):
        call()


# --------------------------------------------------------------------------- mixing stages (Manifold MixUp, issue 22)
def run_chain(stages, x):
    for stage in stages:
        x = stage(x)
    return x


@pytest.mark.parametrize("kw, n_stages", [({}, 4), ({"batchnorm": True, "dropout": 0.3, "input_dropout": 0.2}, 4),
                                          ({"bottleneck": 3, "dropconnect": 0.2, "widths": (7,)}, 2)])
def test_mixing_stages_chain_is_the_forward_block_by_block(kw, n_stages):
    torch.manual_seed(0)
    kw = {"widths": (9, 8, 7), **kw}
    m = MLP((2, 3, 3), 4, **kw)
    stages = m.mixing_stages()
    assert len(stages) == n_stages and stages[-1] is m.head  # one stage per hidden block, then the head
    x = torch.randn(6, 2, 3, 3)
    for mode in (True, False):
        m.train(mode)
        torch.manual_seed(1)
        expected = m(x)
        torch.manual_seed(1)
        torch.testing.assert_close(run_chain(stages, x), expected, rtol=0, atol=0)
    # each hidden stage starts with its own Linear and ends with its dropout (or Identity)
    firsts = [s[0] for s in stages[1:-1]]
    assert all(isinstance(f, (nn.Linear, LowRankLinear)) for f in firsts)


def test_alpha_dropout_kind_keeps_a_selu_network_self_normalizing():
    torch.manual_seed(0)
    m = MLP((64,), 3, widths=(256, 256), dropout=0.1, input_dropout=0.05, dropout_kind="alpha")
    drops = [x for x in m.modules() if isinstance(x, (AlphaDropout, Dropout))]
    assert [type(d) for d in drops] == [AlphaDropout] * 3 and [d.p for d in drops] == [0.05, 0.1, 0.1]
    # SELU with LeCun-normal weights (the paper's setting): swap the activations in, check the hidden units
    for i, layer in enumerate(m.features):
        if isinstance(layer, nn.ReLU):
            m.features[i] = nn.SELU()
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
            nn.init.zeros_(layer.bias)
    x = torch.randn(20000, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        hidden = m.mixing_stages()[1](m.mixing_stages()[0](x))  # after two SELU blocks with alpha dropout
    assert abs(float(hidden.mean())) < 0.05 and abs(float(hidden.var()) - 1) < 0.1  # mean 0, variance 1 kept
    with pytest.raises(RegularkitError, match="dropout_kind must be one of 'inverted', 'classic', 'alpha'; got 'gau"):
        MLP((4,), 2, dropout_kind="gauss")
