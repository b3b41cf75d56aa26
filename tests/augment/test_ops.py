"""The AutoAugment-family pixel ops against Pillow (uint8) and NumPy restatements of torchvision v2's kernels.

Pillow's ImageOps / ImageEnhance are an independent implementation of the
same ops (torchvision's PIL path calls them); the float kernels and the
geometry are restated from torchvision's ``functional/_color.py`` and
``_geometry.py`` in NumPy.  Tolerances: exact where both sides are integer
arithmetic; one level where one side rounds and the other truncates; two
where Pillow also rounds its gray / mean to an integer first.
"""
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

import regularkit.augment.ops as O
from regularkit.errors import RegularkitError

H, W = 29, 31  # >= 256 pixels per channel: below that Pillow's equalize leaves an image as it is


def gen(seed):
    return torch.Generator().manual_seed(seed)


def image8(seed=0, c=3):
    g = gen(seed)
    x = torch.randint(0, 256, (2, c, H, W), generator=g, dtype=torch.uint8)
    x[1] = (x[1].float() * 0.5 + 40).to(torch.uint8)  # a low-contrast image: autocontrast / equalize matter
    return x


def pil(img):  # C x H x W uint8 -> PIL RGB / L
    a = img.permute(1, 2, 0).numpy()
    return Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)


def unpil(p):
    a = np.asarray(p)
    return torch.from_numpy(a.copy()).permute(2, 0, 1) if a.ndim == 3 else torch.from_numpy(a.copy())[None]


def per_sample(fn, x, value):
    return fn(x, torch.full((x.shape[0],), float(value)))


# --------------------------------------------------------------------------- uint8 against Pillow
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("bits", [0, 1, 4, 7, 8])
def test_posterize_uint8_is_pillows_bit_mask(c, bits):
    x = image8(c=c)
    out = per_sample(O.posterize, x, bits)
    for i in range(2):
        assert torch.equal(out[i], unpil(ImageOps.posterize(pil(x[i]), bits))) if bits else \
            torch.equal(out[i], torch.zeros_like(x[i]))


@pytest.mark.parametrize("fraction", [1.0, 0.7, 0.5, 2 / 3, 0.0])
def test_solarize_uint8_inverts_from_the_threshold_on(fraction):
    x = image8()
    out = per_sample(O.solarize, x, fraction)
    threshold = math.ceil(255.0 * fraction)  # x >= 255 m  <=>  x >= ceil(255 m) on integers
    for i in range(2):
        assert torch.equal(out[i], unpil(ImageOps.solarize(pil(x[i]), threshold)))


@pytest.mark.parametrize("c", [1, 3])
def test_invert_equalize_autocontrast_uint8_match_pillow(c):
    x = image8(c=c)
    assert not torch.equal(O.equalize(x), x)  # large enough for equalisation to act
    for i in range(2):
        assert torch.equal(O.invert(x)[i], unpil(ImageOps.invert(pil(x[i]))))
        assert torch.equal(O.equalize(x)[i], unpil(ImageOps.equalize(pil(x[i]))))
        # Pillow's lookup table truncates, we round: at most one level apart
        diff = (O.autocontrast(x)[i].int() - unpil(ImageOps.autocontrast(pil(x[i]))).int()).abs()
        assert diff.max() <= 1 and diff.float().mean() < 0.6
    flat = torch.full((1, c, 4, 4), 77, dtype=torch.uint8)
    assert torch.equal(O.autocontrast(flat), flat) and torch.equal(O.equalize(flat), flat)


@pytest.mark.parametrize("name, enhancer, tol", [("brightness", ImageEnhance.Brightness, 1),
                                                 ("color", ImageEnhance.Color, 2),
                                                 ("contrast", ImageEnhance.Contrast, 2),
                                                 ("sharpness", ImageEnhance.Sharpness, 1)])
@pytest.mark.parametrize("factor", [0.1, 0.73, 1.0, 1.9])
def test_colour_blends_uint8_match_imageenhance(name, enhancer, tol, factor):
    fn = {"brightness": O.adjust_brightness, "color": O.adjust_saturation, "contrast": O.adjust_contrast,
          "sharpness": O.adjust_sharpness}[name]
    x = image8()
    out = per_sample(fn, x, factor)
    for i in range(2):
        ref = unpil(enhancer(pil(x[i])).enhance(factor))
        assert (out[i].int() - ref.int()).abs().max() <= tol, name


def test_sharpness_smooths_with_pillows_kernel_and_keeps_the_border():
    x = image8()
    out = per_sample(O.adjust_sharpness, x, 0.0)  # factor 0: the smoothed image itself
    for i in range(2):
        ref = unpil(pil(x[i]).filter(ImageFilter.SMOOTH))
        assert (out[i].int() - ref.int()).abs().max() <= 1
    assert torch.equal(out[..., 0, :], x[..., 0, :]) and torch.equal(out[..., :, -1], x[..., :, -1])


# --------------------------------------------------------------------------- float against torchvision's float kernels
def gray_tv(v):  # torchvision's rgb_to_grayscale (0.2989), N x 1 x H x W
    return 0.2989 * v[:, :1] + 0.587 * v[:, 1:2] + 0.114 * v[:, 2:3]


def test_float_kernels_match_numpy_restatements():
    x = torch.rand(3, 3, H, W, generator=gen(1))
    v = x.numpy().astype(np.float64)
    f = np.array([0.2, 1.0, 1.6]).reshape(3, 1, 1, 1)
    factor = torch.tensor([0.2, 1.0, 1.6])
    bits = torch.tensor([1, 3, 8])
    levels = (2.0 ** bits.numpy()).reshape(3, 1, 1, 1)
    checks = {
        "posterize": (O.posterize(x, bits), np.minimum(np.floor(v * levels), levels - 1) / levels),
        "solarize": (O.solarize(x, torch.tensor([0.3, 0.5, 1.0])),
                     np.where(v >= np.array([0.3, 0.5, 1.0]).reshape(3, 1, 1, 1), 1 - v, v)),
        "invert": (O.invert(x), 1 - v),
        "brightness": (O.adjust_brightness(x, factor), np.clip(v * f, 0, 1)),
        "color": (O.adjust_saturation(x, factor), np.clip(f * v + (1 - f) * gray_tv(v), 0, 1)),
        "contrast": (O.adjust_contrast(x, factor),
                     np.clip(f * v + (1 - f) * gray_tv(v).mean((1, 2, 3), keepdims=True), 0, 1)),
        "autocontrast": (O.autocontrast(x), (v - v.min((2, 3), keepdims=True))
                         / (v.max((2, 3), keepdims=True) - v.min((2, 3), keepdims=True))),
    }
    for name, (ours, ref) in checks.items():
        np.testing.assert_allclose(ours.numpy(), ref, atol=2e-4, err_msg=name)  # 0.299 vs 0.2989: <= 1e-4
    # equalize on floats: binned to uint8 as torchvision converts (x * 255.999, truncated), back as / 255
    binned = (x * (256 - 1e-3)).to(torch.uint8)
    torch.testing.assert_close(O.equalize(x), O.equalize(binned).float() / 255, rtol=0, atol=1e-7)


def test_sharpness_float_is_the_blend_with_the_3x3_smoothing_inside_the_border():
    x = torch.rand(2, 3, H, W, generator=gen(2), dtype=torch.float64)
    f = 1.7
    v = x.numpy()
    k = np.ones((3, 3)) / 13
    k[1, 1] = 5 / 13
    smooth = sum(k[a, b] * v[..., a:a + H - 2, b:b + W - 2] for a in range(3) for b in range(3))
    ref = v.copy()
    ref[..., 1:-1, 1:-1] = np.clip(f * v[..., 1:-1, 1:-1] + (1 - f) * smooth, 0, 1)
    np.testing.assert_allclose(per_sample(O.adjust_sharpness, x, f).numpy(), ref, atol=1e-6)  # f in float32
    tiny = torch.rand(2, 3, 2, 5, generator=gen(3))
    assert per_sample(O.adjust_sharpness, tiny, f) is tiny  # torchvision: images of <= 2 rows are left alone


# --------------------------------------------------------------------------- geometry against torchvision's affine
def tv_inverse_matrix(center, angle, translate, shear):
    """torchvision's _get_inverse_affine_matrix (scale 1), restated."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -(a * math.tan(sx) + math.sin(rot))
    c = math.sin(rot - sy) / math.cos(sy)
    d = math.cos(rot) - c * math.tan(sx)
    m = [d, -b, 0.0, -c, a, 0.0]
    m[2] += cx - m[0] * (cx + tx) - m[1] * (cy + ty)
    m[5] += cy - m[3] * (cx + tx) - m[4] * (cy + ty)
    return np.array(m).reshape(2, 3)


def tv_warp_nearest(img, m, fill):
    """Nearest-neighbour inverse warp on the centred pixel grid (torchvision's _affine_grid + grid_sample)."""
    c, h, w = img.shape
    out = np.full_like(img, fill)
    for i in range(h):
        for j in range(w):
            xs, ys = m @ np.array([j - (w - 1) / 2, i - (h - 1) / 2, 1.0])
            sj, si = np.rint(xs + (w - 1) / 2), np.rint(ys + (h - 1) / 2)  # half to even, as grid_sample
            if 0 <= sj < w and 0 <= si < h:
                out[:, i, j] = img[:, int(si), int(sj)]
    return out


@pytest.mark.parametrize("name, magnitude", [("shear_x", 0.27), ("shear_x", -0.3), ("shear_y", 0.19),
                                             ("translate_x", 5.0), ("translate_y", -4.0), ("rotate", 17.0),
                                             ("rotate", -29.0), ("rotate", 135.0)])
def test_geometric_ops_are_torchvisions_affine_calls(name, magnitude):
    x = torch.rand(1, 3, H, W, generator=gen(4))
    calls = {  # what torchvision's _apply_image_or_video_transform passes to F.affine / F.rotate
        "shear_x": dict(center=(-W / 2, -H / 2), angle=0.0, translate=(0, 0),
                        shear=(math.degrees(math.atan(magnitude)), 0.0)),
        "shear_y": dict(center=(-W / 2, -H / 2), angle=0.0, translate=(0, 0),
                        shear=(0.0, math.degrees(math.atan(magnitude)))),
        "translate_x": dict(center=(0, 0), angle=0.0, translate=(int(magnitude), 0), shear=(0.0, 0.0)),
        "translate_y": dict(center=(0, 0), angle=0.0, translate=(0, int(magnitude)), shear=(0.0, 0.0)),
        "rotate": dict(center=(0, 0), angle=-magnitude, translate=(0, 0), shear=(0.0, 0.0)),
    }
    ref = tv_warp_nearest(x[0].numpy(), tv_inverse_matrix(**calls[name]), fill=0.5)
    out = O.apply_ops(x, torch.tensor([O.OPS.index(name)]), torch.tensor([magnitude]), fill=0.5)
    assert np.array_equal(out[0].numpy(), ref), f"{name}: {(out[0].numpy() != ref).any(0).mean():.3f} differ"


def test_rotate_by_90_on_a_square_image_is_rot90_and_uint8_moves_pixels_exactly():
    x = torch.randint(0, 256, (2, 3, 8, 8), generator=gen(5), dtype=torch.uint8)
    out = O.apply_ops(x, torch.full((2,), O.OPS.index("rotate")), torch.tensor([90.0, -90.0]))
    assert torch.equal(out[0], torch.rot90(x[0], 1, (1, 2))) and torch.equal(out[1], torch.rot90(x[1], 3, (1, 2)))


# --------------------------------------------------------------------------- dispatch, dtypes, errors
def test_apply_ops_runs_each_op_on_the_samples_that_drew_it():
    x = torch.rand(6, 3, H, W, generator=gen(6))
    op = torch.tensor([0, O.OPS.index("invert"), O.OPS.index("posterize"), 0, O.OPS.index("invert"),
                       O.OPS.index("translate_x")])
    mag = torch.tensor([5.0, 0.0, 2.0, 0.0, 0.0, 3.0])
    out = O.apply_ops(x, op, mag)
    assert torch.equal(out[[0, 3]], x[[0, 3]])
    assert torch.equal(out[[1, 4]], O.invert(x[[1, 4]]))
    assert torch.equal(out[2], O.posterize(x[2:3], torch.tensor([2]))[0])
    assert torch.equal(out[5, :, :, 3:], x[5, :, :, :-3]) and (out[5, :, :, :3] == 0).all()
    assert O.apply_ops(x, torch.zeros(6, dtype=torch.long), mag) is x


def test_bfloat16_is_computed_in_float32_and_other_integer_dtypes_are_refused():
    x = torch.rand(2, 3, H, W, generator=gen(7)).to(torch.bfloat16)
    out = O.solarize(x, torch.tensor([0.4, 0.6]))
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, O.solarize(x.float(), torch.tensor([0.4, 0.6])).to(torch.bfloat16))
    with pytest.raises(RegularkitError, match="floating point in \\[0, 1\\] or uint8 .* got dtype torch.int16"):
        O.check_pixels(torch.zeros(1, 1, 2, 2, dtype=torch.int16))


def test_fill_is_a_fraction_of_the_range_for_floats_and_uint8():
    x = torch.rand(1, 3, 6, 6, generator=gen(9))
    op, mag = torch.tensor([O.OPS.index("translate_x")]), torch.tensor([2.0])
    assert (O.apply_ops(x, op, mag, fill=0.5)[..., :2] == 0.5).all()
    x8 = (x * 255).round().to(torch.uint8)
    assert (O.apply_ops(x8, op, mag, fill=0.5)[..., :2] == 128).all()  # round(127.5) to even


@pytest.mark.parametrize("name, kernel", [("brightness", O.adjust_brightness), ("color", O.adjust_saturation),
                                          ("contrast", O.adjust_contrast), ("sharpness", O.adjust_sharpness)])
def test_colour_ops_use_the_factor_one_plus_the_signed_magnitude(name, kernel):
    x = torch.rand(4, 3, 9, 8, generator=gen(10))
    m = torch.tensor([-0.9, -0.27, 0.27, 0.99])
    out = O.apply_ops(x, torch.full((4,), O.OPS.index(name)), m)
    assert torch.equal(out, kernel(x, 1.0 + m))
    assert not torch.equal(out, kernel(x, m))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_the_dense_form_compile_uses_gives_the_subsets_numbers_bit_for_bit(dtype, interpolation):
    """``apply_ops_dense`` (every op on the whole batch, selected per sample: what a compiled policy runs)
    equals the eager subsets exactly, over every op and magnitudes of every kind (other ops' magnitudes reach
    each kernel on the rows it drops); restricted to a subset of ops, it runs only those."""
    g = gen(11)
    n = 4 * len(O.OPS)
    x = torch.rand(n, 3, 9, 8, generator=g)
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x
    op = torch.arange(n) % len(O.OPS)
    magnitude = torch.where(op == O.OPS.index("posterize"), torch.randint(0, 9, (n,), generator=g).float(),
                            torch.rand(n, generator=g) * 1.8 - 0.9)
    magnitude = torch.where((op >= 1) & (op <= 5), magnitude * 20, magnitude)  # degrees, pixels, shears
    kw = dict(fill=0.5, interpolation=interpolation)
    ref = O.apply_ops(x, op, magnitude, **kw)
    assert torch.equal(O.apply_ops_dense(x, op, magnitude, **kw), ref)
    some = [O.OPS.index(name) for name in ("rotate", "solarize")]
    drawn = torch.tensor(some * 3)
    assert torch.equal(O.apply_ops_dense(x[:6], drawn, magnitude[:6], ops=some, **kw),
                       O.apply_ops(x[:6], drawn, magnitude[:6], **kw))
    assert torch.equal(O.apply_ops_dense(x[:6], drawn, magnitude[:6], ops=[0], **kw), x[:6])  # none run
