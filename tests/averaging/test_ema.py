"""EMA: the closed-form weighted sum, warm-up, buffers, state_dict and pickling."""
import copy
import pickle

import pytest
import torch
from torch import nn

from regularkit.averaging import EMA, ema_decay, ema_update_
from regularkit.errors import RegularkitError


def _set_weights(model: nn.Module, g: torch.Generator) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_slide_defaults():
    ema = EMA(nn.Linear(2, 2))
    assert ema.decay == 0.995 and ema.current_decay() == 0.995  # w_test = 0.995 w_test + 0.005 w


def test_after_n_steps_equals_closed_form():
    torch.manual_seed(0)
    d, n = 0.9, 7
    model = nn.Linear(3, 2).double()
    g = torch.Generator().manual_seed(1)
    history = [_set_weights(model, g)]          # w_0: the copy taken at construction
    ema = EMA(model, decay=d)
    for _ in range(n):
        history.append(_set_weights(model, g))  # w_k, as after an optimizer step
        ema.update(model)
    for name, avg in ema.module.state_dict().items():
        # w_n = d^n w_0 + sum_k (1 - d) d^(n - k) w_k
        expected = d ** n * history[0][name] + sum((1 - d) * d ** (n - k) * history[k][name] for k in range(1, n + 1))
        assert torch.allclose(avg, expected, rtol=1e-12, atol=1e-12), name
    assert ema.num_updates == n


def test_warmup_decay_schedule():
    assert ema_decay(0, 0.995, warmup=True) == pytest.approx(0.1)        # (1 + 0) / (10 + 0)
    assert ema_decay(1, 0.995, warmup=True) == pytest.approx(2 / 11)
    assert ema_decay(1789, 0.995, warmup=True) < 0.995
    assert ema_decay(1790, 0.995, warmup=True) == pytest.approx(0.995)   # (10 d - 1) / (1 - d)
    assert ema_decay(10**6, 0.995, warmup=True) == 0.995
    assert ema_decay(0, 0.995, warmup=False) == 0.995


def test_warmup_forgets_the_initial_weights_fast():
    model = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.99, warmup=True)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # decay 0.1: 0.1 * 0 + 0.9 * 1
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.9, dtype=torch.float64))
    ema.update(model)  # decay 2/11
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 1 - 0.1 * 2 / 11, dtype=torch.float64))


def _bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


@pytest.mark.parametrize("mode", ["copy", "average"])
def test_buffers_are_handled_explicitly(mode):
    model = _bn_model()
    ema = EMA(model, decay=0.8, buffers=mode)
    bn = model[1]
    with torch.no_grad():
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(3.0)
        bn.num_batches_tracked.fill_(5)
    ema.update(model)
    avg_bn = ema.module[1]
    if mode == "copy":
        assert torch.equal(avg_bn.running_mean, bn.running_mean)
        assert torch.equal(avg_bn.running_var, bn.running_var)
    else:  # 0.8 * initial (0 mean, 1 var) + 0.2 * live
        assert torch.allclose(avg_bn.running_mean, torch.full((4,), 0.2))
        assert torch.allclose(avg_bn.running_var, torch.full((4,), 0.8 + 0.6))
    assert avg_bn.num_batches_tracked.item() == 5  # an integer buffer is always copied


def test_average_is_an_eval_copy_that_training_does_not_touch():
    model = _bn_model()
    ema = EMA(model, decay=0.5)
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    before = copy.deepcopy(ema.module.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    model(x).square().mean().backward()
    opt.step()
    for k, v in ema.module.state_dict().items():
        assert torch.equal(v, before[k])  # nothing shared with the live model
    ema.update(model)
    w = model[0].weight.detach()
    assert torch.allclose(ema.module[0].weight, 0.5 * before["0.weight"] + 0.5 * w)


def test_state_dict_round_trip_continues_exactly():
    model = _bn_model()
    g = torch.Generator().manual_seed(2)
    ema = EMA(model, decay=0.9, warmup=True)
    for _ in range(3):
        _set_weights(model, g)
        ema.update(model)
    resumed = EMA(_bn_model(), decay=0.9, warmup=True)
    resumed.load_state_dict(ema.state_dict())
    assert resumed.num_updates == 3
    _set_weights(model, g)
    ema.update(model)
    resumed.update(model)
    for (k, a), b in zip(ema.module.state_dict().items(), resumed.module.state_dict().values()):
        assert torch.equal(a, b), k


def test_pickle_round_trip():
    model = _bn_model()
    ema = EMA(model, decay=0.7, buffers="average")
    ema.update(model)
    clone = pickle.loads(pickle.dumps(ema))
    assert clone.num_updates == 1 and clone.decay == 0.7 and clone.buffers == "average"
    x = torch.randn(5, 3)
    assert torch.equal(clone.module(x), ema.module(x))


def test_device_argument_keeps_the_copy_there():
    ema = EMA(nn.Linear(2, 2), device="cpu")
    assert ema.module.weight.device.type == "cpu"


@pytest.mark.parametrize("call, message", [
    (lambda: EMA(nn.Linear(2, 2), decay=1.5), r"decay must be in \[0.0, 1.0\], got 1.5"),
    (lambda: EMA(nn.Linear(2, 2), buffers="mean"), r"buffers must be one of 'copy', 'average'; got 'mean'"),
    (lambda: EMA(nn.Linear(2, 2), warmup="yes"), r"warmup must be True or False, got 'yes'"),
    (lambda: EMA("model"), r"model must be a torch.nn.Module, got str"),
    (lambda: EMA(nn.Linear(2, 2)).update(nn.Linear(2, 2, bias=False)), r"parameter 'bias' is in one but not the other"),
    (lambda: ema_update_(nn.Linear(2, 2), nn.Linear(2, 2), -0.1), r"decay must be in \[0.0, 1.0\], got -0.1"),
])
def test_errors_name_the_value(call, message):
    with pytest.raises(RegularkitError, match=message):
        call()
