"""Penalties: NumPy formulas, worked examples, analytic gradients, selection, schedules, Keras parity."""


import pickle

import numpy as np
import pytest
import torch
from _helpers.penalties import make_model
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError


def test_activity_penalty_value_lifecycle_and_modes():
    model = make_model()
    seen = []
    model[6].register_forward_hook(lambda m, i, o: seen.append(o.detach().double().numpy()))
    act = P.ActivityPenalty([model[6]], l1=0.01, l2=0.1)
    x = torch.randn(4, 2, 6, 6, generator=torch.Generator().manual_seed(0))
    model(x)
    model(x[:2])  # two forwards accumulate
    expected = sum(0.01 * np.abs(h).sum() + 0.1 * (h ** 2).sum() for h in seen)
    assert act.value.item() == pytest.approx(expected, rel=1e-6)
    assert act(model).item() == pytest.approx(expected, rel=1e-6)  # read clears
    assert act(model).item() == 0.0
    model.eval()
    model(x)
    assert act.value.item() == 0.0  # evaluation forwards add nothing
    model.train()
    model(x)
    act.reset()
    assert act.value.item() == 0.0
    act.detach()
    model(x)
    assert act.value.item() == 0.0
    with act:  # re-attached inside, detached after
        model(x)
        assert act.value.item() > 0
    model(x)
    assert len(model[6]._forward_hooks) == 1  # only the test's own hook is left


def test_activity_penalty_mean_reduction_and_gradient():
    lin = nn.Linear(3, 2)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    act = P.ActivityPenalty(lin, l1=0.2, reduction="mean")
    lin(x).sum()
    value = act()
    h = lin(x).detach()
    act.reset()
    assert value.item() == pytest.approx(0.2 * h.abs().sum().item() / 5, rel=1e-6)
    value.backward()  # flows into the layer's parameters: d/dW of 0.2/5 * sum|W x + b|
    expected = 0.2 / 5 * torch.sign(h).T @ x
    torch.testing.assert_close(lin.weight.grad, expected)


def test_activity_penalty_pickles_and_errors():
    model = make_model()
    act = P.ActivityPenalty(model[6], l2=0.1)
    model(torch.randn(2, 2, 6, 6))
    clone_model, clone_act = pickle.loads(pickle.dumps((model, act)))
    assert clone_act.value.item() == 0.0  # accumulated graphs are not carried over
    clone_model(torch.randn(2, 2, 6, 6))
    assert clone_act.value.item() > 0 and act.value.item() > 0
    with pytest.raises(RegularkitError, match=r"modules must be an nn.Module or a non-empty list of them, got \[\]"):
        P.ActivityPenalty([], l1=0.1)
    with pytest.raises(RegularkitError, match=r"reduction must be one of 'sum', 'mean'; got 'max'"):
        P.ActivityPenalty(model[6], reduction="max")
