"""Conformance of every registered noise layer (``regularkit.noise.REGISTRY``).

For each: train mode draws noise and eval mode applies the test-time rule
(the identity for the inverted layers), same seed same masks and another seed
others, ``generator=`` equivalent to ``seed=``, config round trip (JSON, the
registry's ``get``; a generator is not config), pickling and deep copies
continue the same stream, dtype (float32, float64, bfloat16: the masks do not
depend on it) and device preserved, no mutation of the input or the weights.
"""
import copy
import inspect
import json
import pickle

import pytest
import torch
from _helpers.conformance_cases import DEVICES, assert_same_state, gen, params, require, state_of
from _helpers.conformance_cases import NOISE_CASES as CASES

import regularkit.noise as N
from regularkit.errors import RegularkitError


@pytest.fixture(params=params(N.REGISTRY, CASES))
def entry(request):
    return require(request.param)


def test_train_draws_noise_and_eval_applies_the_test_time_rule(entry):
    _, case = entry
    layer, x = case.make(seed=0), case.x()
    out = layer.train()(x)
    assert out.shape == case.eval_output(layer, x).shape
    assert not torch.equal(out, case.eval_output(layer, x))  # noise was drawn
    layer.eval()
    first = layer(x)
    torch.testing.assert_close(first, case.eval_output(layer, x), rtol=0, atol=0)
    assert torch.equal(layer(x), first)  # eval is deterministic


def test_same_seed_same_output_other_seed_other_output(entry):
    _, case = entry
    x = case.x()
    a, b, c = case.make(seed=1), case.make(seed=1), case.make(seed=2)
    first = a(x)
    assert torch.equal(first, b(x))
    assert not torch.equal(first, c(x))
    assert not torch.equal(a(x), first)  # a fresh mask at every forward
    assert torch.equal(case.make(generator=gen(1))(x), first)  # a seeded generator is the same stream


def test_config_round_trip_gives_the_same_masks(entry):
    name, case = entry
    layer, x = case.make(seed=3), case.x()
    config = layer.get_config()
    assert config["seed"] == 3 and "generator" not in config
    for rebuilt in (type(layer).from_config(json.loads(json.dumps(config))),  # numbers and names only
                    N.get({"class_name": name, "config": config})):
        assert type(rebuilt) is type(layer)
        assert rebuilt.get_config() == config and repr(rebuilt) == repr(layer)
        rebuilt.load_state_dict(layer.state_dict())  # weights are state, not config
        torch.testing.assert_close(rebuilt(x), copy.deepcopy(layer)(x), rtol=0, atol=0)
    assert N.get(layer) is layer


def test_a_generator_is_not_config(entry):
    _, case = entry
    layer = case.make(generator=gen(4))
    config = layer.get_config()
    assert config["seed"] is None and "generator" not in config
    rebuilt = type(layer).from_config(config)
    assert rebuilt.seed is None and rebuilt.generator is None  # draws from the global RNG


def test_pickle_and_deepcopy_continue_the_same_stream(entry):
    _, case = entry
    layer, x = case.make(seed=5), case.x()
    layer(x)  # the private generator exists and has advanced
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
        torch.testing.assert_close(clone(x), copy.deepcopy(layer)(x), rtol=0, atol=0)
    clone = pickle.loads(pickle.dumps(layer))
    assert torch.equal(clone(x), layer(x)) and torch.equal(clone(x), layer(x))  # in step, twice


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 0.0), (torch.float64, 1e-5), (torch.bfloat16, 0.1)])
def test_dtype_preserved_and_masks_independent_of_it(entry, dtype, tol):
    _, case = entry
    x = case.x()
    reference = case.make(seed=6)(x)
    layer = case.make(seed=6).to(dtype)  # weights (if any) follow the data's dtype
    out = layer(x.to(dtype))
    assert out.dtype == dtype
    # noise is drawn in float32 whatever the dtype: the same masks, up to the dtype's rounding
    torch.testing.assert_close(out.float(), reference, rtol=tol, atol=tol)
    assert layer.eval()(x.to(dtype)).dtype == dtype


@pytest.mark.parametrize("device", DEVICES)
def test_device_preserved(entry, device):
    _, case = entry
    layer, x = case.make(seed=7).to(device), case.x().to(device)
    assert layer(x).device.type == device
    assert layer.generator.device.type == device  # the seeded generator lives where the data does
    assert layer.eval()(x).device.type == device


@pytest.mark.parametrize("training", [True, False])
def test_no_mutation_of_the_input_or_the_weights(entry, training):
    _, case = entry
    layer, x = case.make(seed=8).train(training), case.x()
    x_before, state = x.clone(), state_of(layer)
    layer(x)
    assert torch.equal(x, x_before)
    assert_same_state(layer, state)  # a weight mask is applied to a copy, never written back


def test_get_by_name_builds_defaults_or_names_the_missing_arguments(entry):
    name, _ = entry
    cls = N.REGISTRY[name]
    required = [n for n, p in inspect.signature(cls.__init__).parameters.items()
                if n != "self" and p.default is p.empty]
    if required:
        with pytest.raises(RegularkitError, match=f"noise layer '{name}' needs {', '.join(required)}"):
            N.get(name)
    else:
        layer = N.get(name)
        assert type(layer) is cls and layer.get_config() == cls().get_config()


def test_get_rejects_unknown_names_and_objects():
    with pytest.raises(RegularkitError, match="noise layer must be one of .*; got 'drop_out'"):
        N.get("drop_out")
    with pytest.raises(RegularkitError, match="cannot build a noise layer from 0.5"):
        N.get(0.5)
