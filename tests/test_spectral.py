"""Spectral normalization: each wrapped weight's largest singular value -> 1 (torch.linalg.matrix_norm(ord=2)),
the power iteration against a NumPy restatement, layer choice, exclusion, removal, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.models import CNN, MLP
from regularkit.spectral import apply_spectral_norm, remove_spectral_norm, spectral_norms


def sigma(w: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(w.detach().reshape(w.shape[0], -1).double(), ord=2))


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return CNN((1, 8, 8), 3, channels=(4, 6), widths=(10,))


def test_every_wrapped_weight_has_spectral_norm_one_after_enough_power_iterations():
    model = cnn()
    before = {n: sigma(m.weight) for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    assert all(abs(s - 1) > 0.05 for s in before.values())  # not already normalized: the test can fail
    names = apply_spectral_norm(model, n_power_iterations=1)
    assert sorted(names) == sorted(before) == ["conv.0", "conv.3", "features.0", "head"]
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    model.train()
    for _ in range(200):  # one power-iteration round per training forward
        model(x)
    model.eval()
    for name, module in model.named_modules():
        if name in names:
            assert sigma(module.weight) == pytest.approx(1.0, abs=1e-3), name
            # the raw weight is kept and the layer applies raw / sigma(raw)
            raw = module.parametrizations.weight.original
            torch.testing.assert_close(module.weight, raw / before[name], rtol=1e-3, atol=1e-6)
    assert spectral_norms(model) == pytest.approx({n: 1.0 for n in names}, abs=1e-3)


def numpy_power_iteration(w: np.ndarray, v: np.ndarray, rounds: int) -> float:
    """Miyato et al.'s Algorithm 1 restated, in torch's order (u from v, then v from u):
    u = W v / ||.||, v = W^T u / ||.||, then sigma = u^T W v."""
    for _ in range(rounds):
        u = w @ v
        u /= np.linalg.norm(u)
        v = w.T @ u
        v /= np.linalg.norm(v)
    return float(u @ w @ v)


def test_the_estimate_is_miyatos_power_iteration():
    torch.manual_seed(2)
    layer = nn.Linear(7, 5)
    w = layer.weight.detach().double().numpy().copy()
    apply_spectral_norm(nn.Sequential(layer), n_power_iterations=3)
    state = layer.parametrizations.weight[0]
    with torch.no_grad():  # restart from a fixed vector, far from converged: each round changes the estimate
        state._v.copy_(F.normalize(torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0, 0.2, 0.7]), dim=0))
    v0 = state._v.double().numpy().copy()
    applied = layer.train().weight.detach().double().numpy()  # every read in train mode runs three rounds
    assert abs(numpy_power_iteration(w, v0, 3) - numpy_power_iteration(w, v0, 1)) > 1e-4  # rounds matter
    np.testing.assert_allclose(applied, w / numpy_power_iteration(w, v0, 3), rtol=1e-5)
    np.testing.assert_allclose(layer.eval().weight.detach().double().numpy(), applied, rtol=1e-6)  # eval: no round


def test_layer_choice_exclusion_and_removal():
    torch.manual_seed(3)
    model = MLP((6,), 3, widths=(8, 8))
    assert apply_spectral_norm(model, "linear", exclude=("head",)) == ["features.0", "features.3"]
    assert "head" not in spectral_norms(model)
    assert "features.0.parametrizations.weight.original" in model.state_dict()
    x = torch.randn(4, 6)
    model.eval()
    out = model(x)
    assert remove_spectral_norm(model) == ["features.0", "features.3"]
    assert type(model.features[0]) is nn.Linear and spectral_norms(model) == {}
    torch.testing.assert_close(model(x), out)  # the normalized weights are baked in
    assert apply_spectral_norm(cnn(), [nn.Conv2d]) == ["conv.0", "conv.3"]


def test_errors_are_one_line():
    with pytest.raises(RegularkitError, match=r"no layer of MLP matches layers=\('conv',\)"):
        apply_spectral_norm(MLP((4,), 2, widths=(3,)), ["conv"])
    with pytest.raises(RegularkitError, match="layers must name layer types .*got 'dense'"):
        apply_spectral_norm(nn.Linear(2, 2), ["dense"])
    with pytest.raises(RegularkitError, match="n_power_iterations must be >= 1, got 0"):
        apply_spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    model = nn.Sequential(nn.Linear(2, 2))
    apply_spectral_norm(model)
    with pytest.raises(RegularkitError, match="layer '0' already has a parametrization"):
        apply_spectral_norm(model)
    with pytest.raises(RegularkitError, match="model must be a torch.nn.Module, got str"):
        apply_spectral_norm("mlp")
