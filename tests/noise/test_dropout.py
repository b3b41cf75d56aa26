"""Dropout: drop fraction, exact scaling, test-time rules, noise_shape, seeds, errors, dtypes."""
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from regularkit.errors import RegularkitError
from regularkit.noise import Dropout, apply_dropout, dropout, dropout_mask, resolve_noise_shape

FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("classic", [False, True])
def test_drop_fraction_within_tolerance(p, classic):
    # 200,000 units: the sampling std of the fraction is <= 0.0011, so 0.006 is > 5 sigma.
    x = torch.ones(400, 500)
    out = dropout(x, p, classic=classic, generator=gen(0))
    assert abs(float((out == 0).double().mean()) - p) < 0.006


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_inverted_kept_values_scaled_by_exactly_one_over_keep(dtype):
    p = 0.3
    x = torch.randn(64, 32, generator=gen(1)).to(dtype) + 5  # no exact zeros in x
    out = dropout(x, p, generator=gen(2))
    kept = out != 0
    assert torch.equal(out[kept], (x / (1 - p))[kept])
    assert 0 < kept.sum() < x.numel()


def test_classic_train_keeps_values_and_test_scales_by_keep():
    p = 0.25
    x = torch.rand(50, 40, generator=gen(3), dtype=torch.float64) + 1
    out = dropout(x, p, classic=True, generator=gen(4))
    kept = out != 0
    assert torch.equal(out[kept], x[kept])
    assert torch.equal(dropout(x, p, training=False, classic=True), x * (1 - p))


def test_inverted_eval_is_identity():
    x = torch.randn(7, 3)
    assert dropout(x, 0.5, training=False) is x
    assert Dropout(0.5).eval()(x) is x


def test_rate_zero_is_identity_in_train():
    x = torch.randn(7, 3)
    assert torch.equal(dropout(x, 0.0, generator=gen(0)), x)
    assert torch.equal(dropout(x, 0.0, classic=True, training=False), x)


@pytest.mark.parametrize("classic", [False, True])
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_expectation_of_train_output_equals_test_output(classic, p):
    # 20,000 masks of the same 30 units; per unit the std of the mean is
    # |x| sqrt(keep p) / keep^c / sqrt(20000); we allow 5 of those.
    k, keep = 20_000, 1 - p
    x = torch.randn(30, generator=gen(5), dtype=torch.float64)
    train = dropout(x.expand(k, 30), p, classic=classic, generator=gen(6))
    test = dropout(x, p, training=False, classic=classic)
    scale = 1.0 if classic else 1.0 / keep
    stderr = x.abs() * scale * np.sqrt(keep * p) / np.sqrt(k)
    assert torch.all((train.mean(0) - test).abs() <= 5 * stderr)


def test_matches_numpy_reference_of_the_lecture_listings():
    # deck 004's listings, with the mask U taken from dropout_mask so both see the same draw;
    # the listings' p is the KEEP probability, ours is the drop probability.
    keep = 0.5
    h = np.random.default_rng(0).standard_normal((6, 10))
    u = dropout_mask(h.shape, 1 - keep, generator=gen(7)).numpy()
    vanilla_train, vanilla_predict = h * u, h * keep
    inverted_train = h * (u / keep)
    ht = torch.from_numpy(h)
    np.testing.assert_allclose(dropout(ht, 1 - keep, classic=True, generator=gen(7)).numpy(), vanilla_train)
    np.testing.assert_allclose(dropout(ht, 1 - keep, classic=True, training=False).numpy(), vanilla_predict)
    np.testing.assert_allclose(dropout(ht, 1 - keep, generator=gen(7)).numpy(), inverted_train, rtol=1e-15)


def test_dropout_uses_the_mask_dropout_mask_samples():
    x = torch.randn(5, 6, 7)
    mask = dropout_mask(x.shape, 0.4, noise_shape=(None, 1, None), generator=gen(8))
    assert mask.shape == (5, 1, 7) and mask.dtype == torch.bool
    expected = apply_dropout(x, mask, 0.4)
    assert torch.equal(dropout(x, 0.4, noise_shape=(None, 1, None), generator=gen(8)), expected)


def test_channel_noise_shape_drops_whole_feature_maps():
    x = torch.rand(8, 16, 5, 5) + 1
    out = dropout(x, 0.5, noise_shape=(None, None, 1, 1), generator=gen(9))
    zero = (out == 0)
    # every (sample, channel) map is all zero or all kept, and the maps differ
    assert torch.all(zero.all(dim=(2, 3)) | (~zero).all(dim=(2, 3)))
    per_map = zero.all(dim=(2, 3))
    assert per_map.any() and not per_map.all()


def test_timestep_shared_mask():
    x = torch.rand(4, 12, 9) + 1  # batch x timesteps x features
    out = Dropout(0.5, noise_shape=(None, 1, None), seed=0)(x)
    zero = out == 0
    assert torch.equal(zero, zero[:, :1, :].expand_as(zero))
    assert not torch.equal(zero[0], zero[1])  # not shared across the batch


def test_noise_shape_none_entry_follows_a_varying_batch_size():
    layer = Dropout(0.5, noise_shape=(None, 1), seed=0)
    for n in (1, 3, 17):
        out = layer(torch.ones(n, 4))
        assert out.shape == (n, 4)
        assert torch.equal(out, out[:, :1].expand_as(out))


def test_resolve_noise_shape_accepts_explicit_sizes():
    assert resolve_noise_shape((8, 3, 5, 5), (None, None, 1, 1)) == (8, 3, 1, 1)
    assert resolve_noise_shape((8, 3), (8, 1)) == (8, 1)
    assert resolve_noise_shape((8, 3), None) == (8, 3)


def test_same_seed_same_mask_different_seed_different_mask():
    x = torch.ones(32, 32)
    assert torch.equal(dropout(x, 0.5, generator=gen(11)), dropout(x, 0.5, generator=gen(11)))
    assert not torch.equal(dropout(x, 0.5, generator=gen(11)), dropout(x, 0.5, generator=gen(12)))
    a, b, c = Dropout(0.5, seed=3), Dropout(0.5, seed=3), Dropout(0.5, seed=4)
    assert torch.equal(a(x), b(x)) and torch.equal(a(x), b(x))  # the streams stay in step
    assert not torch.equal(Dropout(0.5, seed=3)(x), c(x))


def test_global_rng_is_used_without_a_generator():
    x = torch.ones(20, 20)
    torch.manual_seed(0)
    first = dropout(x, 0.5)
    torch.manual_seed(0)
    assert torch.equal(dropout(x, 0.5), first)


def test_gradient_is_one_over_keep_on_kept_units_and_zero_on_dropped():
    x = torch.randn(10, 10, requires_grad=True)
    out = dropout(x, 0.4, generator=gen(13))
    out.sum().backward()
    kept = dropout_mask(x.shape, 0.4, generator=gen(13))
    assert torch.allclose(x.grad, kept.float() / 0.6)


def test_dropped_units_are_exactly_zero_even_for_inf():
    x = torch.full((50,), float("inf"))
    out = dropout(x, 0.5, generator=gen(14))
    assert torch.all((out == 0) | torch.isinf(out)) and (out == 0).any()


@pytest.mark.parametrize("p, message", [
    (1.5, r"p must be in \[0, 1\], got 1.5"),
    (-0.1, r"p must be in \[0, 1\], got -0.1"),
    ("half", r"p must be a number, got 'half'"),
])
def test_rate_errors(p, message):
    with pytest.raises(RegularkitError, match=message):
        dropout(torch.ones(3), p)
    with pytest.raises(RegularkitError, match=message):
        Dropout(p)
    with pytest.raises(RegularkitError, match=message):
        dropout_mask((3,), p)


def test_rate_one_drops_everything_in_training_as_torch_does():
    # torch: F.dropout(x, p=1) returns zeros (ATen's dropout returns x * 0 for p == 1, drawing nothing).
    x = torch.randn(6, 5, dtype=torch.float64, generator=gen(15))
    for classic in (False, True):
        assert torch.equal(dropout(x, 1.0, classic=classic, generator=gen(0)), F.dropout(x, 1.0, training=True))
    assert torch.equal(Dropout(1.0, seed=0)(x), torch.zeros_like(x))
    g = gen(16)
    state = g.get_state()
    dropout(x, 1.0, generator=g)
    assert torch.equal(g.get_state(), state)  # nothing drawn, as torch
    assert not dropout_mask(x.shape, 1.0, generator=gen(0)).any()  # the mask it would be: all dropped


def test_rate_one_eval_rules_and_exact_zeros():
    x = torch.tensor([1.0, float("inf"), float("nan"), -2.0], requires_grad=True)
    out = dropout(x, 1.0)
    assert torch.equal(out, torch.zeros(4))  # torch gives x * 0 = nan at inf and nan; a dropped unit is exactly 0
    assert torch.isnan(F.dropout(x.detach(), 1.0)[1:3]).all()
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros(4))  # no 0/0 from the 1/keep scale
    assert dropout(x, 1.0, training=False) is x  # inverted: eval is the identity whatever p
    assert torch.equal(dropout(x, 1.0, training=False, classic=True), torch.zeros(4))  # classic: x * keep, keep = 0
    assert torch.equal(Dropout(1.0, classic=True).eval()(x), torch.zeros(4))
    assert torch.equal(apply_dropout(x.detach(), torch.ones(4, dtype=torch.bool), 1.0), torch.zeros(4))


def test_noise_shape_errors():
    message = r"one entry per dimension of x \(2 for shape \(4, 3\)\), got \(None, 1, 1\)"
    with pytest.raises(RegularkitError, match=message):
        dropout(torch.ones(4, 3), 0.5, noise_shape=(None, 1, 1))
    with pytest.raises(RegularkitError, match=r"noise_shape\[1\] must be None, 1 or 3 \(x's size\), got 2"):
        dropout(torch.ones(4, 3), 0.5, noise_shape=(None, 2))
    with pytest.raises(RegularkitError, match=r"noise_shape\[1\] must be None, 1 or 3"):
        dropout(torch.ones(4, 3), 0.5, training=False, noise_shape=(None, 2))  # also checked in eval
    with pytest.raises(RegularkitError, match=r"noise_shape entries must be None or positive ints, got \(None, 0\)"):
        Dropout(0.5, noise_shape=(None, 0))
    with pytest.raises(RegularkitError, match=r"noise_shape must be a tuple of None or positive ints, got 3"):
        Dropout(0.5, noise_shape=3)


def test_input_and_randomness_errors():
    with pytest.raises(RegularkitError, match=r"x must be a floating tensor, got dtype torch.int64"):
        dropout(torch.ones(3, dtype=torch.long), 0.5)
    with pytest.raises(RegularkitError, match=r"x must be a torch.Tensor, got list"):
        dropout([1.0, 2.0], 0.5)
    with pytest.raises(RegularkitError, match=r"give seed or generator, not both; got seed=1"):
        Dropout(0.5, seed=1, generator=gen(0))
    with pytest.raises(RegularkitError, match=r"seed must be >= 0, got -1"):
        Dropout(0.5, seed=-1)
    with pytest.raises(RegularkitError, match=r"generator must be a torch.Generator or None, got 3"):
        dropout(torch.ones(3), 0.5, generator=3)


def test_repr_names_the_settings():
    assert repr(Dropout(0.25, noise_shape=(None, 1), classic=True)) == \
        "Dropout(p=0.25, noise_shape=(None, 1), classic=True)"


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
       dtype=st.sampled_from(FLOAT_DTYPES), p=st.floats(0.0, 0.9), classic=st.booleans(),
       seed=st.integers(0, 2**31), data=st.data())
def test_properties_over_shapes_and_dtypes(shape, dtype, p, classic, seed, data):
    x = (torch.rand(shape, generator=gen(seed)) + 0.5).to(dtype)
    noise_shape = tuple(data.draw(st.sampled_from([None, 1])) for _ in shape)
    out = dropout(x, p, classic=classic, noise_shape=noise_shape, generator=gen(seed))
    assert out.shape == x.shape and out.dtype == x.dtype
    kept_value = x if classic else x / (1 - p)
    assert torch.all((out == 0) | (out == kept_value))
    # the mask is drawn in float32 whatever the data's dtype: the same seed gives the same zeros
    ref = dropout(x.double(), p, classic=classic, noise_shape=noise_shape, generator=gen(seed))
    assert torch.equal(out == 0, ref == 0)
    # eval: identity (inverted) or exactly x * keep (classic)
    test = dropout(x, p, training=False, classic=classic, noise_shape=noise_shape)
    assert torch.equal(test, x * (1 - p) if classic and p > 0 else x)


@pytest.mark.parametrize("entry", [1.0, 2.5, True, "1"])
def test_noise_shape_entries_that_are_not_ints_are_refused(entry):
    """``1.0`` is not ``1``: a float (or a bool, or a string) in ``noise_shape`` is refused, not truncated."""
    message = r"noise_shape entries must be None or positive ints, got \(None, " + re.escape(repr(entry)) + r"\)"
    with pytest.raises(RegularkitError, match=message):
        Dropout(0.5, noise_shape=(None, entry))
    with pytest.raises(RegularkitError, match=message):
        dropout(torch.ones(4, 3), 0.5, noise_shape=(None, entry))
    assert resolve_noise_shape((4, 3), (None, np.int64(1))) == (4, 1)  # integer types other than int are ints
