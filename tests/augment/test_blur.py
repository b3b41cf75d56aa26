"""GaussianBlur: torchvision's kernel and reflect padding restated in NumPy, one sigma per sample."""
import numpy as np
import pytest
import torch

import regularkit.augment as A
from regularkit.augment.blur import gaussian_blur, gaussian_kernel
from regularkit.errors import RegularkitError


def gen(seed):
    return torch.Generator().manual_seed(seed)


def tv_kernel(k, sigma):
    """torchvision v2: softmax(-(x / sigma)^2) over x = linspace(-(k-1)/(2 sqrt 2), (k-1)/(2 sqrt 2), k)."""
    lim = (k - 1) / (2 * np.sqrt(2))
    z = -(np.linspace(-lim, lim, k) / sigma) ** 2
    return np.exp(z) / np.exp(z).sum()


def tv_blur(img, kx, ky, sx, sy):
    """torch_pad(reflect) by k // 2, then the 2-D kernel outer(g_y, g_x), as torchvision's gaussian_blur_image."""
    padded = np.pad(img, ((0, 0), (ky // 2, ky // 2), (kx // 2, kx // 2)), mode="reflect")
    k2 = np.outer(tv_kernel(ky, sy), tv_kernel(kx, sx))
    c, h, w = img.shape
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            out[:, i, j] = (padded[:, i:i + ky, j:j + kx] * k2).sum((1, 2))
    return out


@pytest.mark.parametrize("k, sigma", [(3, 0.1), (5, 1.0), (9, 2.5), (1, 3.0)])
def test_kernel_is_torchvisions(k, sigma):
    np.testing.assert_allclose(gaussian_kernel(k, torch.tensor([sigma]))[0].numpy(), tv_kernel(k, sigma), atol=1e-12)


@pytest.mark.parametrize("kernel_size, h, w", [((3, 3), 8, 7), ((5, 9), 12, 10), ((7, 7), 3, 2)])
def test_blur_matches_numpy_with_reflect_padding_per_sample_sigma(kernel_size, h, w):
    """Includes pads wider than the image (7x7 on 3x2): numpy's reflect keeps folding, as ours does."""
    x = torch.rand(3, 2, h, w, generator=gen(0), dtype=torch.float64)
    sigma = torch.tensor([0.3, 1.0, 2.2])
    out = gaussian_blur(x, kernel_size, sigma)
    for i in range(3):
        ref = tv_blur(x[i].numpy(), kernel_size[0], kernel_size[1], float(sigma[i]), float(sigma[i]))
        np.testing.assert_allclose(out[i].numpy(), ref, atol=1e-12)


def test_sigma_is_drawn_per_sample_and_constant_images_stay_constant():
    op = A.GaussianBlur(5, (0.5, 2.0))
    sig = op.make_params(torch.empty(()).expand(20_000, 1, 4, 4), gen(1))["sigma"]
    assert sig.min() >= 0.5 and sig.max() < 2.0 and abs(sig.mean() - 1.25) < 0.01
    flat = torch.full((3, 3, 6, 6), 0.25)
    torch.testing.assert_close(op(flat, generator=gen(2)), flat)
    x8 = torch.randint(0, 256, (4, 3, 6, 6), generator=gen(3), dtype=torch.uint8)
    p = op.make_params(x8, gen(4))
    assert torch.equal(op.apply(x8, None, p)[0], op.apply(x8.float(), None, p)[0].round().clamp(0, 255).byte())


def test_larger_sigma_blurs_more():
    x = torch.rand(1, 1, 16, 16, generator=gen(5)).expand(2, 1, 16, 16)
    out = gaussian_blur(x, (7, 7), torch.tensor([0.5, 2.0]))
    assert out[1].std() < out[0].std() < x[0].std()


def test_errors_name_the_value():
    with pytest.raises(RegularkitError, match=r"kernel_size must be odd, got \(3, 4\)"):
        A.GaussianBlur((3, 4))
    with pytest.raises(RegularkitError, match="kernel_size must be >= 1, got -1"):
        A.GaussianBlur(-1)
    with pytest.raises(RegularkitError, match=r"sigma must be > 0, got \(0.0, 1.0\)"):
        A.GaussianBlur(3, (0.0, 1.0))
