"""Cutout and Random Erasing: box geometry, Algorithm 1 restated in NumPy, erased fraction, fills."""
import importlib
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import regularkit.augment as A
from regularkit.errors import RegularkitError

erase_module = importlib.import_module("regularkit.augment.erase")  # the package's `erase` is the kernel


def gen(seed):
    return torch.Generator().manual_seed(seed)

# --------------------------------------------------------------------------- erasing
def _erased(x, out):
    return (out != x).any(1)  # N x H x W


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.integers(1, 9))
def test_cutout_square_is_clipped_and_centred_uniformly(seed, size):
    x = torch.rand(16, 2, 8, 8, generator=gen(seed)) + 1.0
    op = A.Cutout(size)
    p = op.make_params(x, gen(seed))
    out, _ = op.apply(x, None, p)
    erased = _erased(x, out)
    for i in range(16):
        rows, cols = erased[i].any(1).nonzero().flatten(), erased[i].any(0).nonzero().flatten()
        assert erased[i].sum() == len(rows) * len(cols)  # one rectangle
        assert len(rows) <= size and len(cols) <= size
        assert (out[i][:, erased[i]] == 0).all()
    full = (p["bottom"] - p["top"]) * (p["right"] - p["left"])
    assert full.max() <= size * size


def test_cutout_centres_cover_the_image_uniformly():
    """Size 1: the box is the centre pixel, uniform over all pixels, borders included (DeVries & Taylor)."""
    p = A.Cutout(1).make_params(torch.empty(20000, 1, 4, 5), gen(0))
    counts = torch.bincount(p["top"] * 5 + p["left"], minlength=20).float() / 20000
    assert (counts - 1 / 20).abs().max() < 0.01
    big = A.Cutout(3).make_params(torch.empty(2000, 1, 4, 5), gen(0))
    assert (big["top"] == 0).any() and (big["bottom"] == 4).any()  # clipped at both borders


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_random_erasing_box_respects_area_and_ratio(seed):
    x = torch.rand(32, 3, 20, 24, generator=gen(seed)) + 1.0
    op = A.RandomErasing(p=1.0, scale=(0.05, 0.3), ratio=(0.5, 2.0), value=(0.1, 0.2, 0.3))
    p = op.make_params(x, gen(seed))
    out, _ = op.apply(x, None, p)
    h, w = p["bottom"] - p["top"], p["right"] - p["left"]
    assert (h > 0).all() and (w > 0).all()  # p = 1: every sample erased
    area = (h * w).float() / (20 * 24)
    # rounding the sides to whole pixels moves the area a little outside the range
    assert area.min() > 0.05 * 0.7 and area.max() < 0.3 * 1.3
    assert ((p["top"] >= 0) & (p["left"] >= 0) & (p["bottom"] <= 20) & (p["right"] <= 24)).all()
    for i in range(5):
        box = out[i, :, p["top"][i]:p["bottom"][i], p["left"][i]:p["right"][i]]
        torch.testing.assert_close(box, torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1).expand_as(box))
        assert _erased(x, out)[i].sum() == h[i] * w[i]


def algorithm_1(n, h, w, scale, ratio, seed, *, corner="image"):
    """Zhong et al. 2017, Algorithm 1 in NumPy, one sample at a time: draw S_e, r_e and a corner until the box
    fits (sides rounded to pixels, corner a pixel).  ``corner="fitting"`` is torchvision's placement instead
    (the corner uniform among the positions where the box fits), the negative control."""
    rng = np.random.default_rng(seed)
    boxes = []
    while len(boxes) < n:
        area = rng.uniform(*scale) * h * w
        r = rng.uniform(*ratio)
        he, we = round(math.sqrt(area * r)), round(math.sqrt(area / r))
        if corner == "fitting":
            if 1 <= he <= h and 1 <= we <= w:
                boxes.append((rng.integers(0, h - he + 1), rng.integers(0, w - we + 1), he, we))
            continue
        ye, xe = rng.integers(0, h), rng.integers(0, w)
        if he >= 1 and we >= 1 and ye + he <= h and xe + we <= w:
            boxes.append((ye, xe, he, we))
    return np.array(boxes, dtype=np.float64).T


def test_random_erasing_erases_every_sample_at_p_one_with_algorithm_1s_boxes():
    """32 x 64 images at p = 1: every sample erased (a 10-candidate cap left 9 % unerased), boxes inside the
    image reaching all four borders, and (corner, area, ratio) distributed as the paper's loop in NumPy
    (two-sample Kolmogorov-Smirnov, p > 0.001 under the fixed seeds; torchvision's placement is rejected)."""
    n, h, w, scale, ratio = 3000, 32, 64, (0.02, 0.4), (0.3, 1 / 0.3)
    x = torch.rand(n, 1, h, w, generator=gen(0)) + 1.0
    op = A.RandomErasing(p=1.0, scale=scale, ratio=ratio)
    p = op.make_params(x, gen(0))
    out = op.apply(x, None, p)[0]
    he, we = p["bottom"] - p["top"], p["right"] - p["left"]
    assert (he > 0).all() and (we > 0).all() and _erased(x, out).flatten(1).any(1).all()
    assert ((p["top"] >= 0) & (p["left"] >= 0) & (p["bottom"] <= h) & (p["right"] <= w)).all()
    assert p["top"].min() == 0 and p["left"].min() == 0 and p["bottom"].max() == h and p["right"].max() == w
    ours = [t.double().numpy() for t in (p["top"], p["left"], he * we / (h * w), he / we)]
    for placement, agree in (("image", True), ("fitting", False)):
        top, left, hh, ww = algorithm_1(n, h, w, scale, ratio, seed=1, corner=placement)
        paper = [top, left, hh * ww / (h * w), hh / ww]
        pvalues = [stats.ks_2samp(a, b).pvalue for a, b in zip(ours, paper)]
        assert (min(pvalues) > 1e-3) == agree, (placement, pvalues)


def test_random_erasing_erased_fraction_is_p():
    """Binomial(n, p) erased samples: within 4 standard deviations of n p."""
    n, p = 4000, 0.5
    x = torch.rand(n, 1, 32, 64, generator=gen(1)) + 5.0
    erased = _erased(x, A.RandomErasing(p=p)(x, generator=gen(2))).flatten(1).any(1)
    assert abs(float(erased.float().mean()) - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(A.RandomErasing(p=0.0)(x[:10], generator=gen(0)), x[:10])


def test_random_erasing_ranges_that_cannot_fit_raise():
    x = torch.rand(4, 1, 32, 64)
    with pytest.raises(RegularkitError, match=r"RandomErasing cannot fit any box of scale=\(0.9, 1.0\) and "
                                              r"ratio=\(5.0, 6.0\) in a 32x64 image"):
        A.RandomErasing(p=1.0, scale=(0.9, 1.0), ratio=(5.0, 6.0))(x, generator=gen(0))
    assert erase_module.acceptance((0.9, 1.0), (5.0, 6.0), 32, 64) == 0.0
    assert 0.2 < erase_module.acceptance((0.02, 0.4), (0.3, 1 / 0.3), 32, 64) < 0.22  # 21 % of candidates fit


def test_ranges_needing_more_than_the_cap_of_candidates_raise_before_any_draw(monkeypatch):
    """0.087 % of candidates fit: 23 818 candidates per sample for a miss chance of 1e-9, over the 4096 cap."""
    x = torch.rand(4, 1, 32, 64)
    op = A.RandomErasing(p=1.0, scale=(0.95, 1.0), ratio=(0.5, 0.55))
    g = gen(0)
    before = g.get_state()
    with pytest.raises(RegularkitError, match=r"RandomErasing: boxes of scale=\(0.95, 1.0\) and ratio=\(0.5, 0.55\) "
                                              r"fit a 32x64 image at 0.087% of candidates, which needs 23818 "
                                              r"candidates per sample \(at most 4096\); widen scale or ratio"):
        op(x, generator=g)
    assert torch.equal(g.get_state(), before)  # refused before drawing
    monkeypatch.setattr(erase_module, "MAX_CANDIDATES", 30_000)
    assert ((op(x, generator=gen(0)) != x).flatten(1).any(1)).all()  # the same range under a higher cap erases


def test_random_fill_is_normal_on_floats_and_uniform_0_255_on_integers():
    x = torch.rand(200, 1, 8, 8) + 5.0
    noisy = A.RandomErasing(p=1.0, value="random")(x, generator=gen(0))
    filled = noisy[_erased(x, noisy).unsqueeze(1)]
    assert abs(float(filled.mean())) < 0.2 and 0.8 < float(filled.std()) < 1.2
    counts = np.bincount(erase_module._raw_pixels(torch.randn(256_000, generator=gen(3))).long().numpy(),
                         minlength=256)
    assert len(counts) == 256 and stats.chisquare(counts).pvalue > 1e-3  # uniform on 0..255
    x8 = torch.full((200, 1, 8, 8), 7, dtype=torch.uint8)
    out8 = A.RandomErasing(p=1.0, value="random")(x8, generator=gen(0))
    assert out8.dtype == torch.uint8 and float(out8[_erased(x8, out8).unsqueeze(1)].float().mean()) > 100


@pytest.mark.parametrize("make, match", [
    (lambda: A.RandomErasing(scale=(0.0, 0.3)), r"scale must lie in \(0, 1\], got \(0.0, 0.3\)"),
    (lambda: A.RandomErasing(ratio=(0.0, 2.0)), r"ratio must be > 0, got \(0.0, 2.0\)"),
    (lambda: A.RandomErasing(value="noise"), "value must be a number, a per-channel sequence or 'random', got 'noise'"),
    (lambda: A.RandomErasing(p=1.5), r"p must be in \[0, 1\], got 1.5"),
    (lambda: A.Cutout(0), "size must be >= 1, got 0"),
])
def test_erasing_errors(make, match):
    with pytest.raises(RegularkitError, match=match):
        make()


def test_per_channel_value_must_match_channels():
    with pytest.raises(RegularkitError, match="value has 3 entries for 1 channels"):
        A.Cutout(2, value=(0, 0, 0))(torch.rand(2, 1, 4, 4))


def test_cutout_with_p_below_one_leaves_the_other_rows_untouched():
    """Each row is erased with probability p; a row that is not has an empty box and comes back bit for bit."""
    x = torch.rand(2000, 2, 9, 7, generator=gen(4)) + 1.0
    op = A.Cutout(3, p=0.3, value=(0.0, -1.0))
    params = op.make_params(x, gen(5))
    out, _ = op.apply(x, None, params)
    erased = _erased(x, out).flatten(1).any(1)
    assert abs(float(erased.float().mean()) - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 2000)
    empty = (params["bottom"] - params["top"]) * (params["right"] - params["left"]) == 0
    assert torch.equal(empty, ~erased)  # a size-3 box always keeps at least 2 x 2 pixels inside the image
    assert torch.equal(out[~erased], x[~erased])
    rows = erased.nonzero().flatten()
    assert (out[rows, 0][_erased(x, out)[rows]] == 0).all() and (out[rows, 1][_erased(x, out)[rows]] == -1).all()
    # the same draws with p = 1 erase every row: p chooses rows, it does not move the boxes
    every = A.Cutout(3, value=(0.0, -1.0)).make_params(x, gen(5))
    for k in ("top", "left", "right"):
        assert torch.equal(every[k], params[k]), k
    assert torch.equal(every["bottom"][erased], params["bottom"][erased])


@pytest.mark.parametrize("h, w", [(32, 64), (48, 20), (9, 9)])
def test_random_erasing_boxes_stay_inside_and_reach_every_border(h, w):
    """Erased rows: a box inside the image, and over many rows every border is touched (corners uniform over
    the image); rows not drawn for erasing: an empty box at a valid corner, the row untouched."""
    n = 4000
    x = torch.rand(n, 1, h, w, generator=gen(6)) + 1.0
    op = A.RandomErasing(p=0.5)
    p = op.make_params(x, gen(7))
    out, _ = op.apply(x, None, p)
    he, we = p["bottom"] - p["top"], p["right"] - p["left"]
    on = (he > 0) & (we > 0)
    assert torch.equal(on, _erased(x, out).flatten(1).any(1))
    assert torch.equal(he == 0, we == 0)  # a row is erased whole or not at all
    assert ((p["top"] >= 0) & (p["left"] >= 0) & (p["bottom"] <= h) & (p["right"] <= w)).all()
    assert ((p["top"] < h) & (p["left"] < w)).all()
    assert p["top"][on].min() == 0 and p["left"][on].min() == 0
    assert p["bottom"][on].max() == h and p["right"][on].max() == w
    assert torch.equal(out[~on], x[~on])
    for i in on.nonzero().flatten()[:50].tolist():  # inside the box the fill, outside the image itself
        box = out[i, :, p["top"][i]:p["bottom"][i], p["left"][i]:p["right"][i]]
        assert (box == 0).all() and _erased(x, out)[i].sum() == he[i] * we[i]


@pytest.mark.parametrize("value, pixel", [(7.6, 8), (300.0, 255), (-4.0, 0), (2.5, 2)])
def test_a_constant_fill_on_integer_images_is_rounded_and_clamped_to_the_dtype(value, pixel):
    """uint8 images hold 0..255: the fill is rounded (half to even, as torch) and clamped, never wrapped."""
    x8 = torch.full((6, 2, 5, 5), 100, dtype=torch.uint8)
    for op in (A.Cutout(3, value=value), A.RandomErasing(p=1.0, value=value)):
        out = op(x8, generator=gen(0))
        assert out.dtype == torch.uint8
        changed = out != x8
        assert changed.flatten(1).any(1).all() and (out[changed] == pixel).all(), type(op).__name__


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_cutout_box_is_the_clipped_square_around_a_uniform_centre(size):
    """Rows ``[cy - size // 2, cy - size // 2 + size)`` clipped to the image, ``cy`` uniform on 0..H-1, and the
    same for columns: every (top, bottom) pair the paper's rule gives appears, equally often, and no other."""
    h, w, n = 7, 6, 42_000
    p = A.Cutout(size).make_params(torch.empty(n, 1, h, w), gen(size))
    for lo, hi, extent in ((p["top"], p["bottom"], h), (p["left"], p["right"], w)):
        expected = [(max(c - size // 2, 0), min(c - size // 2 + size, extent)) for c in range(extent)]
        pairs = torch.stack([lo, hi], 1)
        got, counts = pairs.unique(dim=0, return_counts=True)
        want = torch.tensor(sorted(set(expected)))
        assert torch.equal(got, want), (got.tolist(), want.tolist())
        share = {pair: expected.count(pair) / extent for pair in expected}
        for pair, count in zip(got.tolist(), counts.tolist()):
            assert abs(count / n - share[tuple(pair)]) < 0.015, (pair, count / n)


def test_raw_pixel_fill_is_floor_256_phi_of_the_normal_draw():
    z = torch.tensor([-math.inf, -40.0, -3.0, -0.5, 0.0, 1e-3, 0.7, 2.5, 40.0, math.inf])
    phi = stats.norm.cdf(z.double().numpy())
    np.testing.assert_array_equal(erase_module._raw_pixels(z).numpy(), np.clip(np.floor(256 * phi), 0, 255))
    assert erase_module._raw_pixels(z)[-1] == 255 and erase_module._raw_pixels(z)[0] == 0


# (h, w, scale, ratio, box sides): degenerate ranges, so every candidate is the same box
EXACT = [
    (8, 8, (1 / 64, 1 / 64), (1.0, 1.0), (1, 1)),       # 1 x 1 boxes
    (4, 16, (0.25, 0.25), (1.0, 1.0), (4, 4)),          # full height
    (8, 16, (0.125, 0.125), (4.0, 4.0), (8, 2)),        # full height, narrow (ratio = H_e / W_e = 4)
    (16, 4, (0.125, 0.125), (0.5, 0.5), (2, 4)),        # full width
    (6, 5, (0.1, 0.1), (1.2, 1.2), (2, 2)),             # sides round to whole pixels: sqrt(3 * 1.2) = 1.9
]


@pytest.mark.parametrize("h, w, scale, ratio, sides", EXACT)
def test_acceptance_and_boxes_of_a_single_box_size_are_exact(h, w, scale, ratio, sides):
    """A box of sides (H_e, W_e) fits at (H - H_e + 1)(W - W_e + 1) of the H W corners."""
    he, we = sides
    assert erase_module.acceptance(scale, ratio, h, w) == pytest.approx((h - he + 1) * (w - we + 1) / (h * w))
    x = torch.rand(500, 1, h, w, generator=gen(9)) + 1.0
    p = A.RandomErasing(p=1.0, scale=scale, ratio=ratio).make_params(x, gen(10))
    assert ((p["bottom"] - p["top"]) == he).all() and ((p["right"] - p["left"]) == we).all()
    assert p["top"].max() == h - he and p["left"].max() == w - we  # every corner where the box fits is used
    assert p["top"].min() == 0 and p["left"].min() == 0


def test_boxes_that_round_to_no_pixel_are_never_used():
    """A candidate whose side rounds to 0 pixels does not fit: with a range where most do, every sample at p = 1
    still gets a box of at least one pixel; a range where all do cannot fit at all."""
    x = torch.rand(400, 1, 8, 8, generator=gen(11)) + 1.0
    op = A.RandomErasing(p=1.0, scale=(0.001, 0.04), ratio=(0.3, 3.0))  # 0.06 .. 2.6 pixels
    p = op.make_params(x, gen(12))
    assert ((p["bottom"] - p["top"]) >= 1).all() and ((p["right"] - p["left"]) >= 1).all()
    assert (op.apply(x, None, p)[0] != x).flatten(1).any(1).all()
    with pytest.raises(RegularkitError, match=r"RandomErasing cannot fit any box of scale=\(0.001, 0.003\)"):
        A.RandomErasing(p=1.0, scale=(0.001, 0.003), ratio=(1.0, 1.0))(x, generator=gen(0))  # < 0.2 pixels
    assert erase_module.acceptance((0.001, 0.003), (1.0, 1.0), 8, 8) == 0.0


def test_scale_may_reach_the_whole_image_but_not_beyond():
    assert A.RandomErasing(scale=(0.5, 1.0)).scale == (0.5, 1.0)
    for bad in ((0.5, 1.5), (1.0, 2.0)):
        with pytest.raises(RegularkitError, match=r"scale must lie in \(0, 1\], got " + re.escape(repr(bad))):
            A.RandomErasing(scale=bad)


def test_candidates_per_sample_depend_on_the_image_size_only(monkeypatch):
    """docs/augment.md: the default ranges fit 21 % of candidates on 32 x 64 images, so k = 88 candidates per
    sample leave one without a box of Algorithm 1 with chance (1 - 0.21)^88 < 1e-9; 58 on 32 x 32."""
    calls = []
    real = A.RandomErasing._boxes

    def spy(self, n, k, *args):
        calls.append((n, k))
        return real(self, n, k, *args)

    monkeypatch.setattr(A.RandomErasing, "_boxes", spy)
    A.RandomErasing(p=1.0)(torch.rand(300, 1, 32, 64), generator=gen(13))
    A.RandomErasing(p=0.1)(torch.rand(7, 1, 32, 32), generator=gen(13))
    assert calls == [(300, 88), (7, 58)]
    c = erase_module.acceptance((0.02, 0.4), (0.3, 1 / 0.3), 32, 64)
    assert (1 - c) ** 88 <= erase_module.MISS < (1 - c) ** 87
    assert erase_module.candidates((1.0, 1.0), (1.0, 1.0), 1, 1) == 1  # every candidate fits: one is enough
    assert erase_module.candidates((0.9, 1.0), (5.0, 6.0), 32, 64) == 0


def test_a_sample_whose_candidates_all_miss_erases_its_first_candidate_moved_inside(monkeypatch):
    """The fallback (chance <= 1e-9 per sample): with one candidate per sample, the candidates that miss become
    their own box with the sides clamped to the image and the corner moved so that it fits; fits are kept."""
    monkeypatch.setattr(erase_module, "candidates", lambda *args: 1)
    n, h, w = 400, 8, 10
    op = A.RandomErasing(p=1.0, scale=(0.3, 0.6), ratio=(0.5, 2.0))
    p = op.make_params(torch.empty(n, 1, h, w), gen(3))
    g = gen(3)
    torch.rand(n, generator=g)  # the p draw
    area = (0.3 + 0.3 * torch.rand(n, 1, generator=g)) * (h * w)
    r = 0.5 + 1.5 * torch.rand(n, 1, generator=g)
    he, we = torch.sqrt(area * r).round().long()[:, 0], torch.sqrt(area / r).round().long()[:, 0]
    ye = torch.floor(torch.rand(n, 1, generator=g).double() * h).long()[:, 0]
    xe = torch.floor(torch.rand(n, 1, generator=g).double() * w).long()[:, 0]
    fits = (ye + he <= h) & (xe + we <= w)
    assert 0.1 < fits.float().mean() < 0.9  # both kinds present
    he_c, we_c = he.clamp(1, h), we.clamp(1, w)
    torch.testing.assert_close(p["top"], torch.minimum(ye, h - he_c), rtol=0, atol=0)
    torch.testing.assert_close(p["left"], torch.minimum(xe, w - we_c), rtol=0, atol=0)
    assert torch.equal(p["top"][fits], ye[fits]) and torch.equal(p["bottom"] - p["top"], he_c)
    assert torch.equal(p["right"] - p["left"], we_c) and (p["bottom"] <= h).all() and (p["right"] <= w).all()


def test_random_erasing_compiles_to_one_graph_and_draws_what_eager_draws():
    """Issue 24 item 5: no data-dependent step in make_params or apply, so the unseeded op is one graph
    (fullgraph=True, eager backend) and, after the same torch.manual_seed, gives the eager op's boxes."""
    import torch._dynamo
    x = torch.rand(6, 3, 16, 12, generator=gen(0))
    for op in (A.RandomErasing(p=0.7), A.RandomErasing(p=1.0, value="random")):
        torch._dynamo.reset()
        compiled = torch.compile(op, backend="eager", fullgraph=True)  # any graph break raises
        torch.manual_seed(5)
        out = compiled(x)
        torch.manual_seed(5)
        assert torch.equal(out, op(x)) and not torch.equal(out, x)


def acceptance_on_a_grid(scale, ratio, h, w, cells):
    """The chance a candidate fits, averaged over a ``cells`` x ``cells`` midpoint grid of (area, ratio), NumPy."""
    mid = (np.arange(cells) + 0.5) / cells
    area = (scale[0] + (scale[1] - scale[0]) * mid)[:, None] * h * w
    r = (ratio[0] + (ratio[1] - ratio[0]) * mid)[None, :]
    he, we = np.round(np.sqrt(area * r)), np.round(np.sqrt(area / r))
    fits = (he >= 1) & (we >= 1) & (he <= h) & (we <= w)
    return np.where(fits, (h - he + 1) * (w - we + 1) / (h * w), 0.0).mean()


@pytest.mark.parametrize("scale, ratio, h, w", [((0.02, 0.4), (0.3, 1 / 0.3), 32, 64), ((0.1, 0.9), (0.5, 4.0), 9, 13),
                                                ((0.3, 1.0), (0.2, 0.6), 20, 20)])
def test_acceptance_is_the_midpoint_rule_on_a_128_grid_and_close_to_the_integral(scale, ratio, h, w):
    """The docstring's estimate: 128 x 128 midpoints of (area, ratio); within 2 % of a 2048 x 2048 grid."""
    got = erase_module.acceptance(scale, ratio, h, w)
    assert got == pytest.approx(acceptance_on_a_grid(scale, ratio, h, w, 128), rel=1e-12)
    assert got == pytest.approx(acceptance_on_a_grid(scale, ratio, h, w, 2048), rel=0.02)


@pytest.mark.parametrize("ratio", [(0.1, 0.15), (7.0, 10.0)], ids=["no height", "no width"])
def test_a_range_whose_boxes_have_a_side_of_no_pixel_cannot_fit(ratio):
    """About 1 pixel of area at ratio 0.1 is 0 x 3 pixels (at ratio 10, 3 x 0): no candidate ever fits."""
    scale = (0.9 / 64, 1.1 / 64)
    assert erase_module.acceptance(scale, ratio, 8, 8) == 0.0
    with pytest.raises(RegularkitError, match=r"RandomErasing cannot fit any box of scale="):
        A.RandomErasing(p=1.0, scale=scale, ratio=ratio)(torch.rand(4, 1, 8, 8), generator=gen(0))
