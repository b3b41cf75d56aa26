"""RandomResizedCrop: torchvision's box sampling restated per sample, the resize against torch's interpolate."""
import math

import pytest
import torch
import torch.nn.functional as F

import regularkit.augment as A
from regularkit.augment.crop import resized_crop
from regularkit.errors import RegularkitError


def gen(seed):
    return torch.Generator().manual_seed(seed)


def tv_get_params(h, w, scale, ratio, u_scale, u_ratio, u_top, u_left):
    """torchvision's RandomResizedCrop.get_params, fed the same uniforms (10 tries, then the central crop)."""
    area = h * w
    log_ratio = torch.log(torch.tensor(ratio))
    for k in range(10):
        target = area * (scale[0] + (scale[1] - scale[0]) * u_scale[k]).item()
        aspect = torch.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u_ratio[k]).item()
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return int(u_top * (h - ch + 1)), int(u_left * (w - cw + 1)), ch, cw
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


@pytest.mark.parametrize("h, w, scale, ratio", [(32, 32, (0.08, 1.0), (3 / 4, 4 / 3)), (20, 45, (0.5, 1.0), (0.5, 2.0)),
                                                (30, 12, (0.9, 1.0), (2.0, 3.0))])
def test_boxes_are_torchvisions_get_params_per_sample(h, w, scale, ratio):
    n = 300
    x = torch.empty(()).expand(n, 3, h, w)
    p = A.RandomResizedCrop(scale=scale, ratio=ratio).make_params(x, gen(0))
    g = gen(0)  # the op's draws, in its order: 10 scales, 10 log ratios, tops, lefts
    u_scale, u_ratio = torch.rand(n, 10, generator=g), torch.rand(n, 10, generator=g)
    u_top, u_left = torch.rand(n, generator=g), torch.rand(n, generator=g)
    for i in range(n):
        ref = tv_get_params(h, w, scale, ratio, u_scale[i], u_ratio[i], float(u_top[i]), float(u_left[i]))
        got = (int(p["top"][i]), int(p["left"][i]), int(p["height"][i]), int(p["width"][i]))
        if got != ref:  # the fallback draws no position: compare the box there
            assert got[2:] == ref[2:] and ref[:2] == ((h - ref[2]) // 2, (w - ref[3]) // 2), (i, got, ref)
    assert ((p["top"] >= 0) & (p["top"] + p["height"] <= h) & (p["left"] + p["width"] <= w)).all()


def test_fallback_is_the_central_crop_with_the_ratio_clamped():
    x = torch.empty(()).expand(50, 1, 20, 20)
    p = A.RandomResizedCrop(scale=(1.0, 1.0), ratio=(2.0, 3.0)).make_params(x, gen(1))  # never fits
    assert set(p["width"].tolist()) == {20} and set(p["height"].tolist()) == {10}
    assert set(p["top"].tolist()) == {5} and set(p["left"].tolist()) == {0}


def test_area_and_log_ratio_follow_their_laws():
    x = torch.empty(()).expand(20_000, 3, 64, 64)
    p = A.RandomResizedCrop(scale=(0.2, 0.6)).make_params(x, gen(2))
    area = (p["height"] * p["width"]).float() / 64 ** 2
    assert abs(area.mean() - 0.4) < 0.01  # U(0.2, 0.6) up to the rounding of the sides
    log_r = (p["width"].float() / p["height"]).log()
    assert abs(log_r.mean()) < 0.01 and log_r.abs().max() < math.log(4 / 3) + 0.1


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("size", [(16, 16), (7, 5), (40, 31)])
def test_resize_is_torchs_interpolate_of_the_crop(antialias, size):
    x = torch.rand(3, 2, 16, 16, generator=gen(3), dtype=torch.float64)
    top, left = torch.tensor([0, 3, 5]), torch.tensor([0, 2, 9])
    height, width = torch.tensor([16, 9, 11]), torch.tensor([16, 13, 4])
    out = resized_crop(x, top, left, height, width, size, antialias=antialias)
    for i in range(3):
        box = x[i:i + 1, :, top[i]:top[i] + height[i], left[i]:left[i] + width[i]]
        ref = F.interpolate(box, size=size, mode="bilinear", align_corners=False, antialias=antialias)
        torch.testing.assert_close(out[i:i + 1], ref, rtol=0, atol=1e-6)


def test_full_box_at_the_input_size_is_the_identity_and_uint8_is_rounded():
    x = torch.randint(0, 256, (4, 3, 9, 7), generator=gen(4), dtype=torch.uint8)
    full = {"top": torch.zeros(4, dtype=torch.long), "left": torch.zeros(4, dtype=torch.long),
            "height": torch.full((4,), 9), "width": torch.full((4,), 7)}
    assert torch.equal(A.RandomResizedCrop().apply(x, None, full)[0], x)
    op = A.RandomResizedCrop(size=(5, 6))
    p = op.make_params(x, gen(5))
    out = op.apply(x, None, p)[0]
    assert out.shape == (4, 3, 5, 6) and op.output_shape(x.shape) == (4, 3, 5, 6)
    assert torch.equal(out, op.apply(x.float(), None, p)[0].round().clamp(0, 255).to(torch.uint8))


def test_errors_name_the_value():
    with pytest.raises(RegularkitError, match=r"scale must lie in \(0, 1\], got \(0.0, 1.0\)"):
        A.RandomResizedCrop(scale=(0.0, 1.0))
    with pytest.raises(RegularkitError, match=r"ratio must be > 0, got \(-1, 2\)"):
        A.RandomResizedCrop(ratio=(-1, 2))
    with pytest.raises(RegularkitError, match=r"size must be None, an int or \(height, width\), got \(1, 2, 3\)"):
        A.RandomResizedCrop(size=(1, 2, 3))
