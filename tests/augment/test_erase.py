"""Colour jitter, PCA colour, erasing and noise: NumPy references, box geometry, statistics."""


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import regularkit.augment as A
from regularkit.errors import RegularkitError


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
    done = h > 0
    assert done.float().mean() > 0.8
    area = (h * w).float()[done] / (20 * 24)
    # rounding the sides to whole pixels moves the area a little outside the range
    assert area.min() > 0.05 * 0.7 and area.max() < 0.3 * 1.3
    assert ((p["bottom"] <= 20) & (p["right"] <= 24)).all()
    for i in torch.nonzero(done).flatten().tolist()[:5]:
        box = out[i, :, p["top"][i]:p["bottom"][i], p["left"][i]:p["right"][i]]
        torch.testing.assert_close(box, torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1).expand_as(box))
        assert _erased(x, out)[i].sum() == h[i] * w[i]


def test_random_erasing_probability_and_random_fill():
    x = torch.rand(2000, 1, 8, 8) + 5.0
    out, _ = A.RandomErasing(p=0.5)(x, generator=gen(0))
    frac = _erased(x, out).flatten(1).any(1).float().mean()
    assert 0.45 < frac < 0.55
    assert torch.equal(A.RandomErasing(p=0.0)(x[:10], generator=gen(0))[0], x[:10])
    noisy, _ = A.RandomErasing(p=1.0, value="random")(x[:200], generator=gen(0))
    filled = noisy[_erased(x[:200], noisy).unsqueeze(1)]
    assert abs(float(filled.mean())) < 0.2 and 0.8 < float(filled.std()) < 1.2


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
