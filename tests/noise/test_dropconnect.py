"""DropConnect: weight and bias masks per batch and per sample, inference rules (mean, moment matching),
layers that stay nn.Linear/Conv2d."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

from regularkit.errors import RegularkitError
from regularkit.noise import (
    DropConnect,
    DropConnectConv2d,
    DropConnectLinear,
    drop_connect,
    drop_connect_conv2d,
    drop_connect_linear,
    drop_connect_moment_matching,
    dropout_mask,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_weight_mask_fraction_and_exact_scaling():
    w = torch.rand(300, 400, generator=gen(0)) + 1
    masked = drop_connect(w, 0.4, generator=gen(1))
    kept = masked != 0
    # 120,000 weights: std of the kept fraction is 0.0014; 0.007 is 5 sigma.
    assert abs(float(kept.double().mean()) - 0.6) < 0.007
    assert torch.equal(masked[kept], (w / 0.6)[kept])
    assert torch.equal(drop_connect(w, 0.4, training=False), w)
    classic = drop_connect(w, 0.4, classic=True, generator=gen(1))
    assert torch.equal(classic[kept], w[kept]) and torch.equal(classic == 0, ~kept)
    assert torch.equal(drop_connect(w, 0.4, training=False, classic=True), w * 0.6)


def test_layer_is_an_nn_linear_with_the_usual_names():
    layer = DropConnectLinear(5, 3, p=0.5)
    assert isinstance(layer, nn.Linear)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    plain = nn.Linear(5, 3)
    layer.load_state_dict(plain.state_dict())  # state dicts move both ways
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(4, 5)
    assert torch.equal(layer.eval()(x), plain(x))  # inverted: test time uses W itself
    classic = DropConnectLinear(5, 3, p=0.5, classic=True)  # masks the bias too: test time scales both
    classic.load_state_dict(plain.state_dict())
    assert torch.allclose(classic.eval()(x), F.linear(x, plain.weight * 0.5, plain.bias * 0.5))
    weights_only = DropConnectLinear(5, 3, p=0.5, classic=True, mask_bias=False)
    weights_only.load_state_dict(plain.state_dict())
    assert torch.allclose(weights_only.eval()(x), F.linear(x, plain.weight * 0.5, plain.bias))


def test_from_linear_shares_parameters():
    plain = nn.Linear(4, 2)
    layer = DropConnectLinear.from_linear(plain, p=0.3, per_sample=True, seed=0)
    assert layer.weight is plain.weight and layer.bias is plain.bias
    assert layer.p == 0.3 and layer.per_sample and layer.weight.device.type == "cpu"
    no_bias = DropConnectLinear.from_linear(nn.Linear(4, 2, bias=False))
    assert no_bias.bias is None and no_bias.eval()(torch.ones(1, 4)).shape == (1, 2)


def test_per_batch_mask_is_shared_by_every_example():
    layer = DropConnectLinear(20, 10, p=0.5, seed=0)
    out = layer(torch.ones(6, 20))
    assert torch.equal(out, out[:1].expand_as(out))


def test_per_sample_masks_differ_between_examples():
    layer = DropConnectLinear(20, 10, p=0.5, per_sample=True, seed=0)
    out = layer(torch.ones(6, 20))
    assert len({tuple(row.tolist()) for row in out}) == 6


@pytest.mark.parametrize("mask_bias", [True, False])
def test_per_sample_matches_a_numpy_loop_over_examples(mask_bias):
    n, d_in, d_out, p = 7, 5, 4, 0.3
    x = torch.randn(n, d_in, dtype=torch.float64, generator=gen(2))
    w = torch.randn(d_out, d_in, dtype=torch.float64, generator=gen(3))
    b = torch.randn(d_out, dtype=torch.float64, generator=gen(4))
    out = drop_connect_linear(x, w, b, p, per_sample=True, mask_bias=mask_bias, generator=gen(5))
    g = gen(5)  # the same draws: the weight masks, then the bias masks
    masks = dropout_mask((n, d_out, d_in), p, generator=g).numpy()
    bias_masks = dropout_mask((n, d_out), p, generator=g).numpy() if mask_bias else np.ones((n, d_out))
    wn, xn, bn = w.numpy(), x.numpy(), b.numpy()
    bias_scale = 1 / (1 - p) if mask_bias else 1.0
    ref = np.stack([(wn * masks[i] / (1 - p)) @ xn[i] + bn * bias_masks[i] * bias_scale for i in range(n)])
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("classic", [False, True])
def test_bias_mask_drops_the_stated_fraction(per_sample, classic):
    # Zero input: the output is the masked bias alone, b * m / keep (or b * m if classic).
    n, d_out, p = 200, 1000, 0.3
    b = torch.rand(d_out, generator=gen(20)) + 1
    out = drop_connect_linear(torch.zeros(n, 4), torch.ones(d_out, 4), b, p, per_sample=per_sample,
                              classic=classic, generator=gen(21))
    kept = out != 0
    if per_sample:
        # 200,000 independent bias entries: std of the kept fraction is 0.001; 0.005 is 5 sigma.
        assert abs(float(kept.double().mean()) - 0.7) < 0.005
        assert not torch.equal(kept[0], kept[1])  # one mask per example
    else:
        # one mask per batch: 1,000 entries (std 0.0145, 0.06 is > 4 sigma), shared by every example
        assert abs(float(kept[0].double().mean()) - 0.7) < 0.06
        assert torch.equal(kept, kept[:1].expand_as(kept))
    expected = b if classic else b / 0.7
    assert torch.equal(out[kept], expected.expand_as(out)[kept])
    unmasked = drop_connect_linear(torch.zeros(n, 4), torch.ones(d_out, 4), b, p, per_sample=per_sample,
                                   mask_bias=False, generator=gen(21))
    assert torch.equal(unmasked, b.expand_as(unmasked))


def test_per_sample_handles_extra_leading_dims_one_mask_per_example():
    x = torch.ones(3, 4, 6)  # 3 examples of 4 positions each
    out = drop_connect_linear(x, torch.ones(2, 6), None, 0.5, per_sample=True, generator=gen(6))
    assert out.shape == (3, 4, 2)
    assert torch.equal(out, out[:, :1].expand_as(out))  # one mask per example, shared over its positions


@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("classic", [False, True])
def test_expectation_equals_the_eval_output_bias_included(per_sample, classic):
    # k masked passes of one input, weights and bias masked; we allow 5 empirical standard errors per output.
    k = 20_000 if per_sample else 4_000  # per batch is a Python loop of k passes
    w = torch.randn(3, 8, dtype=torch.float64, generator=gen(7))
    b = torch.randn(3, dtype=torch.float64, generator=gen(22)) + 2
    x = torch.randn(8, dtype=torch.float64, generator=gen(8))
    if per_sample:
        outs = drop_connect_linear(x.expand(k, 8), w, b, 0.5, per_sample=True, classic=classic, generator=gen(9))
    else:
        g = gen(9)
        outs = torch.stack([drop_connect_linear(x, w, b, 0.5, classic=classic, generator=g) for _ in range(k)])
    evaluated = drop_connect_linear(x, w, b, 0.5, training=False, classic=classic)
    torch.testing.assert_close(evaluated, F.linear(x, w, b) * (0.5 if classic else 1.0), rtol=1e-15, atol=0)
    stderr = outs.std(0) / k ** 0.5
    assert torch.all((outs.mean(0) - evaluated).abs() <= 5 * stderr)


def test_conv_bias_mask_is_one_entry_per_channel_map():
    x = torch.zeros(40, 2, 4, 4)
    layer = DropConnectConv2d(2, 50, 3, padding=1, p=0.5, per_sample=True, seed=0)
    out = layer(x)  # zero input: each (example, channel) map is its bias, kept (b / keep) or dropped
    flat = out.flatten(2)
    assert torch.equal(flat, flat[..., :1].expand_as(flat))  # constant over the map
    kept = flat[..., 0] != 0
    torch.testing.assert_close(flat[..., 0][kept], (layer.bias / 0.5).expand(40, 50)[kept])
    # 2,000 (example, channel) entries: std of the kept fraction is 0.011; 0.05 is > 4 sigma
    assert abs(float(kept.double().mean()) - 0.5) < 0.05
    per_batch = DropConnectConv2d(2, 50, 3, padding=1, p=0.5, seed=0)(x).flatten(2)[..., 0]
    assert torch.equal(per_batch, per_batch[:1].expand_as(per_batch))


def test_gradient_reaches_only_the_kept_weights():
    layer = DropConnectLinear(6, 4, p=0.5, generator=gen(10))
    layer(torch.ones(3, 6)).sum().backward()
    kept = dropout_mask((4, 6), 0.5, generator=gen(10))
    assert torch.allclose(layer.weight.grad, kept.float() * 3 / 0.5)


@pytest.mark.parametrize("groups, stride, padding", [(1, 1, 1), (2, 2, 0), (1, 1, "same")])
def test_conv_per_sample_matches_a_loop_of_single_convolutions(groups, stride, padding):
    layer = DropConnectConv2d(4, 6, 3, stride=stride, padding=padding, groups=groups, p=0.4, per_sample=True,
                              dtype=torch.float64, generator=gen(11))
    x = torch.randn(5, 4, 7, 7, dtype=torch.float64, generator=gen(12))
    out = layer(x)
    g = gen(11)  # the weight masks, then the bias masks
    masks = dropout_mask((5,) + tuple(layer.weight.shape), 0.4, generator=g)
    bias_masks = dropout_mask((5, 6), 0.4, generator=g)
    ref = torch.cat([F.conv2d(x[i:i + 1], torch.where(masks[i], layer.weight / 0.6, 0.0),
                              torch.where(bias_masks[i], layer.bias / 0.6, 0.0),
                              stride=stride, padding=padding, groups=groups) for i in range(5)])
    assert torch.allclose(out, ref, atol=1e-12)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "circular"])
def test_conv_eval_equals_nn_conv2d(padding_mode):
    layer = DropConnectConv2d(3, 5, 3, padding=1, padding_mode=padding_mode, p=0.5)
    plain = nn.Conv2d(3, 5, 3, padding=1, padding_mode=padding_mode)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(layer.eval()(x), plain(x), atol=1e-6)
    assert torch.allclose(layer.eval()(x[0]), plain(x[0]), atol=1e-6)  # unbatched input
    assert isinstance(layer, nn.Conv2d)


def test_conv_per_sample_masks_differ_and_per_batch_masks_do_not():
    x = torch.ones(4, 2, 5, 5)
    per_sample = DropConnectConv2d(2, 3, 3, p=0.5, per_sample=True, seed=0)(x)
    per_batch = DropConnectConv2d(2, 3, 3, p=0.5, seed=0)(x)
    assert not torch.equal(per_sample[0], per_sample[1])
    assert torch.equal(per_batch, per_batch[:1].expand_as(per_batch))


def test_parametrization_gives_any_layer_dropconnect():
    conv = nn.Conv2d(3, 4, 3)
    weight = conv.weight.detach().clone()
    parametrize.register_parametrization(conv, "weight", DropConnect(0.5, seed=0))
    x = torch.randn(2, 3, 5, 5)
    assert not torch.allclose(conv(x), F.conv2d(x, weight, conv.bias))
    conv.eval()  # eval reaches the parametrization: the expected weight is W itself
    assert torch.allclose(conv(x), F.conv2d(x, weight, conv.bias))


def test_moment_matching_agrees_with_sampled_masks():
    # Wan et al.'s Gaussian inference vs. 4,000 real per-sample masks through a ReLU;
    # with 200 inputs the pre-activation is close to Gaussian (CLT), so 3% relative is loose.
    d_in, d_out = 200, 5
    w = torch.randn(d_out, d_in, dtype=torch.float64, generator=gen(13)) / d_in ** 0.5
    b = torch.full((d_out,), 0.1, dtype=torch.float64)
    x = torch.rand(1, d_in, dtype=torch.float64, generator=gen(14))
    for classic in (False, True):
        mm = drop_connect_moment_matching(x, w, b, 0.5, torch.relu, samples=20_000, classic=classic,
                                          generator=gen(15))
        sampled = torch.relu(drop_connect_linear(x.expand(4000, d_in), w, b, 0.5, per_sample=True,
                                                 classic=classic, generator=gen(16))).mean(0, keepdim=True)
        assert torch.allclose(mm, sampled, rtol=0.03, atol=0.01)
    # with no nonlinearity the mean of u is the expected-weight rule
    ident = drop_connect_moment_matching(x, w, b, 0.5, lambda u: u, samples=50_000, generator=gen(17))
    assert torch.allclose(ident, F.linear(x, w, b), atol=0.01)


def numpy_moments(x, w, b, keep, mask_bias, scale=1.0):
    """E[u] and V[u] of u = (M * W') v' / scale for M ~ Bernoulli(keep), in Wan et al.'s notation: the bias is a
    weight column on a constant input 1 (v' = [v, 1]) when masked, else added afterwards with no variance."""
    if mask_bias:
        w, x, extra = np.hstack([w, b[:, None]]), np.hstack([x, np.ones((len(x), 1))]), 0.0
    else:
        extra = b
    return keep * x @ w.T / scale + extra, keep * (1 - keep) * (x * x) @ (w * w).T / scale ** 2


def test_numpy_moments_equal_an_exhaustive_enumeration_of_masks():
    # Two inputs and a bias: 2^3 masks per output, enumerated with their probabilities.
    rng = np.random.default_rng(0)
    x, w, b, keep = rng.normal(size=(3, 2)), rng.normal(size=(4, 2)), rng.normal(size=4), 0.7
    mean, var = numpy_moments(x, w, b, keep, mask_bias=True)
    terms = np.concatenate([x[:, None, :] * w[None], np.broadcast_to(b, (3, 4))[..., None]], axis=2)  # N x out x 3
    masks = np.array(list(itertools.product((0, 1), repeat=3)))
    prob = np.prod(np.where(masks == 1, keep, 1 - keep), axis=1)
    u = np.einsum("noj,mj->mno", terms, masks)
    exact_mean = np.einsum("m,mno->no", prob, u)
    np.testing.assert_allclose(mean, exact_mean, rtol=1e-12)
    np.testing.assert_allclose(var, np.einsum("m,mno->no", prob, (u - exact_mean) ** 2), rtol=1e-12)


@pytest.mark.parametrize("classic", [True, False])
@pytest.mark.parametrize("mask_bias", [True, False])
def test_moment_matching_restates_wan_et_al_algorithm_2(classic, mask_bias):
    # Algorithm 2: u ~ N(E[u], V[u]) sampled Z times, r = mean_z a(u_z); inverted scaling divides u by keep.
    n, d_in, d_out, p, samples = 3, 6, 4, 0.4, 50
    keep = 1 - p
    x = torch.randn(n, d_in, dtype=torch.float64, generator=gen(31))
    w = torch.randn(d_out, d_in, dtype=torch.float64, generator=gen(32))
    b = torch.randn(d_out, dtype=torch.float64, generator=gen(33))
    out = drop_connect_moment_matching(x, w, b, p, torch.relu, samples=samples, classic=classic,
                                       mask_bias=mask_bias, generator=gen(30))
    mean, var = numpy_moments(x.numpy(), w.numpy(), b.numpy(), keep, mask_bias, scale=1.0 if classic else keep)
    z = torch.randn((samples, n, d_out), generator=gen(30)).double().numpy()  # the kernel's one float32 draw
    np.testing.assert_allclose(out.numpy(), np.maximum(mean + np.sqrt(var) * z, 0).mean(0), rtol=1e-12, atol=1e-12)


def test_layer_moment_matching_inference_is_the_kernel_with_the_layers_generator():
    layer = DropConnectLinear(6, 4, p=0.4, activation="relu", inference="moment_matching", samples=30, seed=3)
    x = torch.randn(5, 6, generator=gen(34))
    first = layer.eval()(x)
    expected = drop_connect_moment_matching(x, layer.weight, layer.bias, 0.4, torch.relu, samples=30,
                                            generator=gen(3))
    assert torch.equal(first, expected)
    assert not torch.equal(layer(x), first)  # fresh normals at every call: this eval mode is random
    layer.train()  # training is the masked layer followed by the activation
    layer.reset_generator()
    assert torch.equal(layer(x), torch.relu(drop_connect_linear(x, layer.weight, layer.bias, 0.4, generator=gen(3))))


def test_layer_activation_with_the_mean_rule():
    layer = DropConnectLinear(6, 4, p=0.4, activation="tanh")
    x = torch.randn(5, 6, generator=gen(35))
    assert torch.equal(layer.eval()(x), torch.tanh(F.linear(x, layer.weight, layer.bias)))


def test_moment_matching_layer_agrees_with_sampled_masks():
    # The layer's Gaussian inference vs. 4,000 real per-sample masks through its ReLU (see the kernel's test).
    torch.manual_seed(0)
    layer = DropConnectLinear(200, 5, p=0.5, per_sample=True, activation="relu", inference="moment_matching",
                              samples=20_000, seed=36, dtype=torch.float64)
    x = torch.rand(1, 200, dtype=torch.float64, generator=gen(37))
    sampled = layer.train()(x.expand(4000, 200)).mean(0, keepdim=True)
    assert torch.allclose(layer.eval()(x), sampled, rtol=0.03, atol=0.01)


def test_errors():
    with pytest.raises(RegularkitError, match=r"p must be in \[0, 1\), got 1.0"):
        DropConnectLinear(3, 2, p=1.0)
    with pytest.raises(RegularkitError, match=r"p must be in \[0, 1\), got 1.0"):
        drop_connect(torch.ones(2, 2), 1.0)  # dropout takes p = 1; DropConnect does not
    with pytest.raises(RegularkitError, match=r"p must be in \[0, 1\), got -0.5"):
        drop_connect(torch.ones(2, 2), -0.5)
    message = r"per-sample DropConnect on Conv2d needs N x C x H x W input, got shape \(2, 3, 4, 4, 1\)"
    with pytest.raises(RegularkitError, match=message):
        drop_connect_conv2d(torch.ones(2, 3, 4, 4, 1), torch.ones(1, 3, 1, 1), None, 0.5, per_sample=True)
    with pytest.raises(RegularkitError, match=r"samples must be >= 1, got 0"):
        drop_connect_moment_matching(torch.ones(1, 2), torch.ones(1, 2), None, 0.5, torch.relu, samples=0)
    with pytest.raises(RegularkitError, match=r"samples must be >= 1, got 0"):
        DropConnectLinear(3, 2, activation="relu", inference="moment_matching", samples=0)
    message = r"inference='moment_matching' averages a\(u\) over samples of u and needs the activation a .*" \
              r"got activation=None"
    with pytest.raises(RegularkitError, match=message):
        DropConnectLinear(3, 2, inference="moment_matching")
    with pytest.raises(RegularkitError, match=r"inference must be one of 'mean', 'moment_matching'; got 'mc'"):
        DropConnectLinear(3, 2, inference="mc")
    message = r"activation must be one of None, 'relu', 'tanh', 'sigmoid', 'gelu', 'softplus'; got 'swish'"
    with pytest.raises(RegularkitError, match=message):
        DropConnectLinear(3, 2, activation="swish")


def test_repr():
    assert "p=0.5, per_sample=True" in repr(DropConnectLinear(3, 2, p=0.5, per_sample=True))
    assert repr(DropConnect(0.2, classic=True)) == "DropConnect(p=0.2, classic=True)"
    layer = DropConnectLinear(3, 2, mask_bias=False, activation="relu", inference="moment_matching", samples=10)
    assert repr(layer) == ("DropConnectLinear(in_features=3, out_features=2, bias=True, p=0.5, mask_bias=False, "
                           "activation='relu', inference='moment_matching', samples=10)")
    assert repr(DropConnectConv2d(1, 2, 3, mask_bias=False)).endswith("p=0.5, mask_bias=False)")


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), d_in=st.integers(1, 6), d_out=st.integers(1, 5),
       dtype=st.sampled_from((torch.float32, torch.float64, torch.bfloat16)), per_sample=st.booleans(),
       p=st.floats(0.0, 0.9), seed=st.integers(0, 2**31))
def test_linear_properties_over_shapes_and_dtypes(n, d_in, d_out, dtype, per_sample, p, seed):
    layer = DropConnectLinear(d_in, d_out, p=p, per_sample=per_sample, seed=seed, dtype=dtype)
    x = torch.randn(n, d_in, generator=gen(seed)).to(dtype)
    out = layer(x)
    assert out.shape == (n, d_out) and out.dtype == dtype
    again = DropConnectLinear(d_in, d_out, p=p, per_sample=per_sample, seed=seed, dtype=dtype)
    again.load_state_dict(layer.state_dict())
    assert torch.equal(again(x), layer(x))  # the loaded stream resumes: the next masks are equal
    assert torch.equal(layer.eval()(x), F.linear(x, layer.weight, layer.bias))
