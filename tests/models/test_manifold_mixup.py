"""Manifold MixUp (Verma et al. 2019): lam = 1 is the plain forward, mixing at layer k is the mix of the two
hidden activations computed by hand, the draws' statistics, the fit-loop adapter, refusals."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.models import CNN, MLP, ResNet
from regularkit.models.manifold_mixup import ManifoldMixup, mixed_forward, mixing_stages
from regularkit.train import fit

K = 4


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def models():
    torch.manual_seed(0)
    return {"mlp": (MLP((1, 6, 6), K, widths=(10, 8)), (1, 6, 6)),
            "cnn": (CNN((2, 8, 8), K, channels=(3, 4), widths=(6,), batchnorm=True), (2, 8, 8)),
            "resnet": (ResNet((2, 8, 8), K, widths=(4, 6)), (2, 8, 8)),
            "sequential": (nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.Tanh(), nn.Linear(7, K)), (3, 4))}


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet", "sequential"])
def test_lam_one_is_the_plain_forward_at_every_layer(name):
    model, shape = models()[name]
    x, y = torch.randn(6, *shape, generator=gen(1)), torch.arange(6) % K
    wrapper = ManifoldMixup(model, num_classes=K).train()
    partner = torch.tensor([1, 2, 3, 4, 5, 0])
    for layer in wrapper.layers:
        params = {"layer": layer, "lam": torch.ones(6), "partner": partner}
        logits, targets = wrapper.apply(x, y, params)
        torch.testing.assert_close(logits, model(x), rtol=0, atol=0)
        assert torch.equal(targets, F.one_hot(y, K).float())
    assert wrapper.layers == tuple(range(len(mixing_stages(model))))


def test_alpha_to_zero_gives_each_sample_or_its_partner():
    model, shape = models()["sequential"]  # rows independent: a row's output is its own forward
    x, y = torch.randn(64, *shape, generator=gen(2)), torch.arange(64) % K
    wrapper = ManifoldMixup(model, 1e-5, num_classes=K, per_sample=True, seed=0).train()
    params = wrapper.make_params(x)
    lam = params["lam"]
    assert bool(((lam < 1e-6) | (lam > 1 - 1e-6)).all()) and (lam < 0.5).any() and (lam > 0.5).any()
    logits, targets = wrapper.apply(x, y, params)
    source = torch.where(lam > 0.5, torch.arange(64), params["partner"])
    torch.testing.assert_close(logits, model(x)[source], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(targets, F.one_hot(y[source], K).float(), rtol=0, atol=1e-5)


def test_mixing_at_a_hidden_layer_is_the_mix_of_the_hidden_activations_by_hand():
    torch.manual_seed(3)
    m = MLP((5,), K, widths=(6, 7))
    x, y = torch.randn(4, 5, generator=gen(3)), torch.tensor([0, 1, 2, 3])
    lam, partner = torch.tensor([0.7, 0.2, 0.5, 0.9]), torch.tensor([2, 0, 3, 1])
    l1, l2 = m.features[0], m.features[3]
    h1 = F.relu(F.linear(x, l1.weight, l1.bias))  # point 1: after the first hidden block
    mixed = lam[:, None] * h1 + (1 - lam[:, None]) * h1[partner]
    by_hand = F.linear(F.relu(F.linear(mixed, l2.weight, l2.bias)), m.head.weight, m.head.bias)
    wrapper = ManifoldMixup(m, num_classes=K)
    logits, targets = wrapper.apply(x, y, {"layer": 1, "lam": lam, "partner": partner})
    torch.testing.assert_close(logits, by_hand, rtol=1e-6, atol=1e-6)
    onehot = F.one_hot(y, K).float()
    torch.testing.assert_close(targets, lam[:, None] * onehot + (1 - lam[:, None]) * onehot[partner])
    # point 2: the head's input
    h2 = F.relu(F.linear(h1, l2.weight, l2.bias))
    mixed2 = lam[:, None] * h2 + (1 - lam[:, None]) * h2[partner]
    torch.testing.assert_close(wrapper.apply(x, y, {"layer": 2, "lam": lam, "partner": partner})[0],
                               F.linear(mixed2, m.head.weight, m.head.bias), rtol=1e-6, atol=1e-6)


def test_mixing_inside_a_resnet_is_the_mix_after_its_block():
    torch.manual_seed(4)
    m = ResNet((2, 8, 8), K, widths=(4, 6)).eval()
    x = torch.randn(3, 2, 8, 8, generator=gen(4))
    lam, partner = torch.tensor([0.3, 0.6, 0.8]), torch.tensor([1, 2, 0])
    h = m.blocks[0](m.stem(x))  # point 2: after the stem and the first block
    mixed = lam.view(-1, 1, 1, 1) * h + (1 - lam.view(-1, 1, 1, 1)) * h[partner]
    by_hand = m.head(m.pool(m.blocks[1](mixed)).flatten(1))
    got = mixed_forward(mixing_stages(m), x, {"layer": 2, "lam": lam, "partner": partner})
    torch.testing.assert_close(got, by_hand, rtol=1e-5, atol=1e-6)


def test_draws_layer_uniformly_and_lam_from_beta_per_batch():
    model, shape = models()["mlp"]
    wrapper = ManifoldMixup(model, 2.0, num_classes=K, layers=(0, 2), seed=5)
    x = torch.zeros(8, *shape)
    draws = [wrapper.make_params(x) for _ in range(2000)]
    layers = np.array([d["layer"] for d in draws])
    assert set(layers) == {0, 2} and abs(float((layers == 2).mean()) - 0.5) < 0.05  # 5 sigma at n = 2000
    lams = np.array([float(d["lam"][0]) for d in draws])
    assert all(bool((d["lam"] == d["lam"][0]).all()) for d in draws)  # one lam per batch (the paper's)
    # Beta(2, 2): mean 1/2, variance 1 / (4 (2 alpha + 1)) = 0.05
    assert abs(lams.mean() - 0.5) < 0.02 and abs(lams.var() - 0.05) < 0.006
    assert all(bool((d["partner"] != torch.arange(8)).all()) for d in draws[:50])  # nobody mixes with itself
    same = ManifoldMixup(model, 2.0, num_classes=K, layers=(0, 2), generator=gen(5)).make_params(x)
    first = ManifoldMixup(model, 2.0, num_classes=K, layers=(0, 2), seed=5).make_params(x)
    assert same["layer"] == first["layer"] and torch.equal(same["lam"], first["lam"])
    assert torch.equal(same["partner"], first["partner"])


def test_forward_modes_and_the_fit_adapter():
    model, shape = models()["cnn"]
    wrapper = ManifoldMixup(model, num_classes=K, seed=6)
    x, y = torch.randn(8, *shape, generator=gen(6)), torch.arange(8) % K
    logits, targets = wrapper.train()(x, y)
    assert logits.shape == (8, K) and targets.shape == (8, K)
    torch.testing.assert_close(targets.sum(1), torch.ones(8))
    assert torch.equal(wrapper.eval()(x), model.eval()(x))  # eval: the plain model, pending or not
    wrapper.train()
    xb, yb = wrapper.batch_transform(x, y, gen(7))
    params = wrapper._pending
    assert xb is x and torch.equal(yb, wrapper.mix_targets(y, params))
    expected = wrapper.apply(x, y, params)[0]
    torch.testing.assert_close(wrapper(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(wrapper(x), expected, rtol=0, atol=0)  # a second pass of the step mixes alike
    with pytest.raises(RegularkitError, match="drawn by batch_transform is for 8 samples, but the model got a "
                                              "batch of 3"):
        wrapper(x[:3])
    wrapper.train()  # a mode change forgets the draw
    assert wrapper._pending is None and torch.equal(wrapper(x[:3]), model(x[:3]))


def test_fit_trains_through_the_adapter_and_differs_from_plain_training():
    def run(mix: bool):
        torch.manual_seed(8)
        model = MLP((6,), 3, widths=(16,))
        net = ManifoldMixup(model, num_classes=3, seed=1) if mix else model
        x = torch.randn(64, 6, generator=gen(9))
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
        history = fit(net, (x, y), optimizer=torch.optim.SGD(net.parameters(), lr=0.1), epochs=3, batch_size=16,
                      batch_transform=net.batch_transform if mix else None, eval_sets={"train": (x, y)})
        return model, history
    mixed, h_mixed = run(True)
    plain, h_plain = run(False)
    assert np.isfinite(h_mixed.epochs[-1]["train_loss"])
    assert not torch.equal(mixed.head.weight, plain.head.weight)


def test_refusals_are_one_line():
    class Net(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(RegularkitError, match="manifold mixup cannot mix inside Net: it needs a model whose forward "
                                              "is a chain of stages"):
        ManifoldMixup(Net(), num_classes=K)
    with pytest.raises(RegularkitError, match="cannot mix inside Sequential"):
        ManifoldMixup(nn.Sequential(nn.Linear(2, 2)), num_classes=K)
    model, _ = models()["mlp"]
    with pytest.raises(RegularkitError, match=r"layers must be in \[0, 2\] \(MLP has 3 mixing points\), got 5"):
        ManifoldMixup(model, num_classes=K, layers=(0, 5))
    with pytest.raises(RegularkitError, match="alpha must be > 0, got 0"):
        ManifoldMixup(model, 0, num_classes=K)
    with pytest.raises(RegularkitError, match="layers must be a non-empty list of mixing points, got"):
        ManifoldMixup(model, num_classes=K, layers=())
    with pytest.raises(RegularkitError, match="mixes floating tensors, got dtype torch.int64 at layer 0"):
        mixed_forward(mixing_stages(model), torch.zeros(2, 36, dtype=torch.long),
                      {"layer": 0, "lam": torch.ones(2), "partner": torch.tensor([1, 0])})
    config = ManifoldMixup(model, 1.5, num_classes=K, layers=[1], seed=2).get_config()
    rebuilt = ManifoldMixup.from_config(config, model=model)
    assert rebuilt.get_config() == config and rebuilt.layers == (1,)
