"""SpeedrunNet: shapes, the early downsampling, batch norm on and off, what is trainable."""
import pytest
import torch
from torch import nn

from regularkit.penalties import decay_param_groups
from regularkit.speedrun.model import SpeedrunNet


@pytest.mark.parametrize("patch", [2, 3, 4])
def test_stem_halves_the_image_and_logits_have_k_columns(patch):
    model = SpeedrunNet((1, 28, 28), 10, widths=(8, 16, 16), patch=patch)
    assert model.whiten(torch.zeros(1, 1, 28, 28)).shape[-2:] == (14, 14)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_without_batchnorm_convolutions_have_biases():
    with_bn = SpeedrunNet((1, 28, 28), 10, widths=(8, 16))
    without = SpeedrunNet((1, 28, 28), 10, widths=(8, 16), batchnorm=False)
    assert any(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in without.modules())
    convs = [m for m in without.groups.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs)
    assert all(m.bias is None for m in with_bn.groups.modules() if isinstance(m, nn.Conv2d))


def test_whitened_stem_is_frozen_and_only_kernels_decay(splits):
    model = SpeedrunNet((1, 28, 28), 10, widths=(8, 16)).fit_whitening(splits.x_train[:20])
    decayed, rest = decay_param_groups(model, 1e-3)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith("weight") and p.ndim >= 2 for p in decayed["params"])
    assert "whiten.weight" not in {names[id(p)] for p in decayed["params"] + rest["params"]}
    assert all(p.ndim == 1 for p in rest["params"])
