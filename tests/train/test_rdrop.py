"""R-Drop: the symmetric KL and the loss against the paper's formula in plain torch and NumPy, the step in fit."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError
from regularkit.losses import cross_entropy
from regularkit.train import RDrop, StandardStep, fit
from regularkit.train.rdrop import rdrop_loss, symmetric_kl
from regularkit.train.step import StepContext


def logits_pair(n=6, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, k, generator=g) * 2, torch.randn(n, k, generator=g) * 2
    return a, b, torch.randint(0, k, (n,), generator=g)


def test_symmetric_kl_is_the_papers_two_kl_divergences_averaged():
    a, b, _ = logits_pair()
    # plain torch, the authors' compute_kl_loss with batch-mean reduction
    kl_ab = F.kl_div(F.log_softmax(b, -1), F.softmax(a, -1), reduction="batchmean")   # KL(P_a || P_b)
    kl_ba = F.kl_div(F.log_softmax(a, -1), F.softmax(b, -1), reduction="batchmean")
    assert float(symmetric_kl(a, b)) == pytest.approx(float(0.5 * (kl_ab + kl_ba)), rel=1e-6)
    # NumPy
    pa, pb = (np.exp(v) / np.exp(v).sum(1, keepdims=True) for v in (a.double().numpy(), b.double().numpy()))
    kl = lambda p, q: (p * np.log(p / q)).sum(1).mean()  # noqa: E731
    assert float(symmetric_kl(a, b)) == pytest.approx(0.5 * (kl(pa, pb) + kl(pb, pa)), rel=1e-6)
    assert float(symmetric_kl(a, a)) == 0.0 and float(symmetric_kl(a, b)) == pytest.approx(float(symmetric_kl(b, a)))


@pytest.mark.parametrize("alpha", [0.0, 0.7, 5.0])
def test_rdrop_loss_is_half_the_papers_loss(alpha):
    """L_paper = CE1 + CE2 + alpha * 1/2 (KL(P1||P2) + KL(P2||P1)) (Liang et al. eq. 3), per sample; ours is half."""
    a, b, y = logits_pair()
    per_sample = [F.cross_entropy(a[i:i + 1], y[i:i + 1]) + F.cross_entropy(b[i:i + 1], y[i:i + 1])
                  + alpha * 0.5 * (F.kl_div(F.log_softmax(b[i], -1), F.softmax(a[i], -1), reduction="sum")
                                   + F.kl_div(F.log_softmax(a[i], -1), F.softmax(b[i], -1), reduction="sum"))
                  for i in range(len(y))]
    paper = torch.stack(per_sample).mean()
    assert float(rdrop_loss(a, b, y, alpha=alpha)) == pytest.approx(float(paper) / 2, rel=1e-6)
    smoothed = lambda logits, t: cross_entropy(logits, t, label_smoothing=0.1)  # noqa: E731
    assert float(rdrop_loss(a, b, y, alpha=alpha, loss_fn=smoothed)) == pytest.approx(
        float(0.5 * (smoothed(a, y) + smoothed(b, y)) + alpha / 2 * symmetric_kl(a, b)), rel=1e-6)


def net(dropout=0.3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3))


def data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_the_step_uses_two_dropout_masks_and_the_formula():
    """One step through a StepContext (lr 0: nothing moves): the recorded objective is the formula on the two
    halves of the one forward of [x; x], whose dropout masks differ."""
    x, y = data(n=8)
    model = net()
    outputs = []
    model.register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    ctx = StepContext(model, torch.optim.SGD(model.parameters(), lr=0.0), loss_fn=F.cross_entropy,
                      loss_terms=[P.L2(0.01, fused=False)])
    out = RDrop(0.8)(ctx, x, y)
    (both,) = outputs
    l1, l2 = both[:8], both[8:]
    assert not torch.allclose(l1, l2)                       # two dropout masks
    expected = rdrop_loss(l1, l2, y, alpha=0.8) + P.L2(0.01)(model)   # the penalty once, not per pass
    assert float(out.loss) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert torch.equal(out.logits, l1)


def run(step, *, dropout=0.3, terms=()):
    x, y = data()
    model = net(dropout)
    h = fit(model, (x, y), optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), epochs=2,
            batch_size=16, seed=1, step=step, loss_terms=list(terms))
    return h, model


def restated_rdrop(alpha, *, lr=0.1, epochs=2, batch_size=16, seed=1):
    """Plain torch: two passes in one forward of [x; x], 1/2 (CE1 + CE2) + alpha/2 * 1/2 (KL12 + KL21)."""
    x, y = data()
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x), batch_size):
                idx = order[i:i + batch_size]
                p, q = model(torch.cat([x[idx], x[idx]])).chunk(2)
                kl = 0.5 * (F.kl_div(F.log_softmax(q, -1), F.softmax(p, -1), reduction="batchmean")
                            + F.kl_div(F.log_softmax(p, -1), F.softmax(q, -1), reduction="batchmean"))
                loss = 0.5 * (F.cross_entropy(p, y[idx]) + F.cross_entropy(q, y[idx]) + alpha * kl)
                opt.zero_grad()
                loss.backward()
                opt.step()
    return model


def test_fit_with_rdrop_matches_a_plain_torch_restatement():
    _, model = run(RDrop(1.5))
    reference = restated_rdrop(1.5)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    _, plain = run(StandardStep())
    assert not torch.allclose(plain[0].weight, model[0].weight, atol=1e-4)


def test_without_dropout_rdrop_is_the_standard_step():
    """P1 = P2: the KL is 0 and 1/2 (CE + CE) = CE, so the weights are those of plain training."""
    (h1, a), (h2, b) = run(RDrop(3.0), dropout=0.0), run(StandardStep(), dropout=0.0)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert h1.last()["train_objective"] == pytest.approx(h2.last()["train_objective"], rel=1e-5)


def test_fused_penalty_with_rdrop_trains_like_the_penalty_in_the_graph():
    (_, a), (_, b) = run(RDrop(1.0), terms=[P.L2(0.05)]), run(RDrop(1.0), terms=[P.L2(0.05, fused=False)])
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_config_round_trip_and_bad_alpha():
    assert RDrop.from_config(RDrop(0.6).get_config()).get_config() == {"alpha": 0.6}
    with pytest.raises(RegularkitError, match=r"alpha must be >= 0, got -1"):
        RDrop(-1)
