"""fit / evaluate: references, determinism and hook points."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit import penalties as P
from regularkit.data import streaming
from regularkit.data.streaming import Streamed
from regularkit.errors import RegularkitError
from regularkit.train import evaluate, fit


def data(n=96, d=5, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(0, k, (n,), generator=g)


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))


def test_evaluate_matches_manual_reference():
    x, y = data()
    model = net()
    loss, err = evaluate(model, x, y, batch_size=7)  # uneven batches on purpose
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert err == pytest.approx((logits.argmax(1) != y).float().mean().item())


def test_evaluate_uses_eval_mode_and_restores_training_mode():
    x, y = data()
    model = net()
    model.train()
    a = evaluate(model, x, y)
    b = evaluate(model, x, y)
    assert a == b  # dropout off: deterministic
    assert model.training


def test_evaluate_soft_targets_use_argmax_for_error():
    x, y = data()
    soft = F.one_hot(y, 3).float() * 0.8 + 0.2 / 3
    model = net()
    assert evaluate(model, x, soft)[1] == evaluate(model, x, y)[1]


def run(seed):
    x, y = data()
    model = net(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    h = fit(model, (x, y), optimizer=opt, epochs=3, batch_size=10, eval_sets={"train": (x, y)}, seed=seed)
    return h, model


def test_same_seed_same_metrics_and_weights():
    (h1, m1), (h2, m2) = run(1), run(1)
    strip = lambda h: [{k: v for k, v in e.items() if "seconds" not in k} for e in h.epochs]
    assert strip(h1) == strip(h2)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p, q)


def test_different_seed_different_order():
    (h1, _), (h2, _) = run(1), run(2)
    assert h1.epochs[-1]["train_loss"] != h2.epochs[-1]["train_loss"]


def test_fit_leaves_global_rng_untouched():
    x, y = data()
    model = net(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    fit(model, (x, y), optimizer=opt, epochs=2, batch_size=10, seed=5)  # dropout draws random numbers
    assert torch.equal(before, torch.get_rng_state())


def test_loss_term_adds_its_gradient():
    x, y = data(n=8)
    torch.manual_seed(0)
    a = nn.Linear(5, 3)
    b = nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    w0 = a.weight.detach().clone()
    lam, lr = 0.3, 0.1
    fit(a, (x, y), optimizer=torch.optim.SGD(a.parameters(), lr=lr), epochs=1, batch_size=8,
        loss_terms=[lambda m: lam / 2 * (m.weight ** 2).sum()])
    fit(b, (x, y), optimizer=torch.optim.SGD(b.parameters(), lr=lr), epochs=1, batch_size=8)
    # Same data, same start: the only difference is lr * (lam * w0) from the penalty's gradient.
    assert torch.allclose(b.weight - a.weight, lr * lam * w0, atol=1e-6)
    assert torch.allclose(a.bias, b.bias)


def test_after_step_runs_after_every_step_and_batch_transform_sees_every_batch():
    x, y = data(n=50)
    model = nn.Linear(5, 3)
    seen, steps = [], []

    def transform(xb, yb, generator):
        seen.append(xb.shape[0])
        return xb * 0, yb

    def clamp(m):
        steps.append(1)
        with torch.no_grad():
            m.weight.clamp_(-0.01, 0.01)

    fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=1.0), epochs=2, batch_size=16,
        batch_transform=transform, after_step=[clamp])
    assert seen == [16, 16, 16, 2] * 2  # odd last batch kept
    assert len(steps) == 8
    assert model.weight.abs().max() <= 0.01


def test_mismatched_rows_is_a_clear_error():
    x, y = data()
    with pytest.raises(RegularkitError, match="x has 96 rows but y has 95"):
        fit(nn.Linear(5, 3), (x, y[:-1]), optimizer=torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1),
            epochs=1, batch_size=8)


@pytest.mark.parametrize("kw,msg", [({"epochs": 0}, "epochs must be >= 1, got 0"),
                                    ({"batch_size": 0}, "batch_size must be >= 1, got 0")])
def test_bad_loop_arguments(kw, msg):
    x, y = data()
    m = nn.Linear(5, 3)
    args = {"epochs": 1, "batch_size": 8, **kw}
    with pytest.raises(RegularkitError, match=msg):
        fit(m, (x, y), optimizer=torch.optim.SGD(m.parameters(), lr=0.1), **args)


def test_per_epoch_metrics_measure_plain_cross_entropy_not_the_training_loss():
    """One measuring function: with a smoothed training loss the recorded val loss is still plain CE."""
    x, y = data()
    model = net()
    smoothed = lambda logits, t: F.cross_entropy(logits, t, label_smoothing=0.4)  # noqa: E731
    h = fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, batch_size=32,
            loss_fn=smoothed, eval_sets={"val": (x, y)})
    assert h.last()["val_loss"] == pytest.approx(evaluate(model, x, y)[0], rel=1e-6)
    model.eval()
    with torch.no_grad():
        assert h.last()["val_loss"] != pytest.approx(smoothed(model(x), y).item(), rel=1e-3)


class Scheduled:
    """A loss term with a schedule: records the step count at each call."""

    def __init__(self, unit):
        self.schedule_unit, self.step_count, self.seen = unit, 0, []

    def step(self):
        self.step_count += 1

    def __call__(self, model):
        self.seen.append(self.step_count)
        return torch.zeros(())


@pytest.mark.parametrize("unit, expected", [("step", list(range(9))), ("epoch", [0, 0, 0, 1, 1, 1, 2, 2, 2])])
def test_fit_advances_schedules_per_step_or_per_epoch(unit, expected):
    x, y = data(n=96)
    term = Scheduled(unit)
    model = net()
    fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, batch_size=32,
        loss_terms=[term])
    assert term.seen == expected and term.step_count == (9 if unit == "step" else 3)


@pytest.mark.parametrize("lr, bound, what", [(1e6, 1e4, "nan"), (0.1, 0.5, "bound")])
def test_divergence_stops_within_one_step_before_the_update(lr, bound, what):
    x, y = data()
    x = x * 1e3 if what == "nan" else x
    model = net()
    calls = []

    def record(m):
        calls.append(1)

    opt = torch.optim.SGD(model.parameters(), lr=lr)
    h = fit(model, (x, y), optimizer=opt, epochs=5, batch_size=32, after_step=[record], max_loss=bound,
            eval_sets={"val": (x, y)})
    d = h.diverged
    assert d is not None and h.stopped_epoch == d["epoch"]
    assert "diverged" in h.stop_reason and f"step {d['step']}" in h.stop_reason
    # the bad step was never applied: the number of completed steps is the one before it
    assert len(calls) == (d["epoch"] - 1) * 3 + d["step"] - 1
    assert not (d["value"] <= bound)  # NaN, inf or above the bound
    if what == "bound":  # nothing non-finite was ever applied
        assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bf16_autocast_on_cpu_trains_and_measures_in_float32():
    x, y = data()
    model = net()
    h = fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=32,
            precision="bf16", eval_sets={"train": (x, y)})
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32
    assert h.diverged is None and h.last()["train_error"] < 0.8
    with pytest.raises(RegularkitError, match=r"precision must be one of 'fp32', 'bf16', 'fp16'; got 'fp8'"):
        fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, batch_size=32,
            precision="fp8")


def strength_schedule(step):  # module level: the penalties pickle
    return 0.01 * (1 + step % 3)


def train_with(penalties_, *, precision="fp32", epochs=3, momentum=0.9, activity=False):
    """Three epochs of SGD-momentum (dropout on, seeded) with the given loss terms; returns (History, model)."""
    x, y = data(n=60)
    model = net(0)
    terms = list(penalties_)
    act = None
    if activity:
        act = P.ActivityPenalty([model[1]], l1=1e-3)
        terms.append(act)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    h = fit(model, (x, y), optimizer=opt, epochs=epochs, batch_size=16, loss_terms=terms, seed=4,
            precision=precision, eval_sets={"val": (x, y)})
    if act is not None:
        act.detach()
    return h, model


FUSED_CASES = {
    "l2": lambda fused: [P.L2(0.01, fused=fused)],
    "l2_half_n": lambda fused: [P.L2(0.05, convention="half", n=60, fused=fused)],
    "l1_scheduled": lambda fused: [P.L1(strength_schedule, fused=fused)],
    "elastic_and_lp_root": lambda fused: [P.ElasticNet(0.002, 0.01, fused=fused),
                                          P.Lp(3.0, 0.01, root=True, fused=fused)],
    "pattern": lambda fused: [P.L2(0.05, pattern=r"^3\.", fused=fused)],
}


@pytest.mark.parametrize("case", FUSED_CASES.values(), ids=FUSED_CASES.keys())
def test_fused_penalties_train_like_penalties_in_the_graph(case):
    """Same seed: the weights after every step and the recorded objective are those of the autograd path."""
    (h_fused, m_fused), (h_graph, m_graph) = train_with(case(True)), train_with(case(False))
    for p, q in zip(m_fused.parameters(), m_graph.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    for a, b in zip(h_fused.epochs, h_graph.epochs):
        assert a["train_objective"] == pytest.approx(b["train_objective"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    # the control: without the penalty the weights are measurably elsewhere
    _, bare = train_with([])
    assert not all(torch.allclose(p, q, atol=1e-4) for p, q in zip(bare.parameters(), m_fused.parameters()))


def test_fit_routes_fused_terms_after_backward_and_the_rest_through_the_graph():
    calls = []

    class Spy(P.L2):
        def __call__(self, model):
            calls.append("graph")
            return super().__call__(model)

        def add_grad_(self, model):
            calls.append("fused" if model[0].weight.grad is not None else "before backward")
            return super().add_grad_(model)

    x, y = data(n=32)
    model = net()
    fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=1, batch_size=16,
        loss_terms=[Spy(0.01), Spy(0.01, fused=False)])
    assert sorted(calls) == ["fused", "fused", "graph", "graph"]
    # an activity penalty stays in the graph next to a fused weight penalty, and the run equals the graph one
    (h1, m1), (h2, m2) = train_with([P.L2(0.01)], activity=True), train_with([P.L2(0.01, fused=False)], activity=True)
    for p, q in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert h1.last()["train_objective"] == pytest.approx(h2.last()["train_objective"], rel=1e-5)


def test_a_fused_penalty_value_counts_in_the_divergence_check():
    x, y = data(n=32)
    model = net()
    before = [p.detach().clone() for p in model.parameters()]
    h = fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=16,
            loss_terms=[P.L2(1e6)], max_loss=100.0)
    assert h.diverged is not None and h.diverged["step"] == 1 and h.diverged["value"] > 100.0
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))  # stopped before the update


def test_fp16_loss_scaling_adds_the_penalty_gradient_unscaled():
    """GradScaler works on the CPU in torch >= 2.3: a penalty gradient added to scaled gradients would be
    divided by the scale (65536) at the step and the weights would match the run without the penalty."""
    try:
        torch.amp.GradScaler("cpu")
        with torch.autocast("cpu", dtype=torch.float16):
            torch.ones(2, 2) @ torch.ones(2, 2)
    except (RuntimeError, TypeError, ValueError) as exc:  # pragma: no cover - older torch
        pytest.skip(f"fp16 autocast / GradScaler unavailable on the CPU in torch {torch.__version__}: {exc}")
    (h1, m1), (h2, m2) = train_with([P.L2(0.05)], precision="fp16"), train_with([P.L2(0.05, fused=False)],
                                                                               precision="fp16")
    _, bare = train_with([], precision="fp16")
    for p, q, r in zip(m1.parameters(), m2.parameters(), bare.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    assert not all(torch.allclose(p, r, atol=1e-4) for p, r in zip(m1.parameters(), bare.parameters()))
    assert h1.last()["train_objective"] == pytest.approx(h2.last()["train_objective"], rel=1e-4)


class Rows:
    """A streaming source over a tensor's rows: ``read(i)`` is row ``i`` (what a decoded file would be)."""

    def __init__(self, x):
        self.x, self.sample_shape = x, tuple(x.shape[1:])

    def __len__(self):
        return len(self.x)

    def read(self, i):
        return self.x[i].numpy()

    def describe(self):
        return "rows"


def noisy(x, y, generator):  # a batch transform drawing from fit's generator, as augmentations do
    return x + 0.1 * torch.randn(x.shape, generator=generator), y


@pytest.mark.parametrize("workers", [0, 1])
def test_a_streamed_split_trains_and_measures_exactly_as_its_tensor(workers):
    """Same permutation, same batches (the last one short, or dropped), same dropout masks: same numbers."""
    x, y = data(n=53)
    xv, yv = data(n=21, seed=1)
    results = []
    for xs, xvs in ((x, xv), (Streamed(Rows(x), num_workers=workers), Streamed(Rows(xv), num_workers=workers))):
        model = net(0)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        h = fit(model, (xs, y), optimizer=opt, epochs=2, batch_size=8, eval_sets={"train": (xs, y), "val": (xvs, yv)},
                seed=4, batch_transform=noisy, drop_last=True)
        results.append(([{k: v for k, v in e.items() if "seconds" not in k} for e in h.epochs],
                        [p.detach().clone() for p in model.parameters()], evaluate(model, xvs, yv, batch_size=5)))
    (h1, w1, e1), (h2, w2, e2) = results
    assert h1 == h2 and e1 == e2
    assert all(torch.equal(p, q) for p, q in zip(w1, w2))


def test_a_streamed_split_of_large_samples_is_evaluated_in_smaller_batches(monkeypatch):
    """Batches bounded in bytes: the same errors, the loss equal to float rounding."""
    x, y = data(n=40)
    monkeypatch.setattr(streaming, "EVAL_BATCH_BYTES", 3 * 5 * 4)  # 3 samples of 5 float32 per batch
    xs = streaming.Streamed(Rows(x))
    assert xs.eval_batch(1024) == 3
    model = net(0)
    (l1, e1), (l2, e2) = evaluate(model, x, y), evaluate(model, xs, y)
    assert e1 == e2 and l2 == pytest.approx(l1, rel=1e-6)
    with pytest.raises(RegularkitError, match=r"^evaluate: x must be a torch\.Tensor or a streamed split "
                                              r"\(regularkit\.data\.streaming\.Streamed\), got a list$"):
        evaluate(model, [[0.0] * 5], y[:1])
