"""Gaussian input noise: statistics per element and per sample, on any batch N x ..., integer data."""
import pytest
import torch

import regularkit.augment as A
from regularkit.errors import RegularkitError


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_gaussian_noise_statistics_and_probability():
    x = torch.zeros(400, 1, 16, 16)
    out = A.RandomGaussianNoise(0.2)(x, generator=gen(0))
    assert abs(float(out.std()) - 0.2) < 0.01 and abs(float(out.mean())) < 0.01
    half = A.RandomGaussianNoise(0.2, p=0.5)(x, generator=gen(0))
    touched = half.flatten(1).abs().sum(1) > 0
    assert 0.4 < touched.float().mean() < 0.6
    ranged = A.RandomGaussianNoise((0.1, 0.3)).make_params(x, gen(0))["noise"].flatten(1).std(1)
    assert ranged.min() > 0.08 and ranged.max() < 0.32
    assert A.RandomGaussianNoise(0.5, clip=(0, 1))(x, generator=gen(0)).min() >= 0


def test_gaussian_noise_errors():
    with pytest.raises(RegularkitError, match=r"std must be >= 0, got -0.1"):
        A.RandomGaussianNoise(-0.1)
    with pytest.raises(RegularkitError, match="clip must be None or a pair"):
        A.RandomGaussianNoise(0.1, clip=1.0)


@pytest.mark.parametrize("shape", [(4000, 16), (400, 4, 40), (40000,)])
def test_gaussian_noise_on_any_batch_per_element_with_per_sample_sigma(shape):
    """Vectors N x D, sequences N x C x L, scalars N: noise i.i.d. per element, sigma and p per row (dim 0)."""
    x = torch.zeros(shape)
    out = A.RandomGaussianNoise(0.2)(x, generator=gen(0))
    assert out.shape == x.shape and abs(float(out.std()) - 0.2) < 0.01 and abs(float(out.mean())) < 0.01
    if len(shape) > 1:
        rows = A.RandomGaussianNoise(0.2, p=0.5)(x, generator=gen(1)).flatten(1)
        touched = (rows != 0).float().mean(1)
        assert set(touched.unique().tolist()) == {0.0, 1.0}  # a row is noised whole or not at all
        assert 0.45 < float(touched.mean()) < 0.55
        sigma = A.RandomGaussianNoise((0.1, 0.3))(x, generator=gen(2)).flatten(1).std(1)
        assert float(sigma.min()) < 0.13 and float(sigma.max()) > 0.27  # one sigma per row, spread over the range


def test_gaussian_noise_on_integer_data_is_rounded_and_clamped():
    x = torch.full((64, 1, 8, 8), 250, dtype=torch.uint8)
    out = A.RandomGaussianNoise(10.0)(x, generator=gen(0))
    noise = A.RandomGaussianNoise(10.0).make_params(x, gen(0))["noise"]
    assert out.dtype == torch.uint8 and torch.equal(out, (250 + noise).round().clamp(0, 255).to(torch.uint8))
    assert int(out.max()) == 255 and abs(float(out.float().std()) - 7.0) < 2.0  # clipped at 255
