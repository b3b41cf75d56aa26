"""SAM and ASAM: the paper's update by hand on a quadratic (exact), an MLP against a plain-torch restatement,
with fused penalties, autocast, fp16 scaling, EMA and frozen batch-norm statistics."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit import penalties as P
from regularkit.averaging import EMA
from regularkit.errors import RegularkitError
from regularkit.train import SAM, StandardStep, fit
from regularkit.train.sam import sam_perturbation


def quadratic_problem(n=12, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, 1)), rng.normal(size=d)


def half_squared_error(out, t):
    return 0.5 * ((out - t) ** 2).sum(1).mean()


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_on_a_quadratic_is_the_papers_update_written_out(adaptive):
    """L(w) = 1/(2n) ||X w - t||^2, gradient g(w) = A w - c; full batch, plain gradient descent, float64:
    e = rho g/||g|| (SAM) or rho T^2 g/||T g|| with T = |w| + eta (ASAM); w <- w - lr g(w + e)."""
    X, t, w0 = quadratic_problem()
    rho, lr, eta, steps = 0.3, 0.2, 0.01, 4
    A, c = X.T @ X / len(X), (X.T @ t).ravel() / len(X)
    w = w0.copy()
    for _ in range(steps):
        g = A @ w - c
        T = np.abs(w) + eta if adaptive else np.ones_like(w)
        e = rho * T ** 2 * g / np.linalg.norm(T * g)
        w = w - lr * (A @ (w + e) - c)
    model = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w0)[None])
    fit(model, (torch.from_numpy(X), torch.from_numpy(t)), optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        epochs=steps, batch_size=len(X), loss_fn=half_squared_error, max_loss=float("inf"),
        step=SAM(rho, adaptive=adaptive, eta=eta))
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), w, rtol=1e-12, atol=1e-14)
    plain = w0.copy()
    for _ in range(steps):
        plain = plain - lr * (A @ plain - c)
    assert np.abs(plain - w).max() > 1e-3  # the control: SAM moved elsewhere than gradient descent


def test_perturbation_is_zero_for_a_zero_gradient_and_has_norm_rho():
    w = [torch.randn(3, 2), torch.randn(4)]
    e = sam_perturbation(w, [torch.zeros(3, 2), torch.zeros(4)], 0.5)
    assert all(torch.equal(x, torch.zeros_like(x)) for x in e)
    g = [torch.randn(3, 2), torch.randn(4)]
    e = sam_perturbation(w, g, 0.5)
    assert float(torch.cat([x.ravel() for x in e]).norm()) == pytest.approx(0.5, rel=1e-6)
    ea = sam_perturbation(w, g, 0.5, adaptive=True, eta=0.0)  # ||T^-1 e|| = rho for ASAM
    assert float(torch.cat([(x / wi.abs()).ravel() for x, wi in zip(ea, w)]).norm()) == pytest.approx(0.5, rel=1e-5)


def data(n=48, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, k, (n,), generator=g)


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


def restated_sam(model, x, y, *, rho, adaptive, eta=0.01, lr=0.1, epochs=2, batch_size=16, seed=3, autocast=None,
                 on_step=None):
    """SAM in plain torch (the davda54/sam recipe: batch-norm momentum 0 in the second pass), fit's seeding."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x), batch_size):
                idx = order[i:i + batch_size]
                with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
                    loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                params = [p for p in model.parameters()]
                with torch.no_grad():
                    scaled = [(p.abs() + eta) * p.grad if adaptive else p.grad for p in params]
                    norm = torch.norm(torch.stack([s.norm(2) for s in scaled]), 2)
                    e = [((p.abs() + eta) ** 2 if adaptive else 1.0) * p.grad * rho / norm for p in params]
                    old = [p.clone() for p in params]
                    for p, ei in zip(params, e):
                        p.add_(ei)
                momenta = [m.momentum for m in bns]
                for m in bns:
                    m.momentum = 0.0
                with torch.autocast("cpu", dtype=autocast or torch.bfloat16, enabled=autocast is not None):
                    loss2 = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss2.backward()
                for m, mom in zip(bns, momenta):
                    m.momentum = mom
                with torch.no_grad():
                    for p, o in zip(params, old):
                        p.copy_(o)
                opt.step()
                if on_step is not None:
                    on_step(model)


def sam_fit(step, *, precision="fp32", terms=(), after_step=(), epochs=2):
    x, y = data()
    model = net()
    fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), epochs=epochs,
        batch_size=16, seed=3, step=step, precision=precision, loss_terms=list(terms), after_step=list(after_step))
    return model


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_on_an_mlp_matches_a_plain_torch_restatement(adaptive):
    model = sam_fit(SAM(0.1, adaptive=adaptive))
    reference = net()
    restated_sam(reference, *data(), rho=0.1, adaptive=adaptive)
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        if name.endswith("num_batches_tracked"):
            assert int(a) == 6 and int(b) == 12  # the first passes only; momentum 0 still counts the second
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    plain = sam_fit(StandardStep())
    assert not torch.allclose(plain[0].weight, model[0].weight, atol=1e-4)


def test_batch_norm_statistics_come_from_the_first_pass_only():
    """One step: the first pass is the standard step's forward (same weights, same RNG), so the running
    statistics equal the standard step's; the second pass, at w + e, leaves them alone."""
    sam, std = sam_fit(SAM(0.5), epochs=1), sam_fit(StandardStep(), epochs=1)
    x, y = data(n=16)
    one_sam, one_std = net(), net()
    for model, step in ((one_sam, SAM(0.5)), (one_std, StandardStep())):
        fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, batch_size=16, step=step)
    assert torch.equal(one_sam[1].running_mean, one_std[1].running_mean)
    assert torch.equal(one_sam[1].running_var, one_std[1].running_var)
    assert not torch.equal(one_sam[0].weight, one_std[0].weight)
    assert not torch.allclose(sam[1].running_mean, std[1].running_mean)  # later steps: other weights, other stats


def test_fused_penalties_train_like_the_penalty_in_the_graph():
    fused = sam_fit(SAM(0.1), terms=[P.L2(0.02)])
    graph = sam_fit(SAM(0.1), terms=[P.L2(0.02, fused=False)])
    bare = sam_fit(SAM(0.1))
    for p, q in zip(fused.parameters(), graph.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert not all(torch.allclose(p, r, atol=1e-4) for p, r in zip(fused.parameters(), bare.parameters()))


def test_bf16_autocast_matches_the_restatement_and_keeps_float32_weights():
    model = sam_fit(SAM(0.1), precision="bf16")
    reference = net()
    restated_sam(reference, *data(), rho=0.1, adaptive=False, autocast=torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_fp16_loss_scaling_with_a_fused_penalty():
    try:
        torch.amp.GradScaler("cpu")
        with torch.autocast("cpu", dtype=torch.float16):
            torch.ones(2, 2) @ torch.ones(2, 2)
    except (RuntimeError, TypeError, ValueError) as exc:  # pragma: no cover - older torch
        pytest.skip(f"fp16 autocast / GradScaler unavailable on the CPU: {exc}")
    fused = sam_fit(SAM(0.1), precision="fp16", terms=[P.L2(0.05)])
    graph = sam_fit(SAM(0.1), precision="fp16", terms=[P.L2(0.05, fused=False)])
    fp32 = sam_fit(SAM(0.1), terms=[P.L2(0.05)])
    for p, q, r in zip(fused.parameters(), graph.parameters(), fp32.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(p, r, rtol=0.05, atol=0.02)  # fp16 forward: close to fp32, not equal


def test_ema_and_after_step_hooks_see_the_updated_weights_never_the_perturbed_ones():
    x, y = data()
    model = net()
    ema = EMA(model, decay=0.9)
    seen = []
    fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), epochs=2,
        batch_size=16, seed=3, step=SAM(0.1), after_step=[ema.update, lambda m: seen.append(m[0].weight.clone())])
    reference, expected = net(), []
    average = reference[0].weight.detach().clone()
    restated_sam(reference, x, y, rho=0.1, adaptive=False, on_step=lambda m: expected.append(m[0].weight.clone()))
    assert len(seen) == len(expected) == 6
    for a, b in zip(seen, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        average = 0.9 * average + 0.1 * b
    torch.testing.assert_close(ema.module[0].weight, average, rtol=1e-5, atol=1e-6)


def test_divergence_stops_before_the_weights_move():
    """A penalty too large at w: the first pass's objective is checked before any perturbation or update."""
    x, y = data(n=16)
    model = net()
    before = [p.detach().clone() for p in model.parameters()]
    h = fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, batch_size=16,
            step=SAM(0.1), loss_terms=[P.L2(1e6)], max_loss=100.0)
    assert h.diverged is not None and h.diverged["step"] == 1 and h.diverged["value"] > 100.0
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))


def test_a_diverging_second_pass_stops_with_the_weights_restored():
    """rho so large that L(w + e) is above max_loss while L(w) is not: checked after w is put back."""
    X, t, w0 = quadratic_problem()
    model = nn.Linear(4, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w0)[None])
    h = fit(model, (torch.from_numpy(X), torch.from_numpy(t)), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1, batch_size=len(X), loss_fn=half_squared_error, max_loss=1e3, step=SAM(1e3))
    assert h.diverged is not None and h.diverged["value"] > 1e3
    assert torch.equal(model.weight.detach()[0], torch.from_numpy(w0))


def test_config_round_trip_and_bad_arguments():
    step = SAM(0.5, adaptive=True, eta=0.0)
    assert SAM.from_config(step.get_config()).get_config() == {"rho": 0.5, "adaptive": True, "eta": 0.0}
    with pytest.raises(RegularkitError, match=r"rho must be > 0, got 0"):
        SAM(0)
    with pytest.raises(RegularkitError, match=r"adaptive must be true or false, got 'yes'"):
        SAM(0.1, adaptive="yes")
    with pytest.raises(RegularkitError, match=r"eta must be >= 0, got -1"):
        SAM(0.1, eta=-1)
