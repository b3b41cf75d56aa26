"""AugMix: the mixing formula, the sampling laws of weights, depths and ops; the JSD loss against timm's formula."""
import pytest
import torch
import torch.nn.functional as F

import regularkit.augment as A
from regularkit.augment.augmix import AUGMIX_ALL, AUGMIX_PARTIAL
from regularkit.augment.auto import magnitude_table
from regularkit.augment.ops import OPS, apply_ops
from regularkit.errors import RegularkitError


def gen(seed):
    return torch.Generator().manual_seed(seed)


def proxy(n, h=30, w=30):
    return torch.empty(()).expand(n, 3, h, w)


# --------------------------------------------------------------------------- the mix
def test_output_is_m_x_plus_the_weighted_chains():
    x = torch.rand(8, 3, 10, 9, generator=gen(0), dtype=torch.float64)
    op = A.AugMix(mixture_width=2)
    p = op.make_params(x, gen(1))
    expected = p["weights"][:, 0].double().view(-1, 1, 1, 1) * x
    for c in range(2):
        chain = x
        for s in range(p["op"].shape[2]):
            chain = apply_ops(chain, p["op"][:, c, s], p["magnitude"][:, c, s], interpolation="bilinear")
        expected = expected + p["weights"][:, c + 1].double().view(-1, 1, 1, 1) * chain
    torch.testing.assert_close(op.apply(x, None, p)[0], expected, rtol=0, atol=1e-12)
    x8 = (x * 255).round().to(torch.uint8)
    out8 = op.apply(x8, None, p)[0]
    assert out8.dtype == torch.uint8 and not torch.equal(out8, x8)


def test_identity_chains_return_the_image():
    x = torch.rand(5, 3, 8, 8, generator=gen(2))
    op = A.AugMix()
    p = op.make_params(x, gen(3))
    p["op"] = torch.zeros_like(p["op"])
    torch.testing.assert_close(op.apply(x, None, p)[0], x, rtol=1e-6, atol=1e-6)  # weights sum to 1
    for value in (0, 255):  # uint8: rounded and clamped to [0, 255], the extremes kept
        x8 = torch.full((5, 3, 8, 8), value, dtype=torch.uint8)
        assert torch.equal(op.apply(x8, None, p)[0], x8)


def test_weights_are_beta_times_dirichlet_per_sample():
    n = 20_000
    p = A.AugMix(mixture_width=4, alpha=1.0).make_params(proxy(n), gen(4))
    w = p["weights"]
    torch.testing.assert_close(w.sum(1), torch.ones(n), rtol=0, atol=1e-5)
    assert (w > 0).all()
    m = w[:, 0]  # Beta(1, 1) = U(0, 1): mean 1/2, variance 1/12
    assert abs(m.mean() - 0.5) < 0.01 and abs(m.var() - 1 / 12) < 0.003
    share = w[:, 1:] / (1 - m).unsqueeze(1)  # Dirichlet(1,1,1,1): mean 1/4, variance 3/80
    assert (share.mean(0) - 0.25).abs().max() < 0.01 and (share.var(0) - 3 / 80).abs().max() < 0.003


def test_depths_uniform_in_1_to_3_or_fixed_and_ops_from_the_augmix_spaces():
    n = 12_000
    p = A.AugMix().make_params(proxy(n), gen(5))
    depth = (p["op"] != 0).sum(2).flatten()  # AugMix's spaces have no identity: depth = ops applied
    share = torch.bincount(depth, minlength=4)[1:].float() / depth.numel()
    assert (share - 1 / 3).abs().max() < 0.015
    used = set(p["op"][p["op"] != 0].unique().tolist())
    assert used == {OPS.index(k) for k in AUGMIX_ALL}
    partial = A.AugMix(all_ops=False, chain_depth=2, severity=1).make_params(proxy(2000), gen(6))
    assert set(partial["op"].unique().tolist()) == {OPS.index(k) for k in AUGMIX_PARTIAL}
    assert partial["op"].shape[2] == 2 and (partial["op"] != 0).all()
    # severity 1: bin 0 of every range, i.e. magnitude 0 (posterize 4 bits, solarize threshold 1)
    post = partial["magnitude"][partial["op"] == OPS.index("posterize")]
    sol = partial["magnitude"][partial["op"] == OPS.index("solarize")]
    shear = partial["magnitude"][partial["op"] == OPS.index("shear_x")]
    assert set(post.tolist()) == {4.0} and set(sol.tolist()) == {1.0} and set(shear.abs().tolist()) == {0.0}


def test_magnitude_bins_are_torchvisions_augmix_space():
    t = magnitude_table(AUGMIX_ALL, 10, 30, 36)
    assert t[OPS.index("posterize")].tolist() == [4, 4, 3, 3, 2, 2, 1, 1, 0, 0]  # 4 - round(k / 2.25)
    assert t[OPS.index("solarize"), 0] == 1 and t[OPS.index("solarize"), 9] == 0
    for name, top in (("shear_x", 0.3), ("rotate", 30.0), ("translate_x", 36 / 3), ("translate_y", 30 / 3),
                      ("brightness", 0.9), ("sharpness", 0.9)):
        assert t[OPS.index(name), 9].item() == pytest.approx(top) and t[OPS.index(name), 0] == 0, name
        assert t[OPS.index(name), 3].item() == pytest.approx(top / 3), name
    assert A.AugMix(mixture_width=1).make_params(proxy(4), gen(0))["weights"].shape == (4, 2)


def test_bad_arguments_name_the_value():
    with pytest.raises(RegularkitError, match=r"severity must be in \[1, 10\], got 11"):
        A.AugMix(severity=11)
    with pytest.raises(RegularkitError, match="chain_depth must be -1 .* got 0"):
        A.AugMix(chain_depth=0)
    with pytest.raises(RegularkitError, match="alpha must be > 0"):
        A.AugMix(alpha=0.0)


# --------------------------------------------------------------------------- Jensen-Shannon consistency loss
def timm_jsd(logits, target, alpha, smoothing):
    """timm's JsdCrossEntropy (num_splits=3) restated in plain torch on the stacked 3N batch."""
    n = logits.shape[0] // 3
    clean, a1, a2 = logits[:n], logits[n:2 * n], logits[2 * n:]
    logp = F.log_softmax(clean, 1)
    nll = -logp.gather(1, target[:n, None]).squeeze(1)
    ce = ((1 - smoothing) * nll + smoothing * -logp.mean(1)).mean()
    probs = [F.softmax(z, 1) for z in (clean, a1, a2)]
    log_m = ((probs[0] + probs[1] + probs[2]) / 3).clamp(1e-7, 1).log()
    kl = [(p * (p.log() - log_m)).sum() / n for p in probs]
    return ce + alpha * (kl[0] + kl[1] + kl[2]) / 3


@pytest.mark.parametrize("alpha, smoothing", [(12.0, 0.0), (12.0, 0.1), (3.0, 0.0)])
def test_jsd_cross_entropy_matches_timms_formula(alpha, smoothing):
    logits = torch.randn(3 * 7, 5, generator=gen(7), dtype=torch.float64) * 3
    y = torch.randint(0, 5, (7,), generator=gen(8))
    ours = A.jsd_cross_entropy(logits[:7], logits[7:14], logits[14:], y, alpha, label_smoothing=smoothing)
    torch.testing.assert_close(ours, timm_jsd(logits, y.repeat(3), alpha, smoothing), rtol=1e-10, atol=1e-12)
    module = A.JsdCrossEntropy(alpha, label_smoothing=smoothing)
    torch.testing.assert_close(module(logits[:7], logits[7:14], logits[14:], y), ours)


def test_jsd_is_zero_for_identical_predictions_and_positive_otherwise():
    z = torch.randn(6, 4, generator=gen(9))
    y = torch.randint(0, 4, (6,), generator=gen(10))
    ce = F.cross_entropy(z, y)
    torch.testing.assert_close(A.jsd_cross_entropy(z, z, z, y), ce)
    assert A.jsd_cross_entropy(z, z + torch.randn(6, 4, generator=gen(11)), z, y) > ce + 1e-3
    soft = torch.softmax(torch.randn(6, 4, generator=gen(12)), 1)  # soft targets: CE = -sum y log p
    torch.testing.assert_close(A.jsd_cross_entropy(z, z, z, soft), -(soft * F.log_softmax(z, 1)).sum(1).mean())
    with pytest.raises(RegularkitError, match="alpha must be >= 0, got -1"):
        A.jsd_cross_entropy(z, z, z, y, -1.0)
    with pytest.raises(RegularkitError, match=r"one shape, got \[\(6, 3\), \(6, 4\)\]"):
        A.jsd_cross_entropy(z, z[:, :3], z, y)


def test_augmix_views_are_two_independent_draws():
    x = torch.rand(4, 3, 8, 8, generator=gen(13))
    clean, a1, a2 = A.augmix_views(x, A.AugMix(), generator=gen(14))
    assert clean is x and not torch.equal(a1, a2) and a1.shape == x.shape
