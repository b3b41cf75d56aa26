"""Optimizer groups, schedules, and recipe validation messages."""

import math

import pytest
import torch
from _helpers.penalties import lstm_model, timm_decayed
from torch import nn

from regularkit.train import (
    OptimConfig,
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
