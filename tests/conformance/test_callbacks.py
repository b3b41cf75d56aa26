"""Conformance of every registered callback (``regularkit.train.callbacks.REGISTRY``, also ``regularkit.train``).

For each: a run it acts on ends with a decision that gives its reason, config
round trip (JSON, the registry's ``get``), ``state_dict`` round trips and
pickles taken mid-run continue identically (decisions and restored weights),
deterministic, ``on_train_begin`` starts a second run fresh, the model's weights
untouched until ``on_train_end`` and restored there with their dtype (float64
too) and device.
"""
import copy
import json
import pickle

import pytest
import torch
from _helpers.conformance_cases import CALLBACK_CASES as CASES
from _helpers.conformance_cases import DEVICES, assert_same_state, params, require, state_of
from torch import nn

import regularkit.train as T
import regularkit.train.callbacks as CB
from regularkit.errors import RegularkitError


@pytest.fixture(params=params(CB.REGISTRY, CASES))
def entry(request):
    return require(request.param)


def model(dtype=torch.float32, device="cpu") -> nn.Module:
    return nn.Linear(2, 1).to(device=device, dtype=dtype)


def epoch(callback, state: CB.TrainState, number: int, metrics: dict) -> CB.Decision:
    """One epoch: the weights remember the epoch they come from, then the callback decides."""
    state.epoch, state.metrics = number, dict(metrics)
    with torch.no_grad():
        state.model.weight.fill_(float(number))
    return callback.on_epoch_end(state)


def run(callback, metrics, state=None, start: int = 1):
    """Epochs ``start..`` until a stop; returns the decisions and the weights left after ``on_train_end``."""
    state = state or CB.TrainState(model=model())
    if start == 1:
        callback.on_train_begin(state)
    decisions = []
    for number, m in enumerate(metrics[start - 1:], start=start):
        decisions.append(epoch(callback, state, number, m))
        if decisions[-1].stop:
            break
    callback.on_train_end(state)
    return decisions, state.model.weight.detach().clone()


def test_a_run_ends_with_a_reasoned_decision(entry):
    _, case = entry
    decisions, _ = run(case.build(), case.metrics)
    assert all(isinstance(d, CB.Decision) and d.reason for d in decisions)
    assert decisions[-1].stop and len(decisions) < len(case.metrics)  # the case's run is one it stops


def test_config_round_trip(entry):
    name, case = entry
    callback = case.build()
    config = callback.get_config()
    expected = run(case.build(), case.metrics)
    for rebuilt in (type(callback).from_config(json.loads(json.dumps(config))),
                    CB.get({"class_name": name, "config": config}), T.REGISTRY[name].from_config(config)):
        assert type(rebuilt) is type(callback) and rebuilt.get_config() == config
        decisions, weights = run(rebuilt, case.metrics)
        assert decisions == expected[0] and torch.equal(weights, expected[1])
    assert CB.get(callback) is callback


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_state_dict_and_pickle_taken_mid_run_continue_identically(entry, cut):
    _, case = entry
    expected = run(case.build(), case.metrics)
    callback, state = case.build(), CB.TrainState(model=model())
    callback.on_train_begin(state)
    for number in range(1, cut + 1):
        assert not epoch(callback, state, number, case.metrics[number - 1]).stop
    resumed = case.build()
    resumed.load_state_dict(callback.state_dict())
    pickled, pickled_state = pickle.loads(pickle.dumps((callback, state)))
    for cb, st in ((resumed, copy.deepcopy(state)), (pickled, pickled_state), (callback, state)):
        decisions, weights = run(cb, case.metrics, st, start=cut + 1)
        assert expected[0][cut:] == decisions and torch.equal(weights, expected[1])


def test_deterministic_and_a_second_run_starts_fresh(entry):
    _, case = entry
    callback = case.build()
    first = run(callback, case.metrics)
    second = run(callback, case.metrics)  # on_train_begin resets
    assert first[0] == second[0] and torch.equal(first[1], second[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_weights_untouched_by_decisions_and_final_with_dtype_and_device(entry, dtype, device):
    _, case = entry
    callback, state = case.build(), CB.TrainState(model=model(dtype, device))
    callback.on_train_begin(state)
    for number, m in enumerate(case.metrics, start=1):
        state.epoch, state.metrics = number, dict(m)
        with torch.no_grad():
            state.model.weight.fill_(float(number))
        before = state_of(state.model)
        decision = callback.on_epoch_end(state)
        assert_same_state(state.model, before)  # deciding never touches the weights
        if decision.stop:
            break
    callback.on_train_end(state)
    w = state.model.weight
    assert w.dtype == dtype and w.device.type == device
    assert torch.equal(w.detach().cpu(), torch.full((1, 2), case.final_weight, dtype=dtype))


def test_get_by_name_builds_the_defaults(entry):
    name, _ = entry
    callback = CB.get(name)
    assert type(callback) is CB.REGISTRY[name] and callback.get_config() == CB.REGISTRY[name]().get_config()


def test_get_rejects_unknown_names_and_objects():
    with pytest.raises(RegularkitError, match="callback must be one of .*; got 'early_stop'"):
        CB.get("early_stop")
    with pytest.raises(RegularkitError, match="cannot build a callback from 5"):
        CB.get(5)
