"""Optimizer groups, schedules, and recipe validation messages."""

import math

import pytest
import torch
from _helpers.penalties import lstm_model, timm_decayed
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.train import (
    OptimConfig,
    decoupled_weight_decay,
    make_optimizer,
    param_groups,
)
from regularkit.train.optim import schedule_factor


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def test_param_groups_exclude_biases_and_norm_parameters():
    m = model()
    decay, no_decay = param_groups(m, 0.1)
    assert {id(p) for p in decay["params"]} == {id(m[0].weight), id(m[3].weight)}
    assert {id(p) for p in no_decay["params"]} == {id(m[0].bias), id(m[1].weight), id(m[1].bias), id(m[3].bias)}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0


def test_param_groups_decay_embeddings_and_recurrent_weights():
    m = lstm_model()
    m["head"].requires_grad_(False)
    decay, no_decay = param_groups(m, 0.1)
    names = {id(p): n for n, p in m.named_parameters()}
    assert {names[id(p)] for p in decay["params"]} == timm_decayed(m)  # embed, LSTM and GRU matrices
    assert "embed.weight" in timm_decayed(m) and "head.weight" not in timm_decayed(m)  # frozen: in no group
    assert {names[id(p)] for p in no_decay["params"]} == {n for n, p in m.named_parameters()
                                                          if p.requires_grad and p.ndim == 1}
    (only,) = param_groups(nn.LayerNorm(3), 0.1)  # no weight at all: one group, without decay
    assert only["weight_decay"] == 0.0 and len(only["params"]) == 2


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_decoupled_decay_shrinks_weights_only(name):
    """With a zero gradient, one step scales weights by (1 - lr*wd) and leaves biases alone."""
    m = model()
    cfg = OptimConfig(optimizer=name, lr=0.1, momentum=0.0, weight_decay=0.5)
    opt = make_optimizer(m, cfg)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in m.named_parameters():
        expected = before[n] * (1 - 0.1 * 0.5) if p.ndim >= 2 else before[n]
        assert torch.allclose(p, expected, atol=1e-7), n


def test_schedules():
    step = OptimConfig(schedule="step", step_size=3, gamma=0.5, epochs=10)
    assert [schedule_factor(step, e) for e in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    cos = OptimConfig(schedule="cosine", epochs=4)
    assert [schedule_factor(cos, e) for e in range(5)] == pytest.approx(
        [0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(5)])
    assert schedule_factor(OptimConfig(), 99) == 1.0


def random_grads(params, step):
    g = torch.Generator().manual_seed(100 + step)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)


def test_adam_with_decoupled_decay_is_adamw_bit_for_bit():
    """Loshchilov & Hutter's AdamW = Adam (no coupled decay) + w <- w - lr*wd*w on the pre-step weights; five
    steps under a changing learning rate, weights only (biases in the optimizer, not decayed)."""
    a, b = model(), model()
    b.load_state_dict(a.state_dict())
    wd = 0.3
    wa = [m.weight for m in a if isinstance(m, nn.Linear)]
    adamw = torch.optim.AdamW([{"params": wa, "weight_decay": wd},
                               {"params": [p for p in a.parameters() if all(p is not w for w in wa)],
                                "weight_decay": 0.0}], lr=0.05)
    adam = torch.optim.Adam(b.parameters(), lr=0.05)
    decoupled_weight_decay(adam, [m.weight for m in b if isinstance(m, nn.Linear)], wd)
    schedules = [torch.optim.lr_scheduler.StepLR(o, 1, gamma=0.5) for o in (adamw, adam)]
    for step in range(5):
        for m, opt in ((a, adamw), (b, adam)):
            random_grads(list(m.parameters()), step)
            opt.step()
        for s in schedules:
            s.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_with_decoupled_decay_is_the_sgdw_formula_on_pre_step_weights(nesterov):
    """SGDW, torch's momentum convention, float64: buf <- mu buf + g, u = buf (or g + mu buf),
    w <- w - lr u - lr wd w; decaying after the step instead is off by lr^2 wd u; handle.remove() ends it."""
    m = model().double()
    w = m[0].weight
    lr, mu, wd = 0.1, 0.9, 0.5
    opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=mu, nesterov=nesterov)
    handle = decoupled_weight_decay(opt, [w], wd)
    expected, buf = w.detach().clone(), None
    for step in range(4):
        random_grads(list(m.parameters()), step)
        g = w.grad.clone()
        buf = g if buf is None else mu * buf + g
        u = g + mu * buf if nesterov else buf
        after_step = (1 - lr * wd) * (expected - lr * u)
        expected = expected - lr * u - lr * wd * expected
        opt.step()
        torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=1e-14)
        assert (after_step - expected).abs().max() == pytest.approx(float((lr ** 2 * wd * u).abs().max()),
                                                                     rel=1e-9)
    handle.remove()
    random_grads(list(m.parameters()), 9)
    g = w.grad.clone()
    buf = mu * buf + g
    before = w.detach().clone()
    opt.step()
    torch.testing.assert_close(w.detach(), before - lr * (g + mu * buf if nesterov else buf), rtol=1e-12, atol=1e-14)


def test_decoupled_decay_is_skipped_with_a_step_the_scaler_skips():
    m = model()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    decoupled_weight_decay(opt, [m[0].weight], 0.5)
    scaler = torch.amp.GradScaler("cpu")
    before = m[0].weight.detach().clone()
    loss = m(torch.randn(4, 4)).sum()
    scaler.scale(loss).backward()
    m[0].weight.grad[0, 0] = float("inf")
    scaler.step(opt)
    assert torch.equal(m[0].weight, before)


def test_decoupled_decay_bad_arguments():
    m = model()
    opt = torch.optim.SGD(m[0].parameters(), lr=0.1)
    with pytest.raises(RegularkitError, match=r"params holds 1 tensor\(s\) the optimizer does not update"):
        decoupled_weight_decay(opt, [m[0].weight, m[3].weight], 0.1)
    with pytest.raises(RegularkitError, match=r"weight_decay must be >= 0, got -0.1"):
        decoupled_weight_decay(opt, [m[0].weight], -0.1)
    with pytest.raises(RegularkitError, match=r"params must be a list of parameters, got a Parameter"):
        decoupled_weight_decay(opt, m[0].weight, 0.1)
    with pytest.raises(RegularkitError, match=r"optimizer must be a torch.optim.Optimizer, got 'sgd'"):
        decoupled_weight_decay("sgd", [m[0].weight], 0.1)
