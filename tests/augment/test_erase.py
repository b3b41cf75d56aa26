"""Cutout and Random Erasing: box geometry, Algorithm 1 restated in NumPy, erased fraction, fills."""
import importlib
import math

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


def test_random_erasing_safety_cap_raises_instead_of_looping(monkeypatch):
    monkeypatch.setattr(erase_module, "MAX_CANDIDATES", 64)
    x = torch.rand(200, 1, 32, 64)
    op = A.RandomErasing(p=1.0, scale=(0.95, 1.0), ratio=(0.5, 0.55))  # fits at ~0.3 % of the candidates
    with pytest.raises(RegularkitError, match=r"RandomErasing found no fitting box in 64 candidates for \d+ "
                                              r"sample\(s\) of a 32x64 image"):
        op(x, generator=gen(0))


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
    (lambda: A.RandomErasing(p=1.5), r"p must be in \[0.0, 1.0\], got 1.5"),
    (lambda: A.Cutout(0), "size must be >= 1, got 0"),
])
def test_erasing_errors(make, match):
    with pytest.raises(RegularkitError, match=match):
        make()


def test_per_channel_value_must_match_channels():
    with pytest.raises(RegularkitError, match="value has 3 entries for 1 channels"):
        A.Cutout(2, value=(0, 0, 0))(torch.rand(2, 1, 4, 4))
