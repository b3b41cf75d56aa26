"""MLP and CNN: shapes, per-layer dropout, layer order, seeded construction."""


import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.metrics.sparsity import activation_modules
from regularkit.models import CNN, LowRankLinear
from regularkit.models.mlp import _ACTIVATIONS


def test_cnn_pools_until_one_pixel_and_handles_tiny_inputs():
    m = CNN((1, 8, 8), 10, channels=(4, 8, 16, 16), widths=(12,))
    assert m(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert m.feature_size == 16  # 8 -> 4 -> 2 -> 1 -> (no pool) 1
    assert CNN((1, 1, 1), 2, channels=(4,))(torch.randn(2, 1, 1, 1)).shape == (2, 2)


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
