"""MLP and CNN: shapes, per-layer dropout, layer order, seeded construction."""


import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.metrics.sparsity import activation_modules
from regularkit.models import CNN, LowRankLinear
from regularkit.models.mlp import _ACTIVATIONS
from regularkit.noise import DropBlock2d


def test_cnn_pools_each_stage_down_to_one_pixel_at_the_smallest_input():
    m = CNN((1, 8, 8), 10, channels=(4, 8, 16), widths=(12,))
    assert m(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert m.feature_size == 16  # 8 -> 4 -> 2 -> 1, every stage on a map of at least 2 x 2
    assert CNN((1, 2, 2), 2, channels=(4,))(torch.randn(2, 1, 2, 2)).shape == (2, 2)
    assert CNN((1, 16, 9), 2, channels=(4, 4, 4))(torch.randn(2, 1, 16, 9)).shape == (2, 2)  # 9 -> 4 -> 2 -> 1


@pytest.mark.parametrize("shape, channels, match", [
    ((1, 2, 2), (4, 8, 16, 16), r"^a CNN with 4 conv stage\(s\) halves the image 4 time\(s\) and needs inputs of at "
                                r"least 16 x 16, got 2 x 2; give at most 1 channel stage\(s\)$"),
    ((1, 8, 8), (4, 8, 16, 16), r"needs inputs of at least 16 x 16, got 8 x 8; give at most 3 channel stage"),
    ((3, 32, 7), (4, 4, 4), r"needs inputs of at least 8 x 8, got 32 x 7; give at most 2 channel stage"),
    ((1, 1, 1), (4,), r"needs inputs of at least 2 x 2, got 1 x 1; use an MLP$"),
])
def test_a_cnn_deeper_than_its_input_is_refused_naming_the_size_it_needs(shape, channels, match):
    with pytest.raises(RegularkitError, match=match):
        CNN(shape, 10, channels=channels)


def test_cnn_needs_images():
    with pytest.raises(RegularkitError, match=r"C x H x W, got input shape \(64,\)"):
        CNN((64,), 10)


@pytest.mark.parametrize("name", ["prelu", "abs_relu", "softplus", "leaky_relu"])
def test_cnn_uses_the_mlp_activation_registry_in_conv_and_dense_layers(name):
    m = CNN((1, 8, 8), 10, channels=(4, 8), widths=(12,), activation=name)
    kinds = [type(a) for a in activation_modules(m)]
    assert kinds == [_ACTIVATIONS[name]] * 3  # two conv stages, one dense layer
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_cnn_bottleneck_factors_the_dense_layers_not_the_head():
    m = CNN((1, 8, 8), 10, channels=(4,), widths=(12, 6), bottleneck=3)
    hidden = [x for x in m.features if isinstance(x, LowRankLinear)]
    assert [(h.in_features, h.out_features, h.rank) for h in hidden] == [(4 * 4 * 4, 12, 3), (12, 6, 3)]
    assert type(m.head) is nn.Linear and m.head.in_features == 6
    assert m(torch.randn(2, 1, 8, 8)).shape == (2, 10)


# --------------------------------------------------------------------------- mixing stages (Manifold MixUp, issue 22)
@pytest.mark.parametrize("kw, n_stages", [({}, 4), ({"batchnorm": True, "dropout": 0.3, "input_dropout": 0.1,
                                                     "channels": (3, 4, 5), "widths": (6, 5)}, 6)])
def test_mixing_stages_chain_is_the_forward_stage_by_stage(kw, n_stages):
    torch.manual_seed(0)
    kw = {"channels": (3, 4), "widths": (6,), **kw}
    m = CNN((2, 8, 8), 3, **kw)
    stages = m.mixing_stages()
    assert len(stages) == n_stages and stages[-1] is m.head  # conv stages, dense blocks, head
    x = torch.randn(5, 2, 8, 8)
    for mode in (True, False):
        m.train(mode)
        torch.manual_seed(1)
        expected = m(x)
        torch.manual_seed(1)
        out = x
        for stage in stages:
            out = stage(out)
        torch.testing.assert_close(out, expected, rtol=0, atol=0)
    convs = [m for s in stages for m in s.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == len(kw["channels"])  # every conv appears once


# --------------------------------------------------------------------------- DropBlock (issue 22)
def test_drop_block_goes_after_the_activation_of_the_later_stages_and_is_the_identity_in_eval():
    torch.manual_seed(0)
    m = CNN((1, 16, 16), 3, channels=(4, 6, 8), widths=(5,), drop_block=0.2, drop_block_size=3)
    kinds = [type(x).__name__ for x in m.conv]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "DropBlock2d", "MaxPool2d",
                     "Conv2d", "ReLU", "DropBlock2d", "MaxPool2d"]
    layers = [x for x in m.conv if isinstance(x, DropBlock2d)]
    assert [(d.drop_prob, d.block_size, d.fast) for d in layers] == [(0.2, 3, False)] * 2
    torch.manual_seed(0)
    plain = CNN((1, 16, 16), 3, channels=(4, 6, 8), widths=(5,))
    # DropBlock draws nothing when built: the same seed gives the same weights (under shifted Sequential indices)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), plain.parameters()))
    x = torch.randn(4, 1, 16, 16)
    assert torch.equal(m.eval()(x), plain.eval()(x))
    assert not torch.equal(m.train()(x), plain.train()(x))
    one = CNN((1, 8, 8), 3, channels=(4,), widths=(5,), drop_block=0.1)
    assert sum(isinstance(x, DropBlock2d) for x in one.conv) == 1  # a single stage gets it
    with pytest.raises(RegularkitError, match=r"drop_block must be in \[0, 1\), got 1.5"):
        CNN((1, 8, 8), 3, drop_block=1.5)
