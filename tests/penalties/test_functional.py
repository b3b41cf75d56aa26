"""Penalties: NumPy formulas, worked examples, analytic gradients, selection, schedules, Keras parity."""



import numpy as np
import pytest
import torch
from _helpers.penalties import make_model, selected_weights
from hypothesis import given, settings
from hypothesis import strategies as st

from regularkit import penalties as P


@pytest.mark.parametrize("convention, c", [("sum", 1.0), ("half", 0.5)])
@pytest.mark.parametrize("n", [None, 32])
def test_elastic_net_matches_numpy(convention, c, n):
    model = make_model()
    ws = [w.detach().numpy().astype(np.float64) for w in selected_weights(model)]
    l1, l2 = 0.03, 0.2
    expected = sum(l1 * np.abs(w).sum() + c * l2 * (w ** 2).sum() for w in ws) / (n or 1)
    got = P.ElasticNet(l1, l2, convention=convention, n=n)(model)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert P.L2(l2, convention=convention, n=n)(model).item() == pytest.approx(
        sum(c * l2 * (w ** 2).sum() for w in ws) / (n or 1), rel=1e-6)
    assert P.L1(l1, n=n)(model).item() == pytest.approx(sum(l1 * np.abs(w).sum() for w in ws) / (n or 1), rel=1e-6)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
def test_lp_matches_numpy_and_special_cases(p):
    model = make_model()
    ws = [w.detach().double().numpy() for w in selected_weights(model)]
    s = sum((np.abs(w) ** p).sum() for w in ws)
    assert P.Lp(p, 0.1)(model).item() == pytest.approx(0.1 * s, rel=1e-5)
    assert P.Lp(p, 0.1, root=True)(model).item() == pytest.approx(0.1 * s ** (1 / p), rel=1e-5)
    if p == 2.0:
        assert P.Lp(p, 0.1)(model).item() == pytest.approx(P.L2(0.1, convention="sum")(model).item(), rel=1e-6)
        assert P.Lp(p, 0.1)(model).item() == pytest.approx(2 * P.L2(0.1)(model).item(), rel=1e-6)
    if p == 1.0:
        assert P.Lp(p, 0.1)(model).item() == pytest.approx(P.L1(0.1)(model).item(), rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**31 - 1))
def test_kernels_on_any_shape(shape, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(*shape, generator=g, dtype=torch.float64)
    x = w.numpy()
    assert P.elastic_net_penalty([w], l1=0.3, l2=0.7).item() == pytest.approx(
        0.3 * np.abs(x).sum() + 0.7 * (x ** 2).sum())
    assert P.lp_penalty([w], 2.5, 0.2).item() == pytest.approx(0.2 * (np.abs(x) ** 2.5).sum())


def test_per_example_is_keras3_batch_scaling():
    term = torch.tensor(6.0)
    assert P.functional.per_example(term, torch.ones(3, 5)).item() == 2.0  # divided by dim 0
    assert P.functional.per_example(term, torch.tensor(1.0)).item() == 6.0  # a 0-d output is not divided
    assert P.functional.per_example(torch.tensor(0.0), torch.ones(0, 5)).item() == 0.0  # empty: 0, not NaN
