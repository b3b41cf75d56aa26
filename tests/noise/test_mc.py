"""Test-time averaging: E_z[f(x, z)] by enumeration, Monte Carlo, and the weight-scaling rule."""
import itertools

import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.noise import (
    DropConnectLinear,
    Dropout,
    GaussianNoise,
    apply_dropout,
    compare_mc_to_weight_scaling,
    mc_mode,
    mc_predict,
    weight_scaling_predict,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("classic", [False, True])
def test_weight_scaling_is_exact_for_a_linear_net_by_enumerating_every_mask(classic):
    # The slide's E_z[f(x, z)] = sum_z p(z) f(x, z), summed exactly over the 2^4 masks of 4 inputs.
    torch.manual_seed(0)
    p, keep = 0.3, 0.7
    lin = nn.Linear(4, 3).double()
    x = torch.randn(2, 4, dtype=torch.float64)
    expected = torch.zeros(2, 3, dtype=torch.float64)
    for bits in itertools.product([False, True], repeat=4):
        mask = torch.tensor(bits)
        prob = keep ** sum(bits) * p ** (4 - sum(bits))
        expected += prob * lin(apply_dropout(x, mask, p, classic=classic))
    net = nn.Sequential(Dropout(p, classic=classic), lin)
    assert torch.allclose(weight_scaling_predict(net, x), expected, atol=1e-12)


def test_mc_agrees_with_weight_scaling_on_a_linear_net():
    torch.manual_seed(1)
    net = nn.Sequential(Dropout(0.5), nn.Linear(10, 6), Dropout(0.5), nn.Linear(6, 3)).double()
    x = torch.randn(5, 10, dtype=torch.float64)
    report = compare_mc_to_weight_scaling(net, x, k=4000, generator=gen(0))
    # Linear in the masks: the only difference is Monte Carlo error (~N(0, stderr^2) per entry),
    # so the largest of 15 entries stays below 5 standard errors and the mean |diff| near 0.8.
    assert report["max_abs_diff"] < 5 * report["mc_stderr"]
    assert report["mean_abs_diff"] < 2 * report["mc_stderr"]


def test_relu_after_the_noise_makes_weight_scaling_underestimate():
    # Jensen: E_z[relu(u_z)] >= relu(E_z[u_z]); with positive output weights the MC mean is larger.
    torch.manual_seed(2)
    hidden = nn.Linear(12, 20)
    out = nn.Linear(20, 1)
    with torch.no_grad():
        out.weight.abs_()
    net = nn.Sequential(Dropout(0.5), hidden, nn.ReLU(), out).double()
    x = torch.randn(32, 12, dtype=torch.float64)
    report = compare_mc_to_weight_scaling(net, x, k=2000, generator=gen(1))
    assert report["mean_diff"] > 10 * report["mc_stderr"]  # systematic, far beyond MC noise
    mc = mc_predict(net, x, 2000, generator=gen(1))
    assert torch.all(mc - weight_scaling_predict(net, x) > -5 * report["mc_stderr"])


def test_report_keys_and_types():
    net = nn.Sequential(nn.Linear(4, 8), Dropout(0.5), nn.ReLU(), nn.Linear(8, 3))
    report = compare_mc_to_weight_scaling(net, torch.randn(6, 4), k=10, generator=gen(2))
    assert set(report) == {"k", "max_abs_diff", "mean_abs_diff", "mean_diff", "mc_stderr", "argmax_agreement"}
    assert report["k"] == 10 and 0.0 <= report["argmax_agreement"] <= 1.0
    flat = nn.Sequential(nn.Linear(4, 1), Dropout(0.5), nn.Flatten(0))
    assert compare_mc_to_weight_scaling(flat, torch.randn(6, 4), k=3)["argmax_agreement"] is None


def test_only_noise_layers_run_in_train_mode_and_batchnorm_is_untouched():
    torch.manual_seed(3)
    seen = {}
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), Dropout(0.5), nn.Dropout(0.2), GaussianNoise(0.1))
    for name, m in net.named_children():
        m.register_forward_pre_hook(lambda mod, args, name=name: seen.__setitem__(name, mod.training))
    net.train()
    net[1].eval()  # a mixed state, to check that every flag is restored
    before = {n: m.training for n, m in net.named_modules()}
    stats = net[1].running_mean.clone(), net[1].running_var.clone()
    mc_predict(net, torch.randn(16, 4), 5, generator=gen(3))
    assert seen == {"0": False, "1": False, "2": True, "3": True, "4": True}
    assert torch.equal(net[1].running_mean, stats[0]) and torch.equal(net[1].running_var, stats[1])
    assert {n: m.training for n, m in net.named_modules()} == before
    with mc_mode(net):
        assert not net.training and net[2].training


def test_generator_makes_mc_reproducible_including_torch_dropout():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(6, 6), nn.Dropout(0.5), DropConnectLinear(6, 3, p=0.5, per_sample=True))
    x = torch.randn(4, 6)
    a = mc_predict(net, x, 7, generator=gen(5))
    b = mc_predict(net, x, 7, generator=gen(5))
    c = mc_predict(net, x, 7, generator=gen(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    state = torch.random.get_rng_state()
    mc_predict(net, x, 3, generator=gen(5))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is forked, not consumed


def test_transform_averages_probabilities_and_dtype_is_kept():
    net = nn.Sequential(nn.Linear(4, 5), Dropout(0.5))
    x = torch.randn(3, 4)
    probs = mc_predict(net, x, 20, generator=gen(7), transform=lambda z: z.softmax(-1))
    assert probs.dtype == torch.float32
    assert torch.allclose(probs.sum(-1), torch.ones(3), atol=1e-6)


def test_k_errors():
    net = nn.Sequential(Dropout(0.5))
    with pytest.raises(RegularkitError, match=r"k must be >= 1, got 0"):
        mc_predict(net, torch.ones(2, 2), 0)
    with pytest.raises(RegularkitError, match=r"k must be an integer, got 2.5"):
        mc_predict(net, torch.ones(2, 2), 2.5)
    with pytest.raises(RegularkitError, match=r"generator must be a torch.Generator or None, got 1"):
        mc_predict(net, torch.ones(2, 2), 2, generator=1)


def test_mc_predict_std_is_the_mean_and_population_std_of_the_passes():
    from regularkit.noise import mc_mode, mc_predict_std, use_generator

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
    x = torch.randn(5, 3)
    mean, std = mc_predict_std(model, x, 20, torch.Generator().manual_seed(3))
    with torch.no_grad(), mc_mode(model), use_generator(model, torch.Generator().manual_seed(3)):
        passes = torch.stack([model(x).double() for _ in range(20)])
    assert torch.allclose(mean.double(), passes.mean(0), atol=1e-5)
    assert torch.allclose(std.double(), passes.std(0, unbiased=False), atol=1e-4)
    assert torch.allclose(mean, mc_predict(model, x, 20, torch.Generator().manual_seed(3)))
