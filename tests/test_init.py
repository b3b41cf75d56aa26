"""Initialisation: fans like torch, variance-scaling statistics, torch parity, seeds, class-prior bias."""
import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from regularkit import init as I
from regularkit.errors import RegularkitError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(7, 3), (8, 3, 5), (8, 3, 5, 5), (4, 2, 3, 3, 3), (1, 1)])
def test_fans_match_torch(shape):
    assert I.compute_fans(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fans_worked_example_and_error():
    assert I.compute_fans(nn.Conv2d(3, 8, 5).weight.shape) == (75, 200)  # 3*25 in, 8*25 out
    assert I.compute_fans(nn.Linear(10, 4).weight.shape) == (10, 4)
    with pytest.raises(RegularkitError, match=r"fans need a weight with >= 2 dims \(out, in, \*kernel\), got shape \(5,\)"):
        I.compute_fans((5,))


def test_truncated_std_constant_is_keras_and_scipy():
    assert I.TRUNCATED_STD == pytest.approx(0.87962566103423978, abs=1e-15)
    assert I.TRUNCATED_STD == pytest.approx(scipy.stats.truncnorm(-2, 2).std(), abs=1e-12)


SHAPE = (500, 2000)  # 1e6 samples; fan_in = 2000, fan_out = 500, fan_avg = 1250
N = {"fan_in": 2000, "fan_out": 500, "fan_avg": 1250}


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["normal", "uniform", "truncated_normal"])
def test_variance_scaling_statistics(mode, distribution):
    scale = 2.0
    w = I.variance_scaling(torch.empty(SHAPE), scale, mode, distribution, generator=gen(1)).double()
    std = math.sqrt(scale / N[mode])
    # With 1e6 samples the sample std is within ~0.1 % and the mean within ~5 std / 1000.
    assert abs(w.mean().item()) < 5e-3 * std
    assert w.std().item() == pytest.approx(std, rel=5e-3)
    top = w.abs().max().item()
    if distribution == "uniform":
        limit = math.sqrt(3 * scale / N[mode])
        assert top <= limit and top > 0.999 * limit
    elif distribution == "truncated_normal":
        edge = 2 * std / I.TRUNCATED_STD  # +-2 sigma' of the pre-truncation normal
        assert top <= edge * (1 + 1e-6) and top > 0.99 * edge
        # the shape is the truncated normal's: a Kolmogorov-Smirnov test on a subsample
        sub = (w.flatten()[:20000] / (std / I.TRUNCATED_STD)).numpy()
        assert scipy.stats.kstest(sub, scipy.stats.truncnorm(-2, 2).cdf).pvalue > 1e-3
    else:
        assert top > 4 * std  # an untruncated normal does reach past 2 sigma with 1e6 draws


@pytest.mark.parametrize("ours, theirs", [
    (I.he_normal, lambda t, g: torch.nn.init.kaiming_normal_(t, nonlinearity="relu", generator=g)),
    (I.he_uniform, lambda t, g: torch.nn.init.kaiming_uniform_(t, nonlinearity="relu", generator=g)),
    (I.glorot_normal, lambda t, g: torch.nn.init.xavier_normal_(t, generator=g)),
    (I.glorot_uniform, lambda t, g: torch.nn.init.xavier_uniform_(t, generator=g)),
    (I.lecun_normal, lambda t, g: torch.nn.init.kaiming_normal_(t, nonlinearity="linear", generator=g)),
])
def test_presets_equal_torch_with_the_same_generator(ours, theirs):
    for shape in [(30, 20), (6, 3, 3, 3)]:
        torch.testing.assert_close(ours(torch.empty(shape), generator=gen(5)), theirs(torch.empty(shape), gen(5)),
                                   rtol=1e-6, atol=0)


def test_lecun_uniform_and_truncated_presets():
    w = I.lecun_uniform(torch.empty(400, 1000), generator=gen(0))
    assert w.abs().max() <= math.sqrt(3 / 1000) and w.std().item() == pytest.approx(math.sqrt(1 / 1000), rel=1e-2)
    t = I.he_normal(torch.empty(400, 1000), truncated=True, generator=gen(0))
    assert t.abs().max() <= 2 * math.sqrt(2 / 1000) / I.TRUNCATED_STD * (1 + 1e-6)
    assert t.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=1e-2)


@pytest.mark.parametrize("distribution", ["normal", "uniform", "truncated_normal"])
def test_same_seed_same_tensor(distribution):
    a = I.variance_scaling(torch.empty(50, 40), distribution=distribution, generator=gen(3))
    b = I.variance_scaling(torch.empty(50, 40), distribution=distribution, generator=gen(3))
    c = I.variance_scaling(torch.empty(50, 40), distribution=distribution, generator=gen(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("distribution", ["normal", "uniform", "truncated_normal"])
def test_cpu_generator_gives_the_same_numbers_on_cuda(distribution):
    cpu = I.variance_scaling(torch.empty(30, 20), distribution=distribution, generator=gen(7))
    cuda = I.variance_scaling(torch.empty(30, 20, device="cuda"), distribution=distribution, generator=gen(7))
    assert cuda.device.type == "cuda" and torch.equal(cuda.cpu(), cpu)


@pytest.mark.parametrize("kwargs, match", [
    ({"scale": 0.0}, r"scale must be > 0, got 0.0"),
    ({"mode": "fan"}, r"mode must be one of 'fan_in', 'fan_out', 'fan_avg'; got 'fan'"),
    ({"distribution": "gauss"}, r"distribution must be one of 'normal', 'uniform', 'truncated_normal'; got 'gauss'"),
])
def test_variance_scaling_errors(kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        I.variance_scaling(torch.empty(3, 3), **kwargs)
    with pytest.raises(RegularkitError, match=r"fan_in is 0 for a weight of shape \(3, 0\)"):
        I.variance_scaling(torch.empty(3, 0))
    with pytest.raises(RegularkitError, match=r"tensor must be a torch.Tensor, got list"):
        I.variance_scaling([1.0, 2.0])


# --- class-prior bias -------------------------------------------------------------------------------

def test_class_prior_bias_softmax_worked_example():
    layer = nn.Linear(4, 3)
    b = I.class_prior_bias(layer, [10, 30, 60])
    assert b is layer.bias
    torch.testing.assert_close(b.detach().softmax(0), torch.tensor([0.1, 0.3, 0.6]), atol=1e-6, rtol=0)
    np.testing.assert_allclose(b.detach().numpy(), np.log([0.1, 0.3, 0.6]), rtol=1e-6)


def test_class_prior_bias_random_priors_and_counts():
    rng = np.random.default_rng(0)
    for k in (2, 5, 100):
        counts = rng.integers(1, 1000, size=k)
        p = counts / counts.sum()
        for values in (counts, p, torch.tensor(p)):
            b = I.class_prior_bias(torch.zeros(k, dtype=torch.float64), values)
            np.testing.assert_allclose(torch.softmax(b, 0).numpy(), p, atol=1e-6)


def test_class_prior_bias_sigmoid():
    p = np.array([0.05, 0.5, 0.9])
    b = I.class_prior_bias(torch.zeros(3, dtype=torch.float64), p, "sigmoid")
    np.testing.assert_allclose(torch.sigmoid(b).numpy(), p, atol=1e-12)
    np.testing.assert_allclose(b.numpy(), np.log(p / (1 - p)))  # logit; 0 for p = 0.5
    b = I.class_prior_bias(torch.zeros(2, dtype=torch.float64), [10, 250], "sigmoid", n_samples=1000)
    np.testing.assert_allclose(torch.sigmoid(b).numpy(), [0.01, 0.25], atol=1e-12)


@pytest.mark.parametrize("target, values, kwargs, match", [
    (torch.zeros(3), [1, 0, 2], {}, r"class counts/priors must all be > 0 for a softmax bias, got \[1.0, 0.0, 2.0\]"),
    (torch.zeros(3), [1, 2], {}, r"bias has shape \(3,\) but 2 class priors were given"),
    (torch.zeros(2), [0.5, 1.0], {"activation": "sigmoid"}, r"sigmoid priors must be in \(0, 1\) \(pass counts with n_samples=\), got \[0.5, 1.0\]"),
    (torch.zeros(2), [1, 2], {"activation": "tanh"}, r"activation must be one of 'softmax', 'sigmoid'; got 'tanh'"),
    (torch.zeros(2), "ab", {}, r"class_counts_or_priors must be a sequence of numbers, got 'ab'"),
    (torch.zeros(2), [[1, 2]], {}, r"must be a non-empty 1-D sequence of finite numbers, got \[\[1, 2\]\]"),
    (nn.Linear(2, 2, bias=False), [1, 2], {}, r"class_prior_bias needs a layer with a bias or a tensor"),
    (torch.zeros(2), [1, 2], {"activation": "sigmoid", "n_samples": -5}, r"n_samples must be > 0, got -5"),
])
def test_class_prior_bias_errors(target, values, kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        I.class_prior_bias(target, values, **kwargs)


# --- initialize a whole model ---------------------------------------------------------------------------

def mlp():
    return nn.Sequential(nn.Linear(1000, 800), nn.BatchNorm1d(800), nn.ReLU(), nn.Linear(800, 10))


def test_initialize_whole_model():
    model = mlp()
    bn_before = [p.detach().clone() for p in model[1].parameters()]
    I.initialize(model, "he_normal", bias=0.1, output_bias="prior", class_prior=list(range(1, 11)), generator=gen(0))
    assert model[0].weight.std().item() == pytest.approx(math.sqrt(2 / 1000), rel=1e-2)
    assert model[3].weight.std().item() == pytest.approx(math.sqrt(2 / 800), rel=5e-2)
    assert torch.all(model[0].bias == 0.1)  # hidden ReLU units start active
    p = torch.arange(1, 11, dtype=torch.float32) / 55
    torch.testing.assert_close(model[3].bias.detach().softmax(0), p, atol=1e-6, rtol=0)  # softmax(b) = p(y)
    assert all(torch.equal(a, b) for a, b in zip(model[1].parameters(), bn_before))  # norm layers untouched
    again = I.initialize(mlp(), "he_normal", bias=0.1, output_bias="prior", class_prior=list(range(1, 11)),
                         generator=gen(0))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))


def test_initialize_options():
    model = I.initialize(mlp(), weight=None, bias=None, output_bias=-2.0)
    assert torch.all(model[3].bias == -2.0) and not torch.all(model[0].bias == 0)
    calls = []

    def custom(t, generator=None):
        calls.append(tuple(t.shape))
        return t.fill_(0.5)

    I.initialize(model, weight=custom)
    assert calls == [(800, 1000), (10, 800)] and torch.all(model[0].weight == 0.5) and torch.all(model[0].bias == 0)
    assert I.get("glorot_uniform") is I.glorot_uniform


@pytest.mark.parametrize("kwargs, match", [
    ({"weight": "xavier"}, r"initializer must be one of 'glorot_normal', .*; got 'xavier'"),
    ({"weight": 3}, r"weight must be an initializer name, a callable or None, got 3"),
    ({"class_prior": [1, 2]}, r"class_prior is only used with output_bias='prior', got output_bias=None"),
    ({"output_bias": "prior"}, r"output_bias='prior' needs class_prior \(class counts or priors\), got None"),
    ({"output_bias": "zero"}, r"output_bias must be a number, got 'zero'"),
    ({"bias": "x"}, r"bias must be a number, got 'x'"),
])
def test_initialize_errors(kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        I.initialize(mlp(), **kwargs)


def test_initialize_needs_layers():
    with pytest.raises(RegularkitError, match=r"initialize: BatchNorm1d has no layer of types"):
        I.initialize(nn.BatchNorm1d(3))
    with pytest.raises(RegularkitError, match=r"output_bias=0.0 needs a last nn.Linear with a bias in the model"):
        I.initialize(nn.Conv2d(1, 2, 3), output_bias=0.0)
