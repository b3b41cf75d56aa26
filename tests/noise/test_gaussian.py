"""Gaussian noise (additive) and Gaussian dropout (multiplicative): moments, train-only, seeds, errors."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from regularkit.errors import RegularkitError
from regularkit.noise import GaussianDropout, GaussianNoise, dropout, gaussian_dropout, gaussian_noise


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("std", [0.1, 1.0, 3.0])
def test_additive_noise_has_the_stated_moments(std):
    # 200,000 draws: the mean's std is std/447, the sample std's relative error ~0.0016.
    x = torch.randn(200_000, generator=gen(0), dtype=torch.float64)
    e = gaussian_noise(x, std, generator=gen(1)) - x
    assert abs(float(e.mean())) < 5 * std / math.sqrt(e.numel())
    assert float(e.std()) == pytest.approx(std, rel=0.01)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_gaussian_dropout_matches_bernoulli_dropout_moments(p):
    # Srivastava et al. Sec. 10: r ~ N(1, p / (1 - p)) has the mean and variance of d / keep.
    x = torch.ones(200_000, dtype=torch.float64)
    r = gaussian_dropout(x, p, generator=gen(2))
    bern = dropout(x, p, generator=gen(3))
    want_var = p / (1 - p)
    assert abs(float(r.mean()) - 1) < 5 * math.sqrt(want_var / x.numel())
    assert float(r.var()) == pytest.approx(want_var, rel=0.02)
    assert float(bern.var()) == pytest.approx(want_var, rel=0.02)


def test_gaussian_dropout_is_multiplicative():
    x = torch.randn(1000, generator=gen(4), dtype=torch.float64)
    a = gaussian_dropout(x, 0.3, generator=gen(5))
    b = gaussian_dropout(torch.ones_like(x), 0.3, generator=gen(5))
    assert torch.allclose(a, x * b, rtol=1e-12, atol=0)


def test_train_only_identity_in_eval():
    x = torch.randn(4, 5)
    assert gaussian_noise(x, 1.0, training=False) is x
    assert gaussian_dropout(x, 0.5, training=False) is x
    assert GaussianNoise(1.0).eval()(x) is x
    assert GaussianDropout(0.5).eval()(x) is x
    assert gaussian_noise(x, 0.0) is x and gaussian_dropout(x, 0.0) is x


def test_seeds():
    x = torch.zeros(100)
    assert torch.equal(GaussianNoise(1.0, seed=0)(x), GaussianNoise(1.0, seed=0)(x))
    assert not torch.equal(GaussianNoise(1.0, seed=0)(x), GaussianNoise(1.0, seed=1)(x))
    y = torch.ones(100)
    assert torch.equal(GaussianDropout(0.5, seed=0)(y), GaussianDropout(0.5, seed=0)(y))
    assert not torch.equal(GaussianDropout(0.5, seed=0)(y), GaussianDropout(0.5, seed=1)(y))


def test_gradient_flows_through_the_multiplicative_noise():
    x = torch.randn(50, requires_grad=True)
    gaussian_dropout(x, 0.4, generator=gen(6)).sum().backward()
    assert torch.allclose(x.grad, gaussian_dropout(torch.ones(50), 0.4, generator=gen(6)))


def test_errors():
    with pytest.raises(RegularkitError, match=r"std must be >= 0, got -1"):
        gaussian_noise(torch.ones(2), -1)
    with pytest.raises(RegularkitError, match=r"std must be >= 0, got -0.5"):
        GaussianNoise(-0.5)
    with pytest.raises(RegularkitError, match=r"std must be finite, got inf"):
        GaussianNoise(float("inf"))
    with pytest.raises(RegularkitError, match=r"p must be in \[0, 1\), got 1"):
        gaussian_dropout(torch.ones(2), 1)
    with pytest.raises(RegularkitError, match=r"x must be a floating tensor, got dtype torch.int32"):
        gaussian_noise(torch.ones(2, dtype=torch.int32), 1.0)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=0, max_size=4),
       dtype=st.sampled_from((torch.float32, torch.float64, torch.bfloat16)),
       seed=st.integers(0, 2**31))
def test_properties_over_shapes_and_dtypes(shape, dtype, seed):
    x = torch.randn(shape, generator=gen(seed)).to(dtype)
    for out in (gaussian_noise(x, 0.5, generator=gen(seed)), gaussian_dropout(x, 0.5, generator=gen(seed))):
        assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()
    # same seed, same noise, whatever the dtype (drawn in float32, then cast)
    e32 = gaussian_noise(torch.zeros(shape), 0.5, generator=gen(seed))
    e = gaussian_noise(torch.zeros(shape, dtype=dtype), 0.5, generator=gen(seed))
    assert torch.equal(e, e32.to(dtype))
