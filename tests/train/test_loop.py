"""fit / evaluate: references, determinism and hook points."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

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
