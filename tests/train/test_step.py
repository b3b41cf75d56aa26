"""The training-step hook: the default step is today's loop bit for bit; clipping is torch's; the protocol's checks."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError
from regularkit.train import StandardStep, StepOutput, fit
from regularkit.train.step import Diverged, StepContext


def data(n=60, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, k, (n,), generator=g)


def net(seed=0, dropout=0.3):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def hand_loop(model, x, y, *, lr, epochs, batch_size, seed, clip=None, precision="fp32", momentum=0.9):
    """A plain-torch restatement of fit's default step: same seeding, order, forward, backward, update."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    scaler = torch.amp.GradScaler("cpu") if precision == "fp16" else None
    generator = torch.Generator().manual_seed(seed)
    objectives = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x), batch_size):
                idx = order[i:i + batch_size]
                with torch.autocast("cpu", dtype=torch.float16, enabled=precision == "fp16"):
                    loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                (loss if scaler is None else scaler.scale(loss)).backward()
                if clip is not None:
                    if scaler is not None:
                        scaler.unscale_(opt)
                    kind, c = clip
                    if kind == "norm":
                        torch.nn.utils.clip_grad_norm_(model.parameters(), c)
                    else:
                        torch.nn.utils.clip_grad_value_(model.parameters(), c)
                if scaler is None:
                    opt.step()
                else:
                    scaler.step(opt)
                    scaler.update()
                objectives.append(float(loss.detach()))
    return objectives


def fit_run(step=None, *, precision="fp32", terms=(), epochs=3, seed=4, lr=0.1, batch_size=16):
    x, y = data()
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    h = fit(model, (x, y), optimizer=opt, epochs=epochs, batch_size=batch_size, seed=seed, step=step,
            precision=precision, loss_terms=list(terms))
    return h, model


def test_default_step_is_bit_identical_to_a_hand_written_loop():
    h, model = fit_run()
    h2, explicit = fit_run(StandardStep())
    reference = net()
    x, y = data()
    objectives = hand_loop(reference, x, y, lr=0.1, epochs=3, batch_size=16, seed=4)
    for p, q, r in zip(model.parameters(), explicit.parameters(), reference.parameters()):
        assert torch.equal(p, r) and torch.equal(q, r)
    steps = int(np.ceil(60 / 16))
    sizes = [16, 16, 16, 12]
    per_epoch = [sum(o * s for o, s in zip(objectives[e * steps:(e + 1) * steps], sizes)) / 60 for e in range(3)]
    assert [e["train_objective"] for e in h.epochs] == pytest.approx(per_epoch, rel=1e-6)
    assert [e["train_objective"] for e in h.epochs] == [e["train_objective"] for e in h2.epochs]


@pytest.mark.parametrize("kind, c", [("norm", 0.05), ("value", 0.01)])
def test_clipping_is_torchs_clip_applied_in_the_step(kind, c):
    step = StandardStep(clip_grad_norm=c) if kind == "norm" else StandardStep(clip_grad_value=c)
    _, model = fit_run(step)
    reference = net()
    x, y = data()
    hand_loop(reference, x, y, lr=0.1, epochs=3, batch_size=16, seed=4, clip=(kind, c))
    for p, r in zip(model.parameters(), reference.parameters()):
        assert torch.equal(p, r)
    _, unclipped = fit_run()
    assert not all(torch.allclose(p, r, atol=1e-4) for p, r in zip(model.parameters(), unclipped.parameters()))


def test_clip_by_norm_on_a_fixed_model_is_the_numpy_formula():
    """One SGD step (lr 1, no momentum) on a fixed model: w1 = w0 - g * min(1, c / (||g|| + 1e-6))."""
    x, y = data(n=8)
    model = net(dropout=0.0)
    w0 = [p.detach().clone() for p in model.parameters()]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    flat = np.concatenate([g.double().numpy().ravel() for g in grads])
    c = 0.1 * float(np.linalg.norm(flat))   # the clip binds
    coef = min(1.0, c / (np.linalg.norm(flat) + 1e-6))
    fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=1.0), epochs=1, batch_size=8,
        step=StandardStep(clip_grad_norm=c))
    for p, p0, g in zip(model.parameters(), w0, grads):
        np.testing.assert_allclose(p.detach().numpy(), p0.numpy() - coef * g.numpy(), rtol=1e-5, atol=1e-7)


def test_fp16_clipping_unscales_first_and_clips_the_penalty_gradient_too():
    try:
        torch.amp.GradScaler("cpu")
        with torch.autocast("cpu", dtype=torch.float16):
            torch.ones(2, 2) @ torch.ones(2, 2)
    except (RuntimeError, TypeError, ValueError) as exc:  # pragma: no cover - older torch
        pytest.skip(f"fp16 autocast / GradScaler unavailable on the CPU: {exc}")
    _, model = fit_run(StandardStep(clip_grad_norm=0.05), precision="fp16")
    reference = net()
    x, y = data()
    hand_loop(reference, x, y, lr=0.1, epochs=3, batch_size=16, seed=4, clip=("norm", 0.05), precision="fp16")
    for p, r in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, r, rtol=1e-6, atol=1e-7)
    # the fused penalty's gradient is added before clipping, unscaled: it trains as the penalty in the graph does
    _, fused = fit_run(StandardStep(clip_grad_norm=0.05), precision="fp16", terms=[P.L2(0.05)])
    _, graph = fit_run(StandardStep(clip_grad_norm=0.05), precision="fp16", terms=[P.L2(0.05, fused=False)])
    for p, q, r in zip(fused.parameters(), graph.parameters(), model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    assert not all(torch.allclose(p, r, atol=1e-4) for p, r in zip(fused.parameters(), model.parameters()))


def test_a_custom_step_gets_the_context_and_its_output_is_recorded():
    seen = []

    class Halved(StandardStep):
        """The standard step on the loss halved: the update of half the learning rate under plain SGD."""

        def __call__(self, ctx, x, y):
            seen.append((type(ctx), x.shape[0], ctx.generator is not None, ctx.scaler))
            with ctx.autocast():
                logits = ctx.forward(x)
                loss = 0.5 * ctx.add_terms(ctx.loss(logits, y))
            ctx.zero_grad()
            ctx.backward(loss)
            objective = ctx.add_fused(loss.detach())
            ctx.check(objective)
            ctx.apply()
            return StepOutput(objective, logits)

    x, y = data(n=32)
    a, b = net(dropout=0.0), net(dropout=0.0)
    ha = fit(a, (x, y), optimizer=torch.optim.SGD(a.parameters(), lr=0.2), epochs=2, batch_size=16, step=Halved())
    hb = fit(b, (x, y), optimizer=torch.optim.SGD(b.parameters(), lr=0.1), epochs=2, batch_size=16)
    assert seen == [(StepContext, 16, True, None)] * 4
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert ha.epochs[0]["train_objective"] == pytest.approx(0.5 * hb.epochs[0]["train_objective"], rel=1e-5)


def test_divergence_raised_by_a_step_stops_before_the_update():
    x, y = data(n=32)
    model = net()
    before = [p.detach().clone() for p in model.parameters()]
    h = fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=16,
            loss_terms=[lambda m: torch.tensor(float("inf"))])
    assert h.diverged == {"epoch": 1, "step": 1, "value": float("inf")} and "diverged" in h.stop_reason
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    with pytest.raises(Diverged):
        StepContext(model, torch.optim.SGD(model.parameters(), lr=0.1), loss_fn=F.cross_entropy,
                    max_loss=1.0).check(torch.tensor(2.0))


def test_config_round_trip():
    step = StandardStep(clip_grad_norm=1.5)
    again = StandardStep.from_config(step.get_config())
    assert again.get_config() == {"clip_grad_norm": 1.5, "clip_grad_value": None}


@pytest.mark.parametrize("make, msg", [
    (lambda: StandardStep(clip_grad_norm=0), r"clip_grad_norm must be > 0 or None, got 0.0"),
    (lambda: StandardStep(clip_grad_value=-1), r"clip_grad_value must be > 0 or None, got -1.0"),
    (lambda: StandardStep(clip_grad_norm="1"), r"clip_grad_norm must be a number, got '1'"),
    (lambda: StandardStep(clip_grad_norm=1, clip_grad_value=1),
     r"clip by norm or by value, not both: got clip_grad_norm=1.0 and clip_grad_value=1.0"),
])
def test_bad_step_options(make, msg):
    with pytest.raises(RegularkitError, match=msg):
        make()


def bad_fit(**kw):
    x, y = data(n=16)
    model = net()
    args = {"optimizer": torch.optim.SGD(model.parameters(), lr=0.1), "epochs": 1, "batch_size": 8, **kw}
    return fit(model, (x, y), **args)


@pytest.mark.parametrize("kw, msg", [
    ({"step": StandardStep}, r"step must be a training step step\(ctx, x, y\) -> StepOutput .*got the class "
                             r"StandardStep"),
    ({"step": "sam"}, r"step must be a training step .* got 'sam'"),
    ({"optimizer": torch.optim.SGD(nn.Linear(5, 3).parameters(), lr=0.1)},
     r"optimizer holds 2 parameter tensor\(s\), none of them the model's \(built for another model\?\)"),
    ({"loss_terms": [lambda m: m[0].weight.pow(2).sum(1)]},
     r"loss_terms\[0\] \(function\) returned a tensor of shape \(16,\); a loss must be one number"),
    ({"loss_fn": lambda logits, t: F.cross_entropy(logits, t, reduction="none")},
     r"loss_fn returned a tensor of shape \(8,\); a loss must be one number"),
])
def test_bad_fit_arguments_are_one_line(kw, msg):
    with pytest.raises(RegularkitError, match=msg):
        bad_fit(**kw)
