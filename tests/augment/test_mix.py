"""MixUp, CutMix and soft targets: exact label weights, pairing for any batch size, smoothing order."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import regularkit.augment as A
from regularkit._util import rng
from regularkit.augment.mix import partner_index
from regularkit.errors import RegularkitError
from regularkit.targets import soft_targets_for

K = 7


def gen(seed):
    return torch.Generator().manual_seed(seed)


def labelled(n, seed, h=6, w=5):
    g = gen(seed)
    return torch.rand(n, 3, h, w, generator=g), torch.randint(0, K, (n,), generator=g)


# --------------------------------------------------------------------------- soft targets
def test_to_soft_targets_one_hot_and_smoothing_formula():
    y = torch.tensor([0, 3, 6])
    hot = A.to_soft_targets(y, K)
    assert torch.equal(hot, torch.eye(K)[y])
    smooth = A.to_soft_targets(y, K, label_smoothing=0.1)
    np.testing.assert_allclose(smooth.numpy(), 0.9 * np.eye(K)[y.numpy()] + 0.1 / K, rtol=1e-6)
    soft = torch.softmax(torch.randn(3, K), 1)
    torch.testing.assert_close(A.to_soft_targets(soft, K, 0.2), 0.8 * soft + 0.2 / K)


@pytest.mark.parametrize("y, k, kw, match", [
    (torch.tensor([0, 7]), 7, {}, "class index 7 is out of range for num_classes=7"),
    (torch.tensor([-1, 0]), 7, {}, "class index -1 is out of range for num_classes=7"),
    (torch.rand(2, 3), 7, {}, "soft targets y must have num_classes=7 columns, got 3"),
    (torch.tensor([0, 1]), 7, {"label_smoothing": 1.5}, r"label_smoothing must be in \[0.0, 1.0\], got 1.5"),
    (torch.tensor([0.0, 1.0]), 7, {},
     r"class indices \(N,\) of an integer dtype or soft targets N x K, got shape \(2,\)"),
    (torch.tensor([0, 1]), 0, {}, "num_classes must be >= 1, got 0"),
])
def test_to_soft_targets_errors(y, k, kw, match):
    with pytest.raises(RegularkitError, match=match):
        A.to_soft_targets(y, k, **kw)


# --------------------------------------------------------------------------- pairing
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_shuffle_pairing_is_one_cycle_without_self_pairs(n, seed):
    x = torch.empty(n, 1, 1, 1)
    partner = partner_index(n, "shuffle", x, gen(seed))
    assert sorted(partner.tolist()) == list(range(n))  # a permutation: each sample is a partner once
    if n >= 2:
        assert (partner != torch.arange(n)).all()
        i, seen = 0, set()  # a single cycle through the whole batch
        while i not in seen:
            seen.add(i)
            i = int(partner[i])
        assert len(seen) == n


def test_flip_pairing_matches_timm_and_leaves_odd_middle_unmixed():
    x, y = labelled(5, 0)
    op = A.MixUp(num_classes=K, pairing="flip")
    p = op.make_params(x, gen(0))
    assert p["partner"].tolist() == [4, 3, 2, 1, 0]
    out, y_out = op.apply(x, y, p)
    torch.testing.assert_close(out[2], x[2])
    torch.testing.assert_close(y_out[2], torch.eye(K)[y[2]])


def test_batch_of_one_is_returned_with_soft_targets():
    x, y = labelled(1, 0)
    for op in (A.MixUp(num_classes=K), A.CutMix(num_classes=K)):
        out, y_out = op(x, y, generator=gen(0))
        torch.testing.assert_close(out, x)
        torch.testing.assert_close(y_out, torch.eye(K)[y])


# --------------------------------------------------------------------------- MixUp
@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 9), seed=st.integers(0, 2**31 - 1), alpha=st.sampled_from([0.2, 1.0, 4.0]))
def test_mixup_matches_formula_and_has_at_most_two_classes(n, seed, alpha):
    x, y = labelled(n, seed)
    op = A.MixUp(alpha, num_classes=K)
    p = op.make_params(x, gen(seed))
    out, y_out = op.apply(x, y, p)
    lam, j = p["lam"].double().numpy(), p["partner"].numpy()
    xs, hot = x.double().numpy(), np.eye(K)[y.numpy()]
    ref_x = lam[:, None, None, None] * xs + (1 - lam[:, None, None, None]) * xs[j]
    np.testing.assert_allclose(out.numpy(), ref_x, atol=1e-6)
    np.testing.assert_allclose(y_out.numpy(), lam[:, None] * hot + (1 - lam[:, None]) * hot[j], atol=1e-6)
    assert ((y_out > 0).sum(1) <= 2).all() and (y_out >= 0).all()
    assert ((p["lam"] >= 0) & (p["lam"] <= 1)).all()


def test_mixup_lambda_is_beta_distributed_per_sample_or_per_batch():
    x = torch.empty(20000, 1, 1, 1)
    lam = A.MixUp(0.4, num_classes=K).make_params(x, gen(0))["lam"].double().numpy()
    # Beta(0.4, 0.4): mean 1/2, variance a^2 / ((2a)^2 (2a + 1)) = 1 / (4 (2a + 1))
    assert abs(lam.mean() - 0.5) < 0.01 and abs(lam.var() - 1 / (4 * 1.8)) < 0.01
    batch = A.MixUp(0.4, num_classes=K, per_sample=False).make_params(x[:50], gen(0))["lam"]
    assert len(set(batch.tolist())) == 1
    some = A.MixUp(1.0, num_classes=K, p=0.3).make_params(x, gen(0))["lam"]
    assert abs(float((some < 1).float().mean()) - 0.3) < 0.02


@pytest.mark.parametrize("alpha", [1e-4, 0.2, 1.0, 4.0])
def test_the_torch_beta_draw_follows_the_law_for_small_and_large_alpha(alpha):
    """``rng.beta`` (two torch Gamma draws in log space, issue 24): Kolmogorov-Smirnov against SciPy's
    Beta(alpha, alpha) CDF; a tiny alpha gives 0s and 1s in equal parts, never the 0/0 of underflowed gammas."""
    lam = rng.beta(4000, alpha, device="cpu", generator=gen(3)).double().numpy()
    assert np.isfinite(lam).all() and lam.min() >= 0 and lam.max() <= 1
    if alpha < 1e-3:
        ends = (lam < 1e-6) | (lam > 1 - 1e-6)
        # P(1e-6 < lam < 1 - 1e-6) is about 2 alpha ln(1e6) = 0.3 % for alpha = 1e-4
        assert ends.mean() > 0.99 and abs((lam < 0.5).mean() - 0.5) < 0.05
    else:
        assert stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    again = rng.beta(4000, alpha, device="cpu", generator=gen(3))
    assert torch.equal(again, torch.from_numpy(lam).float())  # a pure function of the generator's state


def test_label_smoothing_composes_exactly_with_mixing():
    """Smooth the one-hots then mix == mix the one-hots then smooth (the formula is affine)."""
    x, y = labelled(9, 3)
    smooth = A.MixUp(num_classes=K, label_smoothing=0.1)
    plain = A.MixUp(num_classes=K)
    p = smooth.make_params(x, gen(1))
    _, ys = smooth.apply(x, y, p)
    _, yp = plain.apply(x, y, p)
    torch.testing.assert_close(ys, 0.9 * yp + 0.1 / K)
    assert (ys > 0).all()
    # Soft targets coming in are taken as given: no second smoothing.
    _, again = smooth.apply(x, ys, {"lam": torch.ones(9), "partner": torch.arange(9)})
    torch.testing.assert_close(again, ys)


# --------------------------------------------------------------------------- CutMix
@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 9), seed=st.integers(0, 2**31 - 1), h=st.integers(1, 12), w=st.integers(1, 12))
def test_cutmix_lambda_equals_the_pasted_area_exactly(n, seed, h, w):
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 2, h, w).contiguous()
    y = torch.arange(n) % K
    op = A.CutMix(num_classes=K)
    p = op.make_params(x, gen(seed))
    out, y_out = op.apply(x, y, p)
    j = p["partner"]
    from_partner = (out == x[j]) & (x[j] != x)
    pasted = from_partner[:, 0].flatten(1).sum(1).double() / (h * w)
    self_paired = j == torch.arange(n)
    kept = torch.where(self_paired, torch.ones(n, dtype=torch.float64), 1 - pasted)
    box_area = ((p["bottom"] - p["top"]) * (p["right"] - p["left"])).double() / (h * w)
    torch.testing.assert_close(p["lam"].double()[~self_paired], kept[~self_paired], rtol=0, atol=1e-7)
    torch.testing.assert_close(p["lam"].double(), 1 - box_area, rtol=0, atol=1e-7)
    assert ((y_out > 0).sum(1) <= 2).all()
    torch.testing.assert_close(y_out.sum(1), torch.ones(n))
    # the label weight of the partner's class is the pasted fraction
    for i in torch.nonzero(~self_paired & (y != y[j])).flatten().tolist():
        assert abs(float(y_out[i, y[j[i]]]) - float(pasted[i])) < 1e-6


def test_cutmix_box_follows_the_lecture():
    """r_x ~ U(0, W) is the box centre, r_w = W sqrt(1 - lam): unclipped boxes have that size."""
    x = torch.empty(4000, 1, 64, 64)
    op = A.CutMix(1.0, num_classes=K)
    p = op.make_params(x, gen(0))
    width = (p["right"] - p["left"]).float()
    inside = (p["left"] > 0) & (p["right"] < 64) & (p["top"] > 0) & (p["bottom"] < 64)
    area = width * (p["bottom"] - p["top"]).float()
    assert inside.sum() > 100
    # For unclipped boxes height == width (a square image), both ~ 64 sqrt(1 - lam0).
    assert ((p["bottom"] - p["top"] - width).abs()[inside] <= 1).all()
    centre = (p["left"] + p["right"]).float()[inside] / 2
    assert 20 < float(centre.mean()) < 44
    assert float((area / 4096).mean()) < 0.5  # clipping only removes area


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_fused_switch_is_mixup_on_some_rows_and_exact_cutmix_on_the_others(n, seed):
    x = torch.rand(n, 2, 7, 6, generator=gen(seed))
    y = torch.arange(n) % K
    op = A.MixUpCutMix(0.5, 1.0, num_classes=K, switch_prob=0.5)
    p = op.make_params(x, gen(seed))
    out, y_out = op.apply(x, y, p)
    cut, lam, j = p["cut"], p["lam"], p["partner"]
    ref_mix = A.mixup(x, j, lam)
    ref_cut = A.cutmix(x, j, p["top"], p["left"], p["bottom"], p["right"])
    torch.testing.assert_close(out[~cut], ref_mix[~cut], atol=1e-6, rtol=0)
    assert torch.equal(out[cut], ref_cut[cut])
    area = ((p["bottom"] - p["top"]) * (p["right"] - p["left"])).double() / 42
    torch.testing.assert_close(lam.double()[cut], 1 - area[cut], atol=1e-7, rtol=0)
    assert (area[~cut] == 0).all()
    torch.testing.assert_close(y_out, A.mix_targets(torch.eye(K)[y], j, lam))


def test_fused_switch_probability_and_per_batch_mode():
    x = torch.empty(4000, 1, 4, 4)
    cut = A.MixUpCutMix(num_classes=K, switch_prob=0.3).make_params(x, gen(0))["cut"]
    assert abs(float(cut.float().mean()) - 0.3) < 0.03
    whole = A.MixUpCutMix(num_classes=K, per_sample=False).make_params(x[:64], gen(1))
    assert len(set(whole["cut"].tolist())) == 1


def test_mixing_ops_require_targets_and_classes():
    x, _ = labelled(3, 0)
    with pytest.raises(RegularkitError, match="MixUp mixes labels: pass targets y"):
        A.MixUp(num_classes=K)(x)
    with pytest.raises(TypeError):
        A.CutMix(1.0)  # num_classes is required
    with pytest.raises(RegularkitError, match="alpha must be > 0, got 0"):
        A.MixUp(0, num_classes=K)
    with pytest.raises(RegularkitError, match="pairing must be one of 'shuffle', 'flip'; got 'roll'"):
        A.CutMix(num_classes=K, pairing="roll")
    with pytest.raises(RegularkitError, match="soft targets y must have num_classes=7 columns, got 4"):
        A.MixUp(num_classes=K)(x, torch.full((3, 4), 0.25))


# --------------------------------------------------------------------------- any batch, integer images
@pytest.mark.parametrize("shape", [(7, 5), (7, 2, 9), (7,)])
def test_mixup_mixes_any_batch_along_dim_0(shape):
    """Vectors N x D, sequences N x C x L: the formula along dim 0, against NumPy."""
    x, y = torch.rand(shape, generator=gen(0)), torch.arange(7) % K
    op = A.MixUp(0.4, num_classes=K)
    p = op.make_params(x, gen(1))
    out, y_out = op(x, y, gen(1))
    lam, j = p["lam"].double().numpy(), p["partner"].numpy()
    lam_b = lam.reshape((-1,) + (1,) * (len(shape) - 1))
    np.testing.assert_allclose(out.numpy(), lam_b * x.double().numpy() + (1 - lam_b) * x.double().numpy()[j],
                               atol=1e-6)
    torch.testing.assert_close(y_out, A.mix_targets(torch.eye(K)[y], p["partner"], p["lam"]))
    for op in (A.CutMix(num_classes=K), A.MixUpCutMix(num_classes=K)):  # boxes need images
        with pytest.raises(RegularkitError, match=r"batch N x C x H x W or one image C x H x W, got shape \(7, 5\)"):
            op(torch.rand(7, 5), y)


def test_integer_images_mix_in_float_and_cutmix_copies_pixels():
    x, y = labelled(6, 2)
    x8 = (x * 255).round().to(torch.uint8)
    mix = A.MixUp(num_classes=K)
    p = mix.make_params(x8, gen(0))
    out, _ = mix.apply(x8, y, p)
    expected = torch.lerp(x8.double()[p["partner"]], x8.double(), p["lam"].double().view(-1, 1, 1, 1))
    assert out.dtype == torch.uint8 and (out.double() - expected).abs().max() <= 0.5 + 1e-4
    cut = A.CutMix(num_classes=K)
    q = cut.make_params(x8, gen(1))
    pasted, _ = cut.apply(x8, y, q)
    inside = A.box_mask(6, 5, q["top"], q["left"], q["bottom"], q["right"]).expand_as(x8)
    assert torch.equal(pasted[inside], x8[q["partner"]][inside]) and torch.equal(pasted[~inside], x8[~inside])


# --------------------------------------------------------------------------- torch.compile
@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


MIXERS = {"mixup": lambda: A.MixUp(num_classes=K, label_smoothing=0.1), "cutmix": lambda: A.CutMix(num_classes=K),
          "fused": lambda: A.MixUpCutMix(num_classes=K, label_smoothing=0.1)}


@pytest.mark.parametrize("targets", ["indices", "soft", "uint8"])
@pytest.mark.parametrize("name", sorted(MIXERS))
def test_mixing_apply_compiles_without_graph_breaks(fresh_dynamo, name, targets):
    """``apply`` has no ``.item()``, host sync or branch on tensor values: 0 graph breaks
    (``torch._dynamo.explain``, eager backend), and the compiled graph gives the eager output exactly."""
    op = MIXERS[name]()
    x, y = labelled(6, 3)
    if targets == "soft":
        y = torch.softmax(torch.randn(6, K, generator=gen(4)), 1)
    if targets == "uint8":
        x = (x * 255).round().to(torch.uint8)
    params = op.make_params(x, gen(5))
    explained = torch._dynamo.explain(op.apply)(x, y, params)
    assert explained.graph_break_count == 0, explained.break_reasons
    torch._dynamo.reset()
    out, y_out = torch.compile(op.apply, backend="eager", fullgraph=True)(x, y, params)
    ref, y_ref = op.apply(x, y, params)
    assert torch.equal(out, ref) and torch.equal(y_out, y_ref)


def test_graph_break_counter_sees_a_host_sync(fresh_dynamo):
    """The negative control: the eager target encoding range-checks indices on the host, and the counter sees it."""
    y = torch.arange(6) % K
    assert torch._dynamo.explain(lambda t: soft_targets_for(t, K, 0.1))(y).graph_break_count > 0


@pytest.mark.parametrize("h, w", [(64, 64), (20, 48), (7, 5)])
def test_cutmix_boxes_stay_inside_the_image_and_reach_every_border(h, w):
    """Centres uniform over the image, boxes clipped to it: every box lies inside [0, H] x [0, W], has
    top <= bottom and left <= right, and over many draws each of the four borders is reached."""
    x = torch.empty(4000, 1, h, w)
    for op in (A.CutMix(num_classes=K), A.MixUpCutMix(num_classes=K, switch_prob=1.0)):
        p = op.make_params(x, gen(8))
        top, left, bottom, right = p["top"], p["left"], p["bottom"], p["right"]
        assert ((0 <= top) & (top <= bottom) & (bottom <= h)).all() and ((0 <= left) & (left <= right)
                                                                          & (right <= w)).all()
        assert (top.min(), left.min(), bottom.max(), right.max()) == (0, 0, h, w)
        assert ((bottom > 0) & (right > 0) & (top < h) & (left < w))[(bottom > top) & (right > left)].all()
        area = ((bottom - top) * (right - left)).double() / (h * w)
        torch.testing.assert_close(p["lam"].double(), 1 - area, atol=1e-7, rtol=0)


def test_mixup_of_regression_values_mixes_the_targets_as_they_are_and_allows_one_output():
    import torch

    from regularkit.augment import MixUp
    from regularkit.errors import RegularkitError
    x = torch.arange(8.0).view(4, 2)
    y = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    m = MixUp(0.4, num_classes=1, targets="values", seed=0)
    params = m.make_params(x)
    xm, ym = m.apply(x, y, params)
    lam, partner = params["lam"].view(-1, 1), params["partner"]
    torch.testing.assert_close(ym, lam * y + (1 - lam) * y[partner])
    torch.testing.assert_close(xm, lam * x + (1 - lam) * x[partner])
    with pytest.raises(RegularkitError, match="num_classes must be >= 2, got 1"):
        MixUp(0.4, num_classes=1)
    with pytest.raises(RegularkitError, match=r"mixes regression targets N x 1, got torch.int64 of shape \(4,\)"):
        m(x, torch.arange(4))
