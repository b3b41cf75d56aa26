"""Penalties: NumPy formulas, worked examples, analytic gradients, selection, schedules, Keras parity."""
import copy
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
        nn.Linear(3 * 4 * 4, 5), nn.LayerNorm(5), nn.ReLU(), nn.Linear(5, 4),
    )


def selected_weights(model):
    return [model[0].weight, model[4].weight, model[7].weight]


def schedule(step):  # module level: picklable
    return 0.1 * (step + 1)


def negative_after_two(step):
    return 1.0 if step < 2 else -1.0


# --- selection ----------------------------------------------------------------------------------

def test_default_selection_is_linear_and_conv_weights_only():
    model = make_model()
    names = [n for n, _ in P.select_parameters(model)]
    assert names == ["0.weight", "4.weight", "7.weight"]  # no bias, no BatchNorm/LayerNorm weight


def test_selection_by_type_and_pattern():
    model = make_model()
    assert [n for n, _ in P.select_parameters(model, nn.Linear)] == ["4.weight", "7.weight"]
    assert [n for n, _ in P.select_parameters(model, pattern=r"^7\.")] == ["7.weight"]
    biases = [n for n, _ in P.select_parameters(model, None, r"bias$")]
    assert biases == ["0.bias", "1.bias", "4.bias", "5.bias", "7.bias"]
    assert len(P.select_parameters(model, None)) == len(list(model.parameters()))


def test_tied_weights_counted_once():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert len(P.select_parameters(model)) == 1
    assert P.L2(1.0)(model).item() == pytest.approx(a.weight.square().sum().item())


@pytest.mark.parametrize("kwargs, match", [
    ({"modules": "Linear"}, r"modules must be None or a tuple of nn.Module types, got 'Linear'"),
    ({"modules": (int,)}, r"modules must be None or a tuple of nn.Module types"),
    ({"pattern": "("}, r"pattern is not a valid regular expression: '\('"),
    ({"pattern": 3}, r"pattern must be a regular expression string, got 3"),
])
def test_selection_errors(kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        P.select_parameters(make_model(), **kwargs)
    with pytest.raises(RegularkitError, match=match):
        P.L2(0.1, **kwargs)


def test_select_needs_a_module():
    with pytest.raises(RegularkitError, match="model must be a torch.nn.Module, got Tensor"):
        P.select_parameters(torch.zeros(3))


# --- values: NumPy formulas and a worked example ------------------------------------------------

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
        assert P.Lp(p, 0.1)(model).item() == pytest.approx(P.L2(0.1)(model).item(), rel=1e-6)
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


def test_empty_selection_is_a_zero_loss_term():
    model = nn.Sequential(nn.BatchNorm1d(3))
    value = P.L2(0.1)(model)
    assert value.shape == () and value.item() == 0.0


# --- gradients ------------------------------------------------------------------------------------

def grads(penalty, model):
    model.zero_grad()
    penalty(model).backward()
    return model


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


# --- schedules ------------------------------------------------------------------------------------

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


# --- activity penalty ---------------------------------------------------------------------------------

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


# --- decoupled decay groups and sparsity ----------------------------------------------------------------

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


def test_weight_sparsity():
    lin = nn.Linear(10, 10)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.weight[:3] = 1e-4  # 30 of 100 below 1e-3
        lin.bias.zero_()  # biases are not counted
    assert P.weight_sparsity(lin) == pytest.approx(0.3)
    assert P.weight_sparsity(lin, threshold=2.0) == 1.0
    assert P.weight_sparsity(lin, threshold=0.0) == 0.0
    with pytest.raises(RegularkitError, match=r"threshold must be >= 0, got -1"):
        P.weight_sparsity(lin, threshold=-1)
    with pytest.raises(RegularkitError, match=r"weight_sparsity: no parameter selected"):
        P.weight_sparsity(nn.BatchNorm1d(3))


# --- Keras vocabulary ------------------------------------------------------------------------------------

def keras_l1_l2(x, l1, l2):
    """The documented Keras formula: l1 * sum(|x|) + l2 * sum(x^2)."""
    return l1 * np.sum(np.abs(x)) + l2 * np.sum(np.square(x))


def test_keras_shortcuts_match_the_keras_formula():
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    xn = x.numpy()
    assert P.l1()(x).item() == pytest.approx(keras_l1_l2(xn, 0.01, 0.0))
    assert P.l2()(x).item() == pytest.approx(keras_l1_l2(xn, 0.0, 0.01))
    assert P.l1_l2()(x).item() == pytest.approx(keras_l1_l2(xn, 0.01, 0.01))
    assert P.l1_l2(l1=0.3, l2=0.02)(x).item() == pytest.approx(keras_l1_l2(xn, 0.3, 0.02))
    reg = P.l1_l2(l1=0.3, l2=0.02)
    assert P.WeightRegularizer.from_config(reg.get_config()) == reg
    assert pickle.loads(pickle.dumps(reg)) == reg
    with pytest.raises(RegularkitError, match=r"l2 must be >= 0, got -0.5"):
        P.l2(-0.5)


def test_regularize_and_regularization_loss_match_keras_dense():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    P.regularize(model[0], kernel_regularizer=P.l2(0.01), bias_regularizer=P.l1(0.1),
                 activity_regularizer=P.l1(0.05))
    P.regularize(model[2], kernel_regularizer=P.l1_l2(l1=0.02, l2=0.03))
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    out0 = nn.functional.linear(x, model[0].weight, model[0].bias).detach().numpy()  # not via the hook
    model(x)
    # Keras stores a Dense kernel as (in, out) = W^T: the penalties are sums, so equal.
    k0, k2 = model[0].weight.detach().numpy().T, model[2].weight.detach().numpy().T
    expected = (keras_l1_l2(k0, 0.0, 0.01) + keras_l1_l2(model[0].bias.detach().numpy(), 0.1, 0.0)
                + keras_l1_l2(out0, 0.05, 0.0) + keras_l1_l2(k2, 0.02, 0.03))
    total = P.regularization_loss(model)
    assert total.item() == pytest.approx(expected, rel=1e-5)
    # activity terms were consumed; kernel and bias terms remain
    assert P.regularization_loss(model).item() == pytest.approx(expected - keras_l1_l2(out0, 0.05, 0.0), rel=1e-5)
    total = P.regularization_loss(model)
    total.backward()
    torch.testing.assert_close(model[0].weight.grad, 2 * 0.01 * model[0].weight.detach())
    # pickling / deepcopy keep the attachment working on the copy
    clone = copy.deepcopy(model)
    clone(x)
    assert P.regularization_loss(clone).item() == pytest.approx(expected, rel=1e-5)
    # calling again replaces; all None removes (and its hook)
    P.regularize(model[0])
    assert not model[0]._forward_hooks
    assert P.regularization_loss(model).item() == pytest.approx(keras_l1_l2(k2, 0.02, 0.03), rel=1e-5)


def test_regularize_errors():
    with pytest.raises(RegularkitError, match=r"bias_regularizer given but Linear has no bias tensor"):
        P.regularize(nn.Linear(2, 2, bias=False), bias_regularizer=P.l2())
    with pytest.raises(RegularkitError, match=r"kernel_regularizer must be callable \(tensor -> scalar\), got 0.01"):
        P.regularize(nn.Linear(2, 2), kernel_regularizer=0.01)
    with pytest.raises(RegularkitError, match=r"module must be a torch.nn.Module, got str"):
        P.regularize("dense", kernel_regularizer=P.l2())
    assert P.regularization_loss(nn.Linear(2, 2)).item() == 0.0
