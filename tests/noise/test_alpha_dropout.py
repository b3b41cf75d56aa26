"""Alpha dropout: mean and variance kept (simulation), torch's constants and outputs, Keras' formula, noise_shape."""
import math

import numpy as np
import pytest
import torch

from regularkit.errors import RegularkitError
from regularkit.noise import AlphaDropout, alpha_dropout, alpha_dropout_constants, dropout_mask
from regularkit.noise.alpha_dropout import ALPHA_PRIME, apply_alpha_dropout


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p", [0.05, 0.1, 0.3, 0.5])
def test_mean_zero_variance_one_inputs_keep_their_mean_and_variance(p):
    x = torch.randn(1_000_000, generator=gen(0), dtype=torch.float64)
    out = alpha_dropout(x, p, generator=gen(1))
    # n = 1e6: std of the mean 0.001, of the variance about 0.002; the stated tolerances are > 5 sigma
    assert abs(float(out.mean())) < 0.01
    assert abs(float(out.var()) - 1.0) < 0.02
    dropped = out[dropout_mask((1_000_000,), p, generator=gen(1)).logical_not()]
    a, b = alpha_dropout_constants(p)
    torch.testing.assert_close(dropped, torch.full_like(dropped, a * ALPHA_PRIME + b))  # all at a alpha' + b


def torch_alpha_dropout_constants(p):
    """torch's ATen ``_dropout_impl`` (alpha): ``a = 1 / sqrt((alpha^2 p + 1)(1 - p))`` with ``alpha = 1.758...``,
    kept units ``a x + alpha a p``, dropped units ``-alpha a + alpha a p``."""
    alpha = 1.7580993408473766
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    return a, alpha * a * p, -alpha * a + alpha * a * p


def keras_alpha_dropout(x, kept, rate):
    """Keras 3 ``AlphaDropout.call`` restated in NumPy: ``a * (x * kept + alpha_p * (1 - kept)) + b``."""
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    alpha_p = -alpha * scale
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * rate
    return a * (x * kept + alpha_p * (1 - kept)) + b


@pytest.mark.parametrize("p", [0.0, 0.1, 0.25, 0.6])
def test_constants_and_outputs_are_torchs_and_keras(p):
    a, b = alpha_dropout_constants(p)
    t_a, t_kept_shift, t_dropped = torch_alpha_dropout_constants(p)
    assert a == pytest.approx(t_a, rel=1e-14) and b == pytest.approx(t_kept_shift, rel=1e-14, abs=1e-15)
    assert a * ALPHA_PRIME + b == pytest.approx(t_dropped, rel=1e-14, abs=1e-15)
    assert ALPHA_PRIME == pytest.approx(-1.7580993408473766, rel=1e-15)
    x = torch.randn(64, 5, generator=gen(2), dtype=torch.float64)
    mask = dropout_mask(x.shape, p, generator=gen(3))
    ours = apply_alpha_dropout(x, mask, p)
    expected = keras_alpha_dropout(x.numpy(), mask.numpy().astype(np.float64), p)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-13, atol=1e-13)
    if p > 0:
        assert torch.equal(alpha_dropout(x, p, generator=gen(3)), ours)  # the function draws that very mask


def test_matches_torch_functional_alpha_dropout_in_law_and_on_its_own_mask():
    p = 0.2
    x = torch.randn(200_000, generator=gen(4))
    torch.manual_seed(5)
    theirs = torch.nn.functional.alpha_dropout(x, p, training=True)
    a, b = alpha_dropout_constants(p)
    kept = torch.isclose(theirs, a * x + b, rtol=0, atol=1e-5)
    # torch's output is ours on torch's own keep mask
    torch.testing.assert_close(theirs, apply_alpha_dropout(x, kept, p), rtol=1e-5, atol=1e-5)
    assert abs(float(kept.float().mean()) - (1 - p)) < 0.005
    assert torch.equal(torch.nn.functional.alpha_dropout(x, p, training=False), alpha_dropout(x, p, False))


def test_noise_shape_shares_the_mask_like_feature_alpha_dropout():
    x = torch.randn(16, 4, 3, 3, generator=gen(6))
    out = AlphaDropout(0.5, noise_shape=(None, None, 1, 1), seed=0)(x)
    a, b = alpha_dropout_constants(0.5)
    dropped = torch.isclose(out, torch.full_like(out, a * ALPHA_PRIME + b)).flatten(2)
    assert (dropped.all(2) | ~dropped.any(2)).all()  # whole channels dropped or kept
    assert dropped.all(2).any() and (~dropped.any(2)).any()


def test_eval_and_zero_rate_are_the_identity_and_errors_name_the_value():
    x = torch.randn(3, 4)
    assert alpha_dropout(x, 0.3, training=False) is x and alpha_dropout(x, 0.0) is x
    assert AlphaDropout(0.3).eval()(x) is x
    with pytest.raises(RegularkitError, match=r"p must be in \[0, 1\), got 1"):
        AlphaDropout(1)
    with pytest.raises(RegularkitError, match="x must be a floating tensor, got dtype torch.int64"):
        alpha_dropout(torch.ones(3, dtype=torch.long), 0.1)
    with pytest.raises(RegularkitError, match=r"noise_shape\[1\] must be None, 1 or 4"):
        alpha_dropout(x, 0.1, noise_shape=(None, 2))
