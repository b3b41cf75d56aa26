"""AugMix's training step (``train.augmix_step.AugMixJSD``): three views in one forward, CE + alpha x JS.

Reference: the paper's eq. (1)-(2) restated in plain torch (the mixture ``M`` of the three softmaxes,
``JS = 1/3 sum_i KL(p_i || M)``, batch mean), on the logits the model actually produced; the two
augmented views are the AugMix draws of the step's generator, in order.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regularkit.augment import AugMix
from regularkit.errors import RegularkitError
from regularkit.train.augmix_step import AugMixJSD
from regularkit.train.step import StepContext


def images(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g)


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))


def js_restated(l0, l1, l2):
    probs = [F.softmax(z, 1) for z in (l0, l1, l2)]
    m = torch.stack(probs).mean(0).clamp(1e-7, 1)
    return sum((p * (p.clamp_min(1e-30).log() - m.log())).sum(1).mean() for p in probs) / 3


def test_one_step_is_ce_on_the_clean_view_plus_alpha_js_of_the_three_views():
    x, y = images()
    net = model()
    seen = []
    net.register_forward_hook(lambda m, i, o: seen.append((i[0].detach(), o.detach())))
    ctx = StepContext(net, torch.optim.SGD(net.parameters(), lr=0.0), loss_fn=F.cross_entropy,
                      generator=torch.Generator().manual_seed(5))
    op = AugMix(severity=3, mixture_width=2)
    out = AugMixJSD(op, alpha=4.0)(ctx, x, y)
    ((inputs, logits),) = seen  # one forward of 3N rows
    assert inputs.shape == (18, 3, 8, 8)
    g = torch.Generator().manual_seed(5)
    aug1, aug2 = op(x, generator=g), op(x, generator=g)
    assert torch.equal(inputs[:6], x) and torch.equal(inputs[6:12], aug1) and torch.equal(inputs[12:], aug2)
    assert not torch.equal(aug1, aug2)  # two independent draws
    l0, l1, l2 = logits.chunk(3)
    expected = F.cross_entropy(l0, y) + 4.0 * js_restated(l0, l1, l2)
    assert float(out.loss) == pytest.approx(float(expected), rel=1e-5)
    assert torch.equal(out.logits, l0)  # the clean view's logits are reported


def test_alpha_zero_is_plain_cross_entropy_on_the_clean_view():
    x, y = images(seed=1)
    net = model()
    ctx = StepContext(net, torch.optim.SGD(net.parameters(), lr=0.0), loss_fn=F.cross_entropy,
                      generator=torch.Generator().manual_seed(2))
    out = AugMixJSD(AugMix(), alpha=0.0)(ctx, x, y)
    assert float(out.loss) == pytest.approx(float(F.cross_entropy(net(x), y).detach()), rel=1e-6)


def test_soft_targets_and_a_foreign_augmix_are_refused():
    x, _ = images()
    net = model()
    ctx = StepContext(net, torch.optim.SGD(net.parameters(), lr=0.0), loss_fn=F.cross_entropy)
    with pytest.raises(RegularkitError, match=r"AugMix's consistency loss needs class-index targets \(N,\), got "
                                              r"shape \(6, 4\)"):
        AugMixJSD(AugMix())(ctx, x, torch.full((6, 4), 0.25))
    with pytest.raises(RegularkitError, match=r"augmix must be a regularkit.augment.AugMix, got Identity"):
        AugMixJSD(nn.Identity())
    with pytest.raises(RegularkitError, match=r"alpha"):
        AugMixJSD(AugMix(), alpha=-1.0)


def test_config_round_trip_gives_the_same_step():
    step = AugMixJSD(AugMix(severity=2, mixture_width=2, chain_depth=1), 6.0, label_smoothing=0.1)
    again = AugMixJSD.from_config(step.get_config())
    assert again.get_config() == step.get_config() and repr(again) == "AugMixJSD(severity=2, alpha=6.0)"
