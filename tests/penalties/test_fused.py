"""The fused gradient path: ``penalty.add_grad_(model)`` after ``backward()`` equals the penalty in the loss.

Reference: autograd on the same penalty (``data_loss + penalty(model)``), the same selection, strength
and step; the gradients of every parameter (selected or not) and the value must agree to float rounding.
"""
import json

import pytest
import torch
from _helpers.penalties import make_model, schedule, selected_weights
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError
from regularkit.penalties.fused import elastic_net_add_grad_, lp_add_grad_

PENALTIES = {
    "l2_sum": lambda **kw: P.L2(0.3, convention="sum", **kw),
    "l2_half": lambda **kw: P.L2(0.3, convention="half", **kw),
    "l1": lambda **kw: P.L1(0.2, **kw),
    "elastic_sum": lambda **kw: P.ElasticNet(0.1, 0.2, convention="sum", **kw),
    "elastic_half": lambda **kw: P.ElasticNet(0.1, 0.2, convention="half", **kw),
    "lp_1.5": lambda **kw: P.Lp(1.5, 0.3, **kw),
    "lp_3": lambda **kw: P.Lp(3.0, 0.3, **kw),
    "lp_3_root": lambda **kw: P.Lp(3.0, 0.3, root=True, **kw),
    "lp_1_root": lambda **kw: P.Lp(1.0, 0.3, root=True, **kw),
    "lp_2": lambda **kw: P.Lp(2.0, 0.3, **kw),
}


def batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(6, 2, 6, 6, generator=g), torch.randint(0, 4, (6,), generator=g)


def data_loss(model):
    x, y = batch()
    return nn.functional.cross_entropy(model(x.to(next(model.parameters()).dtype)), y)


class WithUnused(nn.Module):
    """``make_model()`` as ``net`` beside a Linear the forward never calls."""

    def __init__(self):
        super().__init__()
        self.net, self.unused = make_model(), nn.Linear(3, 3)

    def forward(self, x):
        return self.net(x)


def autograd_grads(penalty, model):
    """Gradients and value with the penalty in the graph (the reference)."""
    model.zero_grad(set_to_none=True)
    value = penalty(model)
    (data_loss(model) + value).backward()
    return {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}, value.detach()


def fused_grads(penalty, model):
    model.zero_grad(set_to_none=True)
    data_loss(model).backward()
    value = penalty.add_grad_(model)
    return {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}, value


def assert_same(reference, fused, rtol=1e-5, atol=1e-7):
    (ga, va), (gf, vf) = reference, fused
    assert ga.keys() == gf.keys()
    for name in ga:
        if ga[name] is None:
            assert gf[name] is None, name
        else:
            torch.testing.assert_close(gf[name], ga[name], rtol=rtol, atol=atol, msg=name)
    assert not vf.requires_grad and vf.ndim == 0
    torch.testing.assert_close(vf, va, rtol=rtol, atol=atol)


def with_zeros(model):
    with torch.no_grad():
        model[7].weight[0, :2] = 0.0  # sign(0) = 0 and 0^(p-1): the kinks, where autograd has chosen a value
        model[0].weight[1, 0, 0, 0] = 0.0
    return model


@pytest.mark.parametrize("build", PENALTIES.values(), ids=PENALTIES.keys())
@pytest.mark.parametrize("kw", [{}, {"n": 7}, {"pattern": r"^(0|7)\."}, {"modules": "all"}],
                         ids=["default", "n", "pattern", "all"])
def test_fused_gradient_and_value_equal_autograd(build, kw):
    model = with_zeros(make_model())
    penalty = build(**kw)
    assert_same(autograd_grads(penalty, model), fused_grads(penalty, model))


@pytest.mark.parametrize("build", PENALTIES.values(), ids=PENALTIES.keys())
def test_scheduled_strength_is_read_at_the_current_step(build):
    model = make_model()
    penalty = build()
    for name in ("strength", "l1", "l2"):
        if hasattr(penalty, name):
            setattr(penalty, name, schedule)  # 0.1 * (step + 1)
    penalty.step()
    penalty.step()
    reference = autograd_grads(penalty, model)
    assert_same(reference, fused_grads(penalty, model))
    penalty.step()  # a different strength, a different gradient
    assert not torch.allclose(fused_grads(penalty, model)[0]["7.weight"], reference[0]["7.weight"])


@pytest.mark.parametrize("build", PENALTIES.values(), ids=PENALTIES.keys())
def test_frozen_and_unused_parameters(build):
    model = WithUnused()  # unused.weight: selected, but no part of the forward: its grad starts as None
    model.net[0].requires_grad_(False)  # frozen: not selected, never given a gradient
    penalty = build()
    reference, fused = autograd_grads(penalty, model), fused_grads(penalty, model)
    assert reference[0]["net.0.weight"] is None and fused[0]["net.0.weight"] is None
    assert fused[0]["unused.weight"] is not None and fused[0]["unused.bias"] is None  # the penalty's gradient only
    assert_same(reference, fused)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
def test_lp_direction_is_the_analytic_gradient(p):
    w = torch.tensor([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    lin = nn.Linear(5, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(w)
    value = P.Lp(p, 0.3).add_grad_(lin)
    expected = 0.3 * p * w.abs().pow(p - 1) * torch.sign(w)  # sign(0) = 0, so 0 at 0 for every p (0^0 = 1)
    torch.testing.assert_close(lin.weight.grad, expected)
    assert value.item() == pytest.approx(0.3 * w.abs().pow(p).sum().item(), rel=1e-6)


def test_zero_strength_adds_nothing_and_root_at_zero_is_nan_like_autograd():
    model = make_model()
    assert P.L2(0.0).add_grad_(model).item() == 0.0 and all(p.grad is None for p in model.parameters())
    assert P.ElasticNet(0.0, 0.0).add_grad_(model).item() == 0.0 and model[7].weight.grad is None
    with torch.no_grad():
        for w in selected_weights(model):
            w.zero_()
    reference = autograd_grads(P.Lp(3.0, 0.3, root=True), model)[0]["7.weight"]
    fused = fused_grads(P.Lp(3.0, 0.3, root=True), model)[0]["7.weight"]
    assert torch.isnan(reference).all() and torch.isnan(fused).all()  # the p-norm has no gradient at 0


def test_float64_model_and_an_empty_selection():
    model = make_model().double()
    assert_same(autograd_grads(P.ElasticNet(0.1, 0.2), model), fused_grads(P.ElasticNet(0.1, 0.2), model),
                rtol=1e-12, atol=1e-14)
    assert P.L2(0.3).add_grad_(model).dtype == torch.float64
    empty = nn.Sequential(nn.ReLU())
    assert P.L2(0.3).add_grad_(empty).item() == 0.0 and P.Lp(3, 0.3).add_grad_(empty).item() == 0.0
    assert elastic_net_add_grad_([], l2=1.0).item() == 0.0 and lp_add_grad_([], 3.0).item() == 0.0


def test_a_sparse_gradient_becomes_dense_as_autograd_makes_it():
    def build():
        torch.manual_seed(0)
        return nn.Embedding(10, 3, sparse=True)

    ids = torch.tensor([1, 4, 4])
    a, b = build(), build()
    (a(ids).sum() + P.L2(0.3)(a)).backward()
    b(ids).sum().backward()
    assert b.weight.grad.is_sparse
    P.L2(0.3).add_grad_(b)
    assert not b.weight.grad.is_sparse
    torch.testing.assert_close(b.weight.grad, a.weight.grad.to_dense())


def test_half_l2_is_torch_sgd_weight_decay():
    """``L2(lam, "half")`` on the fused path is the gradient torch's SGD(weight_decay=lam) adds."""
    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2))

    a, b = build(), build()
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    opt_a = torch.optim.SGD(P.decay_param_groups(a, 0.0), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(P.decay_param_groups(b, 0.05), lr=0.1, momentum=0.9)
    pen = P.L2(0.05, convention="half")
    for _ in range(4):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            model(x).square().mean().backward()
            if model is a:
                pen.add_grad_(model)
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-6, atol=1e-7)


def test_calling_the_penalty_stays_differentiable_and_fused_is_config():
    model = make_model()
    for fused in (True, False):
        pen = P.L2(0.3, fused=fused)
        assert pen(model).requires_grad and pen.fused is fused
        config = json.loads(json.dumps(pen.get_config()))
        assert config["fused"] is fused and P.L2.from_config(config) == pen
    assert P.L2(0.3) != P.L2(0.3, fused=False)
    assert P.L2.from_config({"strength": 0.3}).fused is True  # configs saved before the flag
    with pytest.raises(RegularkitError, match=r"fused must be True or False, got 'yes'"):
        P.L1(0.1, fused="yes")
