"""Conformance of every registered averager (``regularkit.averaging.REGISTRY``).

For each: construction and updates never change the live model (and the
averagers that copy share no memory with it), config round trip (the model is
an argument, not config; the rest is JSON), pickling and deep copies and
``state_dict`` round trips continue identically, deterministic, the averaged
network keeps the model's dtype (float64 too) and device, no mutation of the input.
"""
import copy
import json
import pickle

import pytest
import torch
from _helpers.conformance_cases import AVERAGING_CASES as CASES
from _helpers.conformance_cases import DEVICES, assert_same_state, averaging_model, gen, params, require, state_of

import regularkit.averaging as AV


@pytest.fixture(params=params(AV.REGISTRY, CASES))
def entry(request):
    return require(request.param)


def perturb(model, g: torch.Generator) -> None:
    """An optimizer step, as far as an averager can tell: every weight moves."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g).to(p))


def feed(case, averager, model, steps: int, seed: int) -> None:
    g = gen(seed)
    for _ in range(steps):
        perturb(model, g)
        case.update(averager, model)


def output(case, averager, dtype=torch.float32, device="cpu") -> torch.Tensor:
    x = torch.randn(5, 3, generator=gen(9)).to(device=device, dtype=dtype)
    before = x.clone()
    with torch.no_grad():
        out = case.averaged(averager)(x)
    assert torch.equal(x, before)  # the input is not mutated
    return out


def test_construction_and_updates_leave_the_live_model_alone(entry):
    _, case = entry
    model = averaging_model()
    state = state_of(model)
    averager = case.build(model)
    assert_same_state(model, state)
    perturb(model, gen(1))
    state = state_of(model)
    case.update(averager, model)
    assert_same_state(model, state)
    live = {p.data_ptr() for p in model.parameters()}
    held = {p.data_ptr() for p in case.averaged(averager).parameters()}
    if case.copies:  # an average of its own: training the live model cannot reach it
        assert not live & held
    else:  # an ensemble holds its members themselves
        assert live <= held


def test_config_round_trip(entry):
    _, case = entry
    model = averaging_model()
    averager = case.build(model)
    config = averager.get_config()
    assert "model" not in config and "models" not in config  # the model is an argument, never config
    rebuilt = type(averager).from_config(json.loads(json.dumps(config)), case.target(averaging_model()))
    assert type(rebuilt) is type(averager) and rebuilt.get_config() == config
    feed(case, averager, model, 2, seed=3)
    twin = averaging_model()
    rebuilt = type(averager).from_config(config, case.target(twin))
    feed(case, rebuilt, twin, 2, seed=3)
    assert torch.equal(output(case, rebuilt), output(case, averager))


def test_pickle_and_deepcopy_continue_identically(entry):
    _, case = entry
    model = averaging_model()
    averager = case.build(model)
    feed(case, averager, model, 2, seed=4)
    for clone in (pickle.loads(pickle.dumps(averager)), copy.deepcopy(averager)):
        assert clone.get_config() == averager.get_config()
        assert torch.equal(output(case, clone), output(case, averager))
    clone = pickle.loads(pickle.dumps((averager, model)))
    feed(case, averager, model, 1, seed=5)
    feed(case, clone[0], clone[1], 1, seed=5)
    assert torch.equal(output(case, clone[0]), output(case, averager))


def test_state_dict_round_trip_continues_identically(entry):
    _, case = entry
    model = averaging_model()
    averager = case.build(model)
    feed(case, averager, model, 2, seed=6)
    other = averaging_model()
    resumed = type(averager).from_config(averager.get_config(), case.target(other))
    feed(case, resumed, other, 1, seed=7)  # a different history: only the loaded state can make it agree
    assert not torch.equal(output(case, resumed), output(case, averager))
    resumed.load_state_dict(averager.state_dict())
    assert torch.equal(output(case, resumed), output(case, averager))
    # the live model the resumed run goes on training: a copy of the saved one; an ensemble's is its own
    # member, which the state dict just loaded
    twin = copy.deepcopy(model) if case.copies else other
    feed(case, averager, model, 1, seed=8)
    feed(case, resumed, twin, 1, seed=8)
    assert torch.equal(output(case, resumed), output(case, averager))


def test_deterministic(entry):
    _, case = entry
    a_model, b_model = averaging_model(), averaging_model()
    a, b = case.build(a_model), case.build(b_model)
    feed(case, a, a_model, 3, seed=10)
    feed(case, b, b_model, 3, seed=10)
    assert torch.equal(output(case, a), output(case, b))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_the_averaged_network_keeps_dtype_and_device(entry, dtype, device):
    _, case = entry
    model = averaging_model().to(device=device, dtype=dtype)
    averager = case.build(model)
    feed(case, averager, model, 2, seed=11)
    averaged = case.averaged(averager)
    for name, p in averaged.named_parameters():
        assert p.dtype == dtype and p.device.type == device, name
    out = output(case, averager, dtype, device)
    assert out.dtype == dtype and out.device.type == device
    reference_model = averaging_model()
    reference = case.build(reference_model)
    feed(case, reference, reference_model, 2, seed=11)
    torch.testing.assert_close(out.cpu().float(), output(case, reference), rtol=1e-4, atol=1e-5)
