"""MLP and CNN: shapes, per-layer dropout, layer order, seeded construction."""


import pytest
import torch

from regularkit.errors import RegularkitError
from regularkit.models import CNN


def test_cnn_pools_until_one_pixel_and_handles_tiny_inputs():
    m = CNN((1, 8, 8), 10, channels=(4, 8, 16, 16), widths=(12,))
    assert m(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert m.feature_size == 16  # 8 -> 4 -> 2 -> 1 -> (no pool) 1
    assert CNN((1, 1, 1), 2, channels=(4,))(torch.randn(2, 1, 1, 1)).shape == (2, 2)


def test_cnn_needs_images():
    with pytest.raises(RegularkitError, match=r"C x H x W, got input shape \(64,\)"):
        CNN((64,), 10)
