"""Conformance of every registered penalty (``regularkit.penalties.REGISTRY``).

For each: a positive scalar whose gradient reaches the weights (and, for weight
penalties, never biases or normalisation parameters), zero weights give zero,
config round trip (the registry's ``get``; JSON for weight penalties, whose
module types are stored by name), pickling with identical values, the same
value twice (deterministic), dtype (float32, float64, bfloat16) and device of
the model preserved, no mutation of the model.
"""
import json
import pickle

import pytest
import torch
from _helpers.conformance_cases import DEVICES, assert_same_state, gen, params, penalty_model, require, state_of
from _helpers.conformance_cases import PENALTY_CASES as CASES

import regularkit.penalties as P


@pytest.fixture(params=params(P.REGISTRY, CASES))
def entry(request):
    return require(request.param)


def x_for(model) -> torch.Tensor:
    weight = model[0].weight
    return torch.randn(5, 6, generator=gen(0)).to(device=weight.device, dtype=weight.dtype)


def value(penalty, model) -> torch.Tensor:
    """The penalty for one training batch: activity penalties record during the forward, weight ones ignore it."""
    model.train()(x_for(model))
    return penalty(model)


def release(penalty) -> None:
    """An activity penalty keeps hooks on the model's modules: take them off before another one watches them."""
    if isinstance(penalty, P.ActivityPenalty):
        penalty.detach()


def test_positive_scalar_with_gradients_on_the_weights(entry):
    _, case = entry
    m = penalty_model()
    penalty = case.build(m)
    v = value(penalty, m)
    assert v.ndim == 0 and v.item() > 0
    m.zero_grad()
    v.backward()
    assert m[0].weight.grad is not None and m[0].weight.grad.abs().sum() > 0
    if case.weights_only:
        assert m[3].weight.grad is not None and m[3].weight.grad.abs().sum() > 0
        # biases and normalisation parameters are never penalised by default
        assert m[0].bias.grad is None and m[1].weight.grad is None and m[1].bias.grad is None


def test_zero_weights_give_zero(entry):
    _, case = entry
    m = penalty_model()
    penalty = case.build(m)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
    assert value(penalty, m).item() == 0.0


def test_config_round_trip_gives_the_same_value(entry):
    name, case = entry
    m = penalty_model()
    penalty = case.build(m)
    expected = value(penalty, m)
    config = penalty.get_config()
    release(penalty)
    rebuilt = type(penalty).from_config(config)
    assert type(rebuilt) is type(penalty) and repr(rebuilt) == repr(penalty)
    assert torch.equal(value(rebuilt, m), expected)
    release(rebuilt)
    got = P.get({"class_name": name, "config": config})
    assert type(got) is type(penalty) and torch.equal(value(got, m), expected)
    assert P.get(got) is got
    if case.weights_only:  # module types by name: the config is JSON
        assert rebuilt == penalty
        assert type(penalty).from_config(json.loads(json.dumps(config))) == penalty


def test_pickle_round_trip_gives_the_same_value(entry):
    _, case = entry
    m = penalty_model()
    penalty = case.build(m)
    # pickled with its model, as in a checkpoint: the copy watches the copied model
    m2, clone = pickle.loads(pickle.dumps((m, penalty)))
    assert torch.equal(value(clone, m2), value(penalty, m))
    assert repr(clone) == repr(penalty)
    if case.weights_only:  # a weight penalty alone: the same value on the same model
        alone = pickle.loads(pickle.dumps(penalty))
        assert alone == penalty and torch.equal(alone(m), penalty(m))


def test_deterministic(entry):
    _, case = entry
    m = penalty_model()
    penalty = case.build(m)
    assert torch.equal(value(penalty, m), value(penalty, m))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-5), (torch.bfloat16, 2e-2)])
def test_dtype_preserved(entry, dtype, tol):
    _, case = entry
    m = penalty_model()
    reference = value(case.build(m), m)
    m = penalty_model().to(dtype)
    v = value(case.build(m), m)
    assert v.dtype == dtype
    torch.testing.assert_close(v.float(), reference, rtol=tol, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_device_preserved(entry, device):
    _, case = entry
    m = penalty_model().to(device)
    v = value(case.build(m), m)
    assert v.device.type == device


def test_no_mutation_of_the_model(entry):
    _, case = entry
    m = penalty_model()
    penalty = case.build(m)
    m.train()(x_for(m))
    state = state_of(m)
    v = penalty(m)
    v.backward()
    assert_same_state(m, state)  # a penalty reads the weights; only the optimizer changes them
