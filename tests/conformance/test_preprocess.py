"""Conformance of every registered preprocessor (``regularkit.preprocess.REGISTRY``).

For each: fit on train only (held-out splits refused, by argument or by tag),
transform before fit refused or fitting changes nothing, config and state_dict
round trip (same output), pickling, deterministic fit and transform, dtype
(float32, float64, bfloat16) and device preserved, no mutation of the data.
"""
import pickle

import pytest
import torch
from _helpers.conformance_cases import DEVICES, params, require
from _helpers.conformance_cases import PREPROCESS_CASES as CASES

import regularkit.preprocess as PP
from regularkit.errors import RegularkitError


@pytest.fixture(params=params(PP.REGISTRY, CASES))
def entry(request):
    return require(request.param)


def fitted(case):
    x = case.data()
    return case.build().fit(x), x


def test_transform_changes_the_data_and_keeps_the_batch(entry):
    _, case = entry
    pre, x = fitted(case)
    out = pre.transform(x)
    assert out.shape[0] == x.shape[0] and out.dtype == x.dtype and torch.isfinite(out).all()
    assert out.shape != x.shape or not torch.allclose(out, x)


def test_unfitted_transform_is_refused_or_fitting_changes_nothing(entry):
    _, case = entry
    x = case.data()
    pre = case.build()
    if case.fits:
        with pytest.raises(RegularkitError, match=f"{type(pre).__name__} is not fitted: call fit"):
            pre.transform(x)
    else:  # nothing to learn (Rescale, samplewise Standardize): usable at once, and fit is a no-op
        before = pre.transform(x)
        assert torch.equal(pre.fit(x).transform(x), before)


def test_fit_refuses_held_out_data(entry):
    _, case = entry
    x = case.data()
    name = type(case.build()).__name__
    with pytest.raises(RegularkitError, match=f"{name}.fit refuses the 'test' split"):
        case.build().fit(x, split="test")
    held_out = PP.mark_split(x.clone(), "val")
    with pytest.raises(RegularkitError, match=f"{name}.fit refuses data marked as the 'val' split"):
        case.build().fit(held_out)


def test_config_and_state_dict_round_trip(entry):
    name, case = entry
    pre, x = fitted(case)
    config = pre.get_config()
    for cls in (type(pre), PP.REGISTRY[name]):
        rebuilt = cls(**config)
        assert repr(rebuilt) == repr(pre) and rebuilt.get_config() == config
        rebuilt.load_state_dict(pre.state_dict())  # fitted statistics are state, not config
        assert torch.equal(rebuilt.transform(x), pre.transform(x))


def test_pickle_round_trip(entry):
    _, case = entry
    pre, x = fitted(case)
    clone = pickle.loads(pickle.dumps(pre))
    assert clone.get_config() == pre.get_config()
    assert torch.equal(clone.transform(x), pre.transform(x))


def test_deterministic(entry):
    _, case = entry
    a, x = fitted(case)
    b, _ = fitted(case)
    assert a.state_dict().keys() == b.state_dict().keys()
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]) if isinstance(v, torch.Tensor) else v == b.state_dict()[k], k
    assert torch.equal(a.transform(x), b.transform(x))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-5), (torch.bfloat16, 0.1)])
def test_dtype_preserved(entry, dtype, tol):
    _, case = entry
    pre, x = fitted(case)
    out = pre.transform(x.to(dtype))
    assert out.dtype == dtype
    torch.testing.assert_close(out.float(), pre.transform(x), rtol=tol, atol=tol)


def test_statistics_do_not_depend_on_the_dtype_fitted_on(entry):
    _, case = entry
    pre, x = fitted(case)
    refit = case.build().fit(x.double())  # statistics are accumulated in float64 whatever the data's dtype
    torch.testing.assert_close(refit.transform(x), pre.transform(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_device_preserved(entry, device):
    _, case = entry
    pre, x = fitted(case)
    out = pre.transform(x.to(device))
    assert out.device.type == device
    torch.testing.assert_close(out.cpu(), pre.transform(x), rtol=1e-5, atol=1e-5)


def test_no_mutation_of_the_data(entry):
    _, case = entry
    x = case.data()
    before = x.clone()
    pre = case.build().fit(x)
    pre.transform(x)
    pre.fit_transform(x)
    assert torch.equal(x, before)
