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
    model(x[:2])  # two forwards accumulate, each divided by its own batch size (4, then 2)
    expected = sum((0.01 * np.abs(h).sum() + 0.1 * (h ** 2).sum()) / len(h) for h in seen)
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


def keras3_activity_loss(outputs, l1, l2):
    """Keras 3 (>= 3.14) keras/src/layers/layer.py, Layer.__call__: for each output tensor, the regularizer's value
    (regularizers.L1L2: l1 * sum|x| + l2 * sum x^2) divided by batch_size = shape[0] when ndim > 0, with
    ops.divide_no_nan (an empty batch gives 0); every term is added with add_loss and model.losses are summed."""
    total = 0.0
    for h in outputs:
        loss = l1 * np.sum(np.abs(h)) + l2 * np.sum(np.square(h))
        if h.ndim > 0:
            loss = loss / h.shape[0] if h.shape[0] else 0.0
        total += loss
    return total


class Pair(nn.Module):
    """Returns a batch tensor and a 0-d tensor: Keras divides the first by the batch size, not the second."""

    def forward(self, x):
        return x * 2.0, x.square().mean()


def test_default_matches_keras3_for_a_batch_of_7():
    x = torch.randn(7, 3, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    layer = Pair()
    act = P.ActivityPenalty(layer, l1=0.03, l2=0.2)  # default reduction: Keras 3
    outs = [o.numpy() for o in layer(x)]
    expected = keras3_activity_loss(outs, 0.03, 0.2)
    assert act().item() == pytest.approx(expected, rel=1e-12)
    # undivided, the batch term is 7 times stronger: the old default, Keras 3.0-3.13
    total = P.ActivityPenalty(layer, l1=0.03, l2=0.2, reduction="sum")
    layer(x)
    big, scalar = keras3_activity_loss(outs[:1], 0.03, 0.2), keras3_activity_loss(outs[1:], 0.03, 0.2)
    assert total().item() == pytest.approx(7 * big + scalar, rel=1e-12)
    assert act().item() == pytest.approx(big + scalar, rel=1e-12)  # the first one saw this forward too
    # an empty batch adds 0, not NaN (Keras' divide_no_nan)
    empty = P.ActivityPenalty(nn.Identity(), l1=1.0)
    empty.modules[0](torch.zeros(0, 3))
    assert empty().item() == 0.0 == keras3_activity_loss([np.zeros((0, 3))], 1.0, 0.0)


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
    with pytest.raises(RegularkitError, match=r"reduction must be one of 'mean', 'sum'; got 'max'"):
        P.ActivityPenalty(model[6], reduction="max")
    with pytest.raises(RegularkitError, match=r"schedule_unit must be one of 'step', 'epoch'; got 'epochs'"):
        P.ActivityPenalty(model[6], l1=0.1, schedule_unit="epochs")
