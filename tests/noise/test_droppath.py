"""Drop-path / stochastic depth: whole samples dropped, test-time rules (paper, inverted, timm's), rates."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from regularkit.errors import RegularkitError
from regularkit.noise import DropPath, drop_path, dropout_mask, linear_drop_path_rates


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
    assert torch.equal(drop_path(x, 0.4, training=False, classic=True), x * 0.6)
    assert torch.equal(DropPath(0.4, classic=True).eval()(x), x * 0.6)
    # timm's scale_by_keep=False: not rescaled in training, and still the identity at test time
    assert drop_path(x, 0.4, training=False, scale_by_keep=False) is x
    assert DropPath(0.4).eval()(x) is x


def timm_drop_path(x, drop_prob, training, scale_by_keep, survive):
    """timm's ``drop_path`` (timm/layers/drop.py) restated; ``survive`` stands for its ``bernoulli_(keep_prob)``
    draw (a 0/1 float per sample), so both sides can use one mask."""
    if not training or drop_prob == 0.0:
        return x  # eval and p = 0: x itself, whatever scale_by_keep
    keep_prob = 1.0 - drop_prob
    factor = survive / keep_prob if (scale_by_keep and keep_prob > 0.0) else survive  # no division when keep = 0
    return x * factor


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("scale_by_keep", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_matches_timm_restated_on_the_same_mask(p, scale_by_keep, training):
    x = torch.randn(64, 3, 2, dtype=torch.float64, generator=gen(5)) + 0.1
    ours = drop_path(x, p, training, scale_by_keep=scale_by_keep, generator=gen(6))
    survive = dropout_mask((64, 1, 1), p, generator=gen(6)).double()  # the draw drop_path makes for p < 1
    torch.testing.assert_close(ours, timm_drop_path(x, p, training, scale_by_keep, survive), rtol=1e-15, atol=0)
    assert torch.equal(DropPath(p, scale_by_keep=scale_by_keep, generator=gen(6)).train(training)(x), ours)


@pytest.mark.parametrize("classic", [False, True])
def test_expectation_of_train_output_equals_test_output(classic):
    p, k = 0.5, 20_000
    x = torch.randn(1, 6, dtype=torch.float64, generator=gen(2))
    train = drop_path(x.expand(k, 6), p, classic=classic, generator=gen(3))
    test = drop_path(x, p, training=False, classic=classic)
    scale = 1.0 if classic else 1 / (1 - p)
    stderr = x.abs() * scale * 0.5 / k ** 0.5
    assert torch.all((train.mean(0, keepdim=True) - test).abs() <= 5 * stderr)


def test_timm_unscaled_variant_does_not_match_its_eval_in_expectation():
    # scale_by_keep=False: E[train] = keep * x while eval returns x -- timm's behaviour, kept on purpose.
    p, k = 0.5, 20_000
    x = torch.rand(1, 6, dtype=torch.float64, generator=gen(7)) + 1.0
    train = drop_path(x.expand(k, 6), p, scale_by_keep=False, generator=gen(8)).mean(0, keepdim=True)
    stderr = x * 0.5 / k ** 0.5
    assert torch.all((train - (1 - p) * x).abs() <= 5 * stderr)
    assert torch.all((drop_path(x, p, training=False, scale_by_keep=False) - train).abs() > 50 * stderr)


def test_rate_one_drops_every_path_in_training():
    x = torch.tensor([[1.0, float("inf")], [float("nan"), 2.0]], requires_grad=True)
    for kwargs in ({}, {"scale_by_keep": False}, {"classic": True}):
        assert torch.equal(drop_path(x, 1.0, generator=gen(0), **kwargs), torch.zeros(2, 2))  # exact, even inf/nan
    drop_path(x, 1.0).sum().backward()
    assert torch.equal(x.grad, torch.zeros(2, 2))
    assert drop_path(x, 1.0, training=False) is x  # eval: identity (inverted and timm's unscaled)
    assert torch.equal(drop_path(x, 1.0, training=False, classic=True), torch.zeros(2, 2))  # keep * x, keep = 0
    assert torch.equal(DropPath(1.0, seed=0)(torch.ones(3, 2)), torch.zeros(3, 2))


def test_residual_identity_survives_a_dropped_branch():
    x = torch.randn(64, 8)
    branch = torch.randn(64, 8)
    out = x + DropPath(0.5, seed=0)(branch)
    dropped = (out == x).all(1)
    assert dropped.any() and not dropped.all()
    assert torch.allclose(out[~dropped], x[~dropped] + 2 * branch[~dropped])


def test_linear_rates():
    # Huang et al.: p_l = l / L * p_L for l = 1..L
    assert linear_drop_path_rates(0.5, 5) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert linear_drop_path_rates(0.5, 5, rule="paper") == linear_drop_path_rates(0.5, 5)  # the default
    assert linear_drop_path_rates(0.0, 3) == [0.0, 0.0, 0.0]
    rates = linear_drop_path_rates(0.2, 12)
    assert rates[-1] == pytest.approx(0.2) and rates[0] == pytest.approx(0.2 / 12)  # the first block drops a little
    steps = [b - a for a, b in zip([0.0] + rates, rates)]
    assert steps == pytest.approx([0.2 / 12] * 12)  # constant increments: linear in depth
    assert linear_drop_path_rates(1.0, 2) == [0.5, 1.0]  # p = 1 is a valid drop-path rate


@pytest.mark.parametrize("max_rate, depth", [(0.1, 12), (0.3, 5), (0.5, 2), (0.2, 1)])
def test_timm_rates_are_torch_linspace_from_zero(max_rate, depth):
    # timm's models: dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth)] (float32)
    timm = [x.item() for x in torch.linspace(0, max_rate, depth)]
    ours = linear_drop_path_rates(max_rate, depth, rule="timm")
    assert ours == pytest.approx(timm, rel=1e-6, abs=1e-7)  # float64 here, float32 in timm
    assert ours[0] == 0.0  # the first block never drops
    if depth > 1:
        assert ours[-1] == max_rate


def test_seeded_module_is_reproducible():
    x = torch.ones(64, 3)
    assert torch.equal(DropPath(0.5, seed=1)(x), DropPath(0.5, seed=1)(x))
    assert not torch.equal(DropPath(0.5, seed=1)(x), DropPath(0.5, seed=2)(x))
    assert torch.equal(drop_path(x, 0.5, generator=gen(4)), drop_path(x, 0.5, generator=gen(4)))


def test_errors():
    with pytest.raises(RegularkitError, match=r"p must be in \[0, 1\], got 1.2"):
        drop_path(torch.ones(2, 2), 1.2)
    with pytest.raises(RegularkitError, match=r"drop_path needs a batch dimension, got a 0-d tensor"):
        drop_path(torch.tensor(1.0), 0.5)
    message = r"classic=True trains unscaled \(Huang et al.'s rule\), so scale_by_keep must be False or None, got"
    with pytest.raises(RegularkitError, match=message + " scale_by_keep=True"):
        DropPath(0.5, classic=True, scale_by_keep=True)
    with pytest.raises(RegularkitError, match=message + " scale_by_keep=True"):
        drop_path(torch.ones(2, 2), 0.5, classic=True, scale_by_keep=True)
    with pytest.raises(RegularkitError, match=r"max_rate must be in \[0, 1\], got 1.5"):
        linear_drop_path_rates(1.5, 4)
    with pytest.raises(RegularkitError, match=r"depth must be >= 1, got 0"):
        linear_drop_path_rates(0.1, 0)
    with pytest.raises(RegularkitError, match=r"depth must be an integer, got 2.5"):
        linear_drop_path_rates(0.1, 2.5)
    with pytest.raises(RegularkitError, match=r"rule must be one of 'paper', 'timm'; got 'linear'"):
        linear_drop_path_rates(0.1, 4, rule="linear")


def test_repr_and_config():
    assert repr(DropPath(0.1)) == "DropPath(p=0.1)"
    assert repr(DropPath(0.1, scale_by_keep=False)) == "DropPath(p=0.1, scale_by_keep=False)"
    assert repr(DropPath(0.1, classic=True)) == "DropPath(p=0.1, classic=True)"
    config = DropPath(0.1, classic=True).get_config()
    assert config["scale_by_keep"] is False and config["classic"] is True  # resolved: rebuilds without conflict
    assert DropPath.from_config(config).get_config() == config


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
