"""Colour jitter, PCA colour, erasing and noise: NumPy references, box geometry, statistics."""


import pytest
import torch

import regularkit.augment as A
from regularkit.errors import RegularkitError


def gen(seed):
    return torch.Generator().manual_seed(seed)

# --------------------------------------------------------------------------- erasing
def _erased(x, out):
    return (out != x).any(1)  # N x H x W


# --------------------------------------------------------------------------- noise
def test_gaussian_noise_statistics_and_probability():
    x = torch.zeros(400, 1, 16, 16)
    out, _ = A.RandomGaussianNoise(0.2)(x, generator=gen(0))
    assert abs(float(out.std()) - 0.2) < 0.01 and abs(float(out.mean())) < 0.01
    half, _ = A.RandomGaussianNoise(0.2, p=0.5)(x, generator=gen(0))
    touched = half.flatten(1).abs().sum(1) > 0
    assert 0.4 < touched.float().mean() < 0.6
    ranged = A.RandomGaussianNoise((0.1, 0.3)).make_params(x, gen(0))["noise"].flatten(1).std(1)
    assert ranged.min() > 0.08 and ranged.max() < 0.32
    assert A.RandomGaussianNoise(0.5, clip=(0, 1))(x, generator=gen(0))[0].min() >= 0


def test_gaussian_noise_errors():
    with pytest.raises(RegularkitError, match=r"std must be >= 0, got -0.1"):
        A.RandomGaussianNoise(-0.1)
    with pytest.raises(RegularkitError, match="clip must be None or a pair"):
        A.RandomGaussianNoise(0.1, clip=1.0)
