"""Drop-path / stochastic depth: whole samples dropped, test-time rules, linear rates."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from regularkit.errors import RegularkitError
from regularkit.noise import DropPath, drop_path, linear_drop_path_rates


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("scale_by_keep", [True, False])
def test_drops_whole_samples_at_the_stated_rate(scale_by_keep):
    p = 0.3
    x = torch.rand(4000, 3, 4, 4, generator=gen(0)) + 1
    out = drop_path(x, p, scale_by_keep=scale_by_keep, generator=gen(1))
    flat, xf = out.flatten(1), x.flatten(1)
    dropped = (flat == 0).all(1)
    kept_value = xf / (1 - p) if scale_by_keep else xf
    # every sample is all zero or entirely the (scaled) input
    assert torch.equal(flat[~dropped], kept_value[~dropped])
    # 4000 samples: std of the dropped fraction is 0.0072; 0.03 is > 4 sigma.
    assert abs(float(dropped.double().mean()) - p) < 0.03


def test_eval_rules():
    x = torch.randn(5, 4)
    assert drop_path(x, 0.4, training=False) is x
    # Huang et al.'s test rule when the train pass is not rescaled: multiply by the survival probability
    assert torch.equal(drop_path(x, 0.4, training=False, scale_by_keep=False), x * 0.6)
    assert DropPath(0.4).eval()(x) is x


@pytest.mark.parametrize("scale_by_keep", [True, False])
def test_expectation_of_train_output_equals_test_output(scale_by_keep):
    p, k = 0.5, 20_000
    x = torch.randn(1, 6, dtype=torch.float64, generator=gen(2))
    train = drop_path(x.expand(k, 6), p, scale_by_keep=scale_by_keep, generator=gen(3))
    test = drop_path(x, p, training=False, scale_by_keep=scale_by_keep)
    scale = 1 / (1 - p) if scale_by_keep else 1.0
    stderr = x.abs() * scale * 0.5 / k ** 0.5
    assert torch.all((train.mean(0, keepdim=True) - test).abs() <= 5 * stderr)


def test_residual_identity_survives_a_dropped_branch():
    x = torch.randn(64, 8)
    branch = torch.randn(64, 8)
    out = x + DropPath(0.5, seed=0)(branch)
    dropped = (out == x).all(1)
    assert dropped.any() and not dropped.all()
    assert torch.allclose(out[~dropped], x[~dropped] + 2 * branch[~dropped])


def test_linear_rates():
    assert linear_drop_path_rates(0.5, 5) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert linear_drop_path_rates(0.0, 3) == [0.0, 0.0, 0.0]
    rates = linear_drop_path_rates(0.2, 12)
    assert rates[-1] == pytest.approx(0.2)
    steps = [b - a for a, b in zip([0.0] + rates, rates)]
    assert steps == pytest.approx([0.2 / 12] * 12)  # constant increments: linear in depth


def test_seeded_module_is_reproducible():
    x = torch.ones(64, 3)
    assert torch.equal(DropPath(0.5, seed=1)(x), DropPath(0.5, seed=1)(x))
    assert not torch.equal(DropPath(0.5, seed=1)(x), DropPath(0.5, seed=2)(x))
    assert torch.equal(drop_path(x, 0.5, generator=gen(4)), drop_path(x, 0.5, generator=gen(4)))


def test_errors():
    with pytest.raises(RegularkitError, match=r"p must be in \[0, 1\), got 1.2"):
        drop_path(torch.ones(2, 2), 1.2)
    with pytest.raises(RegularkitError, match=r"drop_path needs a batch dimension, got a 0-d tensor"):
        drop_path(torch.tensor(1.0), 0.5)
    with pytest.raises(RegularkitError, match=r"max_rate must be in \[0, 1\), got 1"):
        linear_drop_path_rates(1, 4)
    with pytest.raises(RegularkitError, match=r"depth must be >= 1, got 0"):
        linear_drop_path_rates(0.1, 0)
    with pytest.raises(RegularkitError, match=r"depth must be an integer, got 2.5"):
        linear_drop_path_rates(0.1, 2.5)


def test_repr():
    assert repr(DropPath(0.1)) == "DropPath(p=0.1)"
    assert repr(DropPath(0.1, scale_by_keep=False)) == "DropPath(p=0.1, scale_by_keep=False)"


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       dtype=st.sampled_from((torch.float32, torch.float64, torch.bfloat16)),
       p=st.floats(0.0, 0.9), seed=st.integers(0, 2**31))
def test_properties_over_shapes_and_dtypes(shape, dtype, p, seed):
    x = (torch.rand(shape, generator=gen(seed)) + 0.5).to(dtype)
    out = drop_path(x, p, generator=gen(seed))
    assert out.shape == x.shape and out.dtype == x.dtype
    per_sample_zero = (out == 0).reshape(shape[0], -1)
    assert torch.all(per_sample_zero.all(1) | (~per_sample_zero).all(1))  # whole samples only
    assert torch.all((out == 0) | (out == x / (1 - p)))
