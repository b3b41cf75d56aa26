"""Flips, crops and the affine kernel against NumPy / SciPy references and exact identities."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import regularkit.augment as A
from regularkit.augment.affine import FILL_MODES, affine, affine_matrix, identity_matrix
from regularkit.errors import RegularkitError


def gen(seed):
    return torch.Generator().manual_seed(seed)


shapes = st.tuples(st.integers(1, 6), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))


@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_flip_twice_is_identity(shape, seed):
    x = torch.rand(shape, generator=gen(seed))
    for op in (A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)):
        params = op.make_params(x, gen(seed))
        once, _ = op.apply(x, None, params)
        twice, _ = op.apply(once, None, params)
        assert torch.equal(twice, x)
        flipped = params["flip"]
        ref = x.flip(-1) if isinstance(op, A.VerticalFlip) is False else x.flip(-2)
        assert torch.equal(once[flipped], ref[flipped]) and torch.equal(once[~flipped], x[~flipped])


def test_flip_probability_extremes():
    x = torch.rand(7, 2, 3, 4)
    assert torch.equal(A.HorizontalFlip(p=1.0)(x), x.flip(-1))
    assert torch.equal(A.HorizontalFlip(p=0.0)(x), x)


@settings(max_examples=15, deadline=None)
@given(shape=shapes)
def test_crop_with_zero_shift_and_no_padding_is_identity(shape):
    x = torch.rand(shape)
    zero = torch.zeros(shape[0], dtype=torch.long)
    for mode in A.geometric.PAD_MODES:
        assert torch.equal(A.crop(x, zero, zero, shape[2], shape[3], padding_mode=mode), x)
    op = A.RandomCrop()  # no padding, input size: the only offset is 0
    assert torch.equal(op(x, generator=gen(0)), x)


NP_MODE = {"constant": "constant", "nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}


@pytest.mark.parametrize("mode", sorted(NP_MODE))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), pad=st.integers(0, 12), h=st.integers(2, 7), w=st.integers(2, 7))
def test_crop_matches_numpy_pad_then_slice(mode, seed, pad, h, w):
    """Pad by more than the image size too: reflect and wrap must fold more than once."""
    x = torch.rand(5, 2, h, w, generator=gen(seed))
    op = A.RandomCrop((h, w), padding=pad, padding_mode=mode, fill=-1.0)
    params = op.make_params(x, gen(seed))
    out, _ = op.apply(x, None, params)
    kw = {"constant_values": -1.0} if mode == "constant" else {}
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode=NP_MODE[mode], **kw)
    for i in range(5):
        t, left = int(params["top"][i]) + pad, int(params["left"][i]) + pad
        assert 0 <= t <= 2 * pad and 0 <= left <= 2 * pad
        np.testing.assert_array_equal(out[i].numpy(), padded[i, :, t:t + h, left:left + w])


def test_crop_to_smaller_size_and_asymmetric_padding():
    x = torch.arange(2 * 1 * 6 * 8, dtype=torch.float32).view(2, 1, 6, 8)
    op = A.RandomCrop((4, 5), padding=(1, 0, 2, 0))  # left 1, top 0, right 2, bottom 0
    out = op(x, generator=gen(0))
    assert out.shape == (2, 1, 4, 5) and op.output_shape(x.shape) == (2, 1, 4, 5)
    params = op.make_params(x, gen(0))
    assert ((params["top"] >= 0) & (params["top"] <= 2)).all()
    assert ((params["left"] >= -1) & (params["left"] <= 8 + 2 - 5 - 1)).all()


def test_crop_offsets_cover_the_whole_range():
    x = torch.zeros(4000, 1, 4, 4)
    params = A.RandomCrop(padding=2).make_params(x, gen(0))
    assert set(params["top"].tolist()) == set(range(-2, 3))
    counts = torch.bincount(params["left"] + 2).float()
    assert (counts / 4000 - 0.2).abs().max() < 0.03  # uniform


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 10, "padding": 1}, r"crop size \(10, 10\) is larger than the padded image \(8, 8\)"),
    ({"padding": -1}, "padding must be >= 0, got -1"),
    ({"padding": (1, 2, 3)}, r"padding must be an int, a pair or a 4-tuple, got \(1, 2, 3\)"),
    ({"padding_mode": "mirror"}, "padding_mode must be one of .*; got 'mirror'"),
    ({"size": (1, 2, 3)}, r"size must be an int or \(height, width\), got \(1, 2, 3\)"),
])
def test_crop_errors(kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        A.RandomCrop(**kwargs)(torch.rand(2, 1, 6, 6), generator=gen(0))


# --------------------------------------------------------------------------- affine
@pytest.mark.parametrize("mode", FILL_MODES)
@settings(max_examples=8, deadline=None)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9)))
def test_affine_with_identity_params_is_identity(mode, shape):
    x = torch.rand(shape)
    out = affine(x, identity_matrix(shape[0]), fill_mode=mode, cval=0.3)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    n = shape[0]
    m = affine_matrix(torch.zeros(n), torch.zeros(n, 2), torch.zeros(n, 2), torch.ones(n, 2))
    torch.testing.assert_close(m, identity_matrix(n), atol=1e-7, rtol=0)


def test_random_affine_with_zero_ranges_is_identity():
    x = torch.rand(5, 3, 7, 6)
    torch.testing.assert_close(A.RandomAffine()(x, generator=gen(0)), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(A.RandomScaleCrop((1.0, 1.0))(x, generator=gen(0)), x, atol=1e-5, rtol=0)


SCIPY_MODE = {"constant": "grid-constant", "nearest": "nearest", "reflect": "reflect", "wrap": "grid-wrap"}


@pytest.mark.parametrize("mode", sorted(SCIPY_MODE))
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), h=st.integers(3, 10), w=st.integers(3, 10))
def test_affine_matches_scipy_ndimage(mode, seed, h, w):
    """Same inverse map, same bilinear interpolation, same fill: scipy.ndimage.affine_transform(order=1)."""
    g = gen(seed)
    x = torch.rand(3, 2, h, w, generator=g, dtype=torch.float64)
    angle, shear = torch.rand(3, generator=g) * 360 - 180, torch.rand(3, 2, generator=g) * 40 - 20
    translate, scale = torch.rand(3, 2, generator=g) * 6 - 3, torch.rand(3, 2, generator=g) + 0.5
    m = affine_matrix(angle, translate, shear, scale).double()
    out = affine(x, m, fill_mode=mode, cval=0.25)
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    for i in range(3):
        lin = m[i, :, :2].numpy()[::-1, ::-1]          # (x, y) -> (row, col)
        shift = m[i, :, 2].numpy()[::-1]
        for ch in range(2):
            ref = ndimage.affine_transform(x[i, ch].numpy(), lin, offset=shift + centre - lin @ centre,
                                           order=1, mode=SCIPY_MODE[mode], cval=0.25)
            np.testing.assert_allclose(out[i, ch].numpy(), ref, atol=1e-5)


def test_rotation_by_90_degrees_is_rot90_and_counter_clockwise():
    x = torch.rand(2, 1, 5, 5)
    m = affine_matrix(torch.full((2,), 90.0), torch.zeros(2, 2), torch.zeros(2, 2), torch.ones(2, 2))
    torch.testing.assert_close(affine(x, m), torch.rot90(x, 1, (2, 3)), atol=1e-5, rtol=0)


def test_integer_translation_with_wrap_is_roll():
    x = torch.rand(1, 2, 6, 7)
    m = affine_matrix(torch.zeros(1), torch.tensor([[2.0, -1.0]]), torch.zeros(1, 2), torch.ones(1, 2))
    torch.testing.assert_close(affine(x, m, fill_mode="wrap"), torch.roll(x, (-1, 2), (2, 3)), atol=1e-5, rtol=0)


def test_scale_crop_magnifies_and_stays_inside():
    """With s >= 1 the window stays inside the magnified image: pixels come from the image only."""
    x = torch.rand(64, 1, 8, 8) + 1.0  # all pixels in [1, 2)
    op = A.RandomScaleCrop((1.2, 2.0))
    out = op(x, generator=gen(0))
    assert out.min() >= x.min() - 1e-5 and out.max() <= x.max() + 1e-5
    params = op.make_params(x, gen(0))
    assert ((params["scale"] >= 1.2) & (params["scale"] <= 2.0)).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"degrees": (10, -10)}, r"degrees must have low <= high, got \(10, -10\)"),
    ({"degrees": -5}, "degrees must be >= 0 when given as one number, got -5"),
    ({"scale": (0.0, 1.0)}, r"scale must be > 0, got \(0.0, 1.0\)"),
    ({"translate": -0.1}, "translate fractions must be >= 0, got -0.1"),
    ({"fill_mode": "mirror"}, "fill_mode must be one of .*; got 'mirror'"),
    ({"interpolation": "bicubic"}, "interpolation must be one of .*; got 'bicubic'"),
])
def test_affine_errors(kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        A.RandomAffine(**kwargs)


def test_scale_crop_equals_resize_then_crop():
    """The warp is exactly F.interpolate(scale) followed by a crop when the offset is a whole pixel."""
    x = torch.rand(1, 2, 8, 8)
    big = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False)
    # s = 2, window at the top-left corner: shift the content by +(s - 1) * size / 2 = 4 pixels.
    m = affine_matrix(torch.zeros(1), torch.tensor([[4.0, 4.0]]), torch.zeros(1, 2), torch.full((1, 2), 2.0))
    out = affine(x, m, fill_mode="nearest")
    torch.testing.assert_close(out, big[..., :8, :8], atol=1e-5, rtol=0)
