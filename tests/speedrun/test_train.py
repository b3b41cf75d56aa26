"""One seed end to end on tiny data: it learns, it is reproducible, and every ablation switch removes its technique."""
import math

import pytest
import torch
from torch import nn

from regularkit.penalties import decay_param_groups
from regularkit.speedrun import train as train_module
from regularkit.speedrun.config import SpeedrunConfig
from regularkit.speedrun.train import build_model, lr_factor, train_seed


def run(cfg, splits, seed=0, **kw):
    torch.set_num_threads(1)
    return train_seed(cfg, splits, seed, **kw)


def test_a_tiny_run_learns_and_records_its_curve(tiny_cfg, splits):
    result = run(tiny_cfg, splits)
    assert result.test_accuracy > 0.3 and result.val_accuracy > 0.3     # chance is 0.1
    assert [p["epoch"] for p in result.curve] == [1, 2]
    assert result.curve[0]["seconds"] < result.curve[1]["seconds"] <= result.wall_seconds
    assert result.epochs == 2 and result.train_seconds <= result.wall_seconds


def test_same_seed_same_result_other_seed_other_result(tiny_cfg, splits):
    a, b, c = run(tiny_cfg, splits, 0), run(tiny_cfg, splits, 0), run(tiny_cfg, splits, 1)
    assert (a.test_accuracy, a.val_accuracy) == (b.test_accuracy, b.val_accuracy)
    assert [p["val_accuracy"] for p in a.curve] == [p["val_accuracy"] for p in b.curve]
    model_a, model_c = (build_model(tiny_cfg, splits) for _ in range(2))
    assert torch.equal(model_a.whiten.weight, model_c.whiten.weight)   # whitening is fitted, not drawn
    assert (a.test_accuracy, a.curve[0]["val_accuracy"]) != (c.test_accuracy, c.curve[0]["val_accuracy"])


def test_lr_factor_rises_then_falls_to_zero():
    values = [lr_factor(s, 100, 0.2) for s in range(100)]
    assert values[0] == pytest.approx(0.05) and values[19] == 1.0 and values[-1] == 0.0
    assert all(a <= b for a, b in zip(values[:20], values[1:20])) and all(a >= b for a, b in zip(values[19:], values[20:]))


@pytest.fixture
def spies(monkeypatch):
    seen = {"ema": 0, "decay": 0, "smoothing": set(), "eval_images": 0, "decayed": []}
    real_ema, real_decay, real_ce = train_module.EMA, train_module.decoupled_weight_decay, train_module.cross_entropy

    def ema(*a, **k):
        seen["ema"] += 1
        return real_ema(*a, **k)

    def decay(optimizer, params, wd):
        handle = real_decay(optimizer, params, wd)
        hook = optimizer._optimizer_step_pre_hooks[handle.id]

        def counted(*args):
            seen["decay"] += 1
            return hook(*args)

        optimizer._optimizer_step_pre_hooks[handle.id] = counted
        seen["decayed"].append((list(params), wd))
        return handle

    def ce(logits, y, label_smoothing=0.0, **k):
        seen["smoothing"].add(label_smoothing)
        return real_ce(logits, y, label_smoothing=label_smoothing, **k)

    monkeypatch.setattr(train_module, "EMA", ema)
    monkeypatch.setattr(train_module, "decoupled_weight_decay", decay)
    monkeypatch.setattr(train_module, "cross_entropy", ce)
    return seen


@pytest.mark.parametrize("removed", [(), ("ema",), ("decay",), ("smoothing",), ("unregularized",)])
def test_ablation_switches_remove_their_technique(tiny_cfg, splits, spies, removed):
    cfg = SpeedrunConfig(**{**tiny_cfg.__dict__, "without": removed})
    run(cfg, splits)
    assert (spies["ema"] > 0) == cfg.uses("ema")
    assert (spies["decay"] > 0) == cfg.uses("decay")
    assert spies["smoothing"] == {cfg.label_smoothing if cfg.uses("smoothing") else 0.0}


def test_whiten_and_bn_switches_change_the_network(tiny_cfg, splits):
    full = build_model(tiny_cfg, splits)
    plain = build_model(SpeedrunConfig(**{**tiny_cfg.__dict__, "without": ("whiten", "bn")}), splits)
    assert full.whiten.fitted and not full.whiten.weight.requires_grad
    assert not plain.whiten.fitted and plain.whiten.weight.requires_grad
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())


def test_diverged_run_reports_nan_not_a_crash(tiny_cfg, splits):
    result = run(SpeedrunConfig(**{**tiny_cfg.__dict__, "lr": 1e12, "without": ("bn",)}), splits)
    assert math.isnan(result.test_accuracy)


def test_decay_is_the_library_decoupled_decay_on_kernels_only_once_per_step(tiny_cfg, splits, spies):
    """SGDW (Loshchilov & Hutter 2019) through regularkit.train.optim: the kernels of the run's model, its wd,
    one decay per optimizer step (2 epochs of 512 / 32 = 16 steps)."""
    run(tiny_cfg, splits)
    ((params, wd),) = spies["decayed"]
    assert wd == tiny_cfg.weight_decay and spies["decay"] == 2 * math.ceil(512 / tiny_cfg.batch_size)
    assert params and all(p.ndim >= 2 for p in params)
    model = build_model(tiny_cfg, splits)
    expected = decay_param_groups(model, wd)[0]["params"]
    assert [tuple(p.shape) for p in params] == [tuple(p.shape) for p in expected]
    conv_bn = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3, 2))
    assert {id(p) for p in decay_param_groups(conv_bn, 0.5)[0]["params"]} == {id(conv_bn[0].weight),
                                                                              id(conv_bn[3].weight)}
