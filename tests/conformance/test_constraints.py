"""Conformance of every registered constraint (``regularkit.constraints.REGISTRY``).

For each: a projection (shape kept, applying it twice changes nothing),
``project`` leaves a model's weights on the set, config round trip (equality,
JSON, the registry's ``get``), pickling, deterministic, dtype (float32,
float64, bfloat16) and device preserved, no mutation of the input.
"""
import json
import pickle

import pytest
import torch
from _helpers.conformance_cases import CONSTRAINT_CASES as CASES
from _helpers.conformance_cases import DEVICES, gen, params, penalty_model, require

import regularkit.constraints as C


@pytest.fixture(params=params(C.REGISTRY, CASES))
def entry(request):
    return require(request.param)


def weight(dtype=torch.float32, device="cpu") -> torch.Tensor:
    return (torch.randn(5, 4, generator=gen(0)) * 3).to(device=device, dtype=dtype)


def test_a_projection(entry):
    _, case = entry
    constraint = case()
    w = weight()
    once = constraint(w)
    assert once.shape == w.shape
    assert not torch.equal(once, w)  # the test weight is off the set
    torch.testing.assert_close(constraint(once), once, atol=1e-5, rtol=0)  # applying twice changes nothing


def test_project_leaves_the_model_on_the_set(entry):
    _, case = entry
    constraint = case()
    m = penalty_model()
    names = C.project(m, constraint)
    assert names == ["0.weight", "3.weight"]
    for n, p in m.named_parameters():
        if n in names:
            torch.testing.assert_close(constraint(p.detach()), p.detach(), atol=1e-5, rtol=0)


def test_config_and_pickle_round_trip(entry):
    name, case = entry
    constraint = case()
    config = constraint.get_config()
    assert pickle.loads(pickle.dumps(constraint)) == constraint
    assert type(constraint).from_config(config) == constraint
    assert type(constraint).from_config(json.loads(json.dumps(config))) == constraint
    assert C.get({"class_name": name, "config": config}) == constraint
    assert C.get(constraint) is constraint
    w = weight()
    assert torch.equal(pickle.loads(pickle.dumps(constraint))(w), constraint(w))


def test_deterministic(entry):
    _, case = entry
    w = weight()
    assert torch.equal(case()(w), case()(w))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-5), (torch.bfloat16, 5e-2)])
def test_dtype_preserved(entry, dtype, tol):
    _, case = entry
    constraint = case()
    out = constraint(weight(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), constraint(weight()), rtol=tol, atol=tol)


@pytest.mark.parametrize("device", DEVICES)
def test_device_preserved(entry, device):
    _, case = entry
    assert case()(weight(device=device)).device.type == device


def test_no_mutation_of_the_input(entry):
    _, case = entry
    w = weight()
    before = w.clone()
    case()(w)
    assert torch.equal(w, before)  # a new tensor; only project() writes, and only into the parameter
