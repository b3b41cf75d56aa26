"""Penalties: NumPy formulas, worked examples, analytic gradients, selection, schedules, Keras parity."""

import copy
import pickle

import pytest
import torch
from _helpers.penalties import grads, make_model, negative_after_two, schedule, selected_weights
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError


def test_worked_example():
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.0]]))  # sum w^2 = 14, sum |w| = 6
        lin.bias.fill_(100.0)  # must not count
    assert P.L2(0.5)(lin).item() == pytest.approx(7.0)
    assert P.L2(0.5, convention="half")(lin).item() == pytest.approx(3.5)
    assert P.L2(0.5, n=7)(lin).item() == pytest.approx(1.0)
    assert P.L2(0.5, convention="half", n=7)(lin).item() == pytest.approx(0.5)
    assert P.L1(0.5)(lin).item() == pytest.approx(3.0)
    assert P.ElasticNet(0.5, 0.5)(lin).item() == pytest.approx(10.0)
    assert P.ElasticNet(0.5, 0.5, convention="half")(lin).item() == pytest.approx(6.5)
    assert P.ElasticNet.from_beta(0.5, 2.0)(lin).item() == pytest.approx(0.5 * (2 * 14 + 6))
    assert P.Lp(3, 1.0)(lin).item() == pytest.approx(1 + 8 + 27)
    assert P.Lp(3, 2.0, root=True)(lin).item() == pytest.approx(2 * 36 ** (1 / 3))


def test_gradients_are_the_analytic_ones():
    model = make_model()
    with torch.no_grad():
        model[7].weight[0, :2] = 0.0  # sign(0) = 0: L1's subgradient choice
    lam = 0.3
    for penalty, expected in [
        (P.L2(lam), lambda w: 2 * lam * w),
        (P.L2(lam, convention="half"), lambda w: lam * w),
        (P.L2(lam, n=10), lambda w: 2 * lam * w / 10),
        (P.L1(lam), lambda w: lam * torch.sign(w)),
        (P.ElasticNet(lam, 2 * lam), lambda w: lam * torch.sign(w) + 4 * lam * w),
        (P.Lp(3.0, lam), lambda w: 3 * lam * w.abs() ** 2 * torch.sign(w)),
    ]:
        grads(penalty, model)
        for w in selected_weights(model):
            torch.testing.assert_close(w.grad, expected(w.detach()), rtol=1e-5, atol=1e-7)
        # biases and normalisation parameters get no gradient at all
        assert model[0].bias.grad is None and model[1].weight.grad is None and model[5].weight.grad is None


def test_half_l2_equals_torch_coupled_weight_decay_with_momentum():
    # Coupled decay: L2(lam, "half") in the loss == torch's SGD/Adam(weight_decay=lam) on the same params.
    # (No BatchNorm here: it zeroes the conv bias gradient up to round-off, which Adam then amplifies.)
    def small():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 4))

    for opt_cls, kw in [(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}), (torch.optim.Adam, {"lr": 0.01})]:
        a, b = small(), small()
        x = torch.randn(8, 2, 6, generator=torch.Generator().manual_seed(1))
        opt_a = opt_cls(P.decay_param_groups(a, 0.0), **kw)
        opt_b = opt_cls(P.decay_param_groups(b, 0.05), **kw)
        pen = P.L2(0.05, convention="half")
        for _ in range(5):
            for model, opt, extra in ((a, opt_a, pen), (b, opt_b, None)):
                opt.zero_grad()
                loss = model(x).square().mean() + (extra(model) if extra else 0.0)
                loss.backward()
                opt.step()
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_schedule_follows_step_and_state_dict():
    lin = nn.Linear(3, 2)
    pen = P.L2(schedule)
    base = lin.weight.square().sum().item()
    assert pen(lin).item() == pytest.approx(0.1 * base)
    pen.step()
    pen.step()
    assert pen.step_count == 2 and pen(lin).item() == pytest.approx(0.3 * base)
    other = P.L2(schedule)
    other.load_state_dict(pen.state_dict())
    assert other(lin).item() == pytest.approx(0.3 * base)


def test_schedule_returning_a_negative_strength_is_an_error():
    pen = P.L1(negative_after_two)
    lin = nn.Linear(2, 2)
    pen(lin)
    pen.step()
    pen.step()
    with pytest.raises(RegularkitError, match=r"strength at step 2 must be >= 0, got -1.0"):
        pen(lin)


@pytest.mark.parametrize("build, match", [
    (lambda: P.L2(-1.0), r"strength must be >= 0, got -1.0"),
    (lambda: P.L2("a"), r"strength must be a number, got 'a'"),
    (lambda: P.L2(0.1, convention="mean"), r"convention must be one of 'sum', 'half'; got 'mean'"),
    (lambda: P.L1(0.1, n=0), r"n must be >= 1, got 0"),
    (lambda: P.ElasticNet(0.1, -2), r"l2 must be >= 0, got -2"),
    (lambda: P.ElasticNet.from_beta(0.1, -1.0), r"beta must be >= 0, got -1.0"),
    (lambda: P.Lp(0.5, 0.1), r"p must be >= 1, got 0.5"),
    (lambda: P.elastic_net_penalty([], convention="x"), r"convention must be one of 'sum', 'half'; got 'x'"),
])
def test_constructor_errors(build, match):
    with pytest.raises(RegularkitError, match=match):
        build()


def test_penalties_pickle():
    model = make_model()
    for pen in [P.L2(0.1, convention="half", n=3), P.L1(schedule), P.ElasticNet(0.1, 0.2, pattern="^4"),
                P.Lp(3, 0.1, root=True, modules=(nn.Linear,))]:
        pen.step()
        clone = pickle.loads(pickle.dumps(pen))
        assert clone.step_count == 1 and repr(clone) == repr(pen)
        assert clone(model).item() == pen(model).item()


def test_decay_param_groups_partition_and_adamw_decay():
    model = make_model()
    model[7].bias.requires_grad_(False)
    groups = P.decay_param_groups(model, 0.1)
    decay, no_decay = ({id(p) for p in g["params"]} for g in groups)
    assert decay == {id(w) for w in selected_weights(model)}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert decay | no_decay == trainable and not decay & no_decay
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    # With zero data gradient AdamW's update is pure decay: w <- w (1 - lr * wd); biases untouched.
    before = copy.deepcopy(model)
    opt = torch.optim.AdamW(groups, lr=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for (name, p), q in zip(model.named_parameters(), before.parameters()):
        factor = 1 - 0.5 * 0.1 if id(p) in decay else 1.0
        torch.testing.assert_close(p, q * factor, msg=name)
    with pytest.raises(RegularkitError, match=r"weight_decay must be >= 0, got -0.1"):
        P.decay_param_groups(model, -0.1)
