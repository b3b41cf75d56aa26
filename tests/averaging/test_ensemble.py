"""Ensemble: averaged probabilities / logits, from state dicts, shapes, pickling."""
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from regularkit.averaging import Ensemble, average_outputs
from regularkit.errors import RegularkitError


def _seeded(seed: int, k: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, k))


def test_probs_logits_and_log_outputs():
    models = [_seeded(s) for s in range(3)]  # independently seeded members
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(9))
    outs = [m(x) for m in models]
    probs = torch.stack([o.softmax(1) for o in outs]).mean(0)
    assert torch.allclose(Ensemble(models)(x), probs)
    assert torch.allclose(Ensemble(models, "logits")(x), torch.stack(outs).mean(0))
    log_out = Ensemble(models, log=True)(x)
    assert torch.allclose(log_out.exp(), probs, atol=1e-6)
    # usable as logits: softmax gives the averaged probabilities back
    assert torch.allclose(log_out.log_softmax(1), log_out, atol=1e-6)


def test_from_state_dicts_builds_members_with_those_weights():
    sources = [_seeded(s) for s in (10, 11)]  # e.g. the top-2 runs of a study
    ens = Ensemble.from_state_dicts(lambda: _seeded(0), [m.state_dict() for m in sources], average="logits")
    x = torch.randn(3, 4)
    assert torch.allclose(ens(x), (sources[0](x) + sources[1](x)) / 2)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(2, 5), members=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_averaged_probabilities_are_distributions(n, k, members, seed):
    g = torch.Generator().manual_seed(seed)
    outs = [torch.randn(n, k, generator=g) for _ in range(members)]
    p = average_outputs(outs)
    assert p.shape == (n, k)
    assert torch.allclose(p.sum(1), torch.ones(n), atol=1e-5)
    assert average_outputs(outs, "logits").shape == (n, k)


def test_pickle_round_trip():
    ens = Ensemble([_seeded(1), _seeded(2)], "probs")
    clone = pickle.loads(pickle.dumps(ens))
    x = torch.randn(2, 4)
    assert torch.equal(clone(x), ens(x)) and clone.average == "probs"


def test_wrapped_members_are_held_bare_and_never_copied():
    models = [_seeded(1), _seeded(2)]
    ens = Ensemble([nn.DataParallel(models[0]), models[1]])  # what DDP is to unwrapping: the model in .module
    assert ens.members[0] is models[0] and ens.members[1] is models[1]
    assert set(ens.state_dict()) == {f"members.{i}.{k}" for i in range(2) for k in models[0].state_dict()}
    rebuilt = Ensemble.from_state_dicts(lambda: nn.DataParallel(_seeded(0)), [m.state_dict() for m in models])
    x = torch.randn(3, 4)
    assert type(rebuilt.members[0]) is nn.Sequential and torch.allclose(rebuilt(x), ens(x))


@pytest.mark.parametrize("call, message", [
    (lambda: Ensemble([]), r"at least one model, got 0"),
    (lambda: Ensemble([_seeded(0)], average="median"), r"average must be one of 'probs', 'logits'; got 'median'"),
    (lambda: Ensemble([lambda x: x]), r"members must be nn.Module, got function"),
    (lambda: Ensemble.from_state_dicts("factory", []), r"factory must be callable, got str"),
    (lambda: average_outputs([]), r"at least one output, got 0"),
])
def test_errors_name_the_value(call, message):
    with pytest.raises(RegularkitError, match=message):
        call()
