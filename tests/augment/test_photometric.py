"""Colour jitter, PCA colour, erasing and noise: NumPy references, box geometry, statistics."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import regularkit.augment as A
from regularkit.errors import RegularkitError
from regularkit.preprocess import mark_split


def gen(seed):
    return torch.Generator().manual_seed(seed)

# --------------------------------------------------------------------------- erasing
def _erased(x, out):
    return (out != x).any(1)  # N x H x W


# --------------------------------------------------------------------------- colour jitter
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), c=st.sampled_from([1, 3]))
def test_color_jitter_matches_numpy_sequence(seed, c):
    """The fused kernel equals brightness, then contrast about the mean luminance, then the shift."""
    x = torch.rand(4, c, 5, 6, generator=gen(seed), dtype=torch.float64)
    op = A.ColorJitter(0.5, 0.5, 0.3)
    p = op.make_params(x, gen(seed))
    out, _ = op.apply(x, None, p)
    xs = x.numpy()
    for i in range(4):
        b, k, s = float(p["brightness"][i]), float(p["contrast"][i]), p["shift"][i].numpy()
        x1 = b * xs[i]
        gray = np.tensordot([0.299, 0.587, 0.114], x1, 1) if c == 3 else x1[0]
        x2 = k * x1 + (1 - k) * gray.mean()
        np.testing.assert_allclose(out[i].numpy(), x2 + s[:, None, None], atol=1e-6)


def test_color_jitter_identity_and_ranges():
    x = torch.rand(50, 3, 4, 4)
    torch.testing.assert_close(A.ColorJitter()(x, generator=gen(0)), x)
    p = A.ColorJitter(brightness=1.5, contrast=(0.5, 0.7)).make_params(x, gen(0))
    assert p["brightness"].min() >= 0 and p["brightness"].max() <= 2.5
    assert p["contrast"].min() >= 0.5 and p["contrast"].max() <= 0.7
    clipped = A.ColorJitter(1.0, clip=(0, 1))(x, generator=gen(0))
    assert clipped.min() >= 0 and clipped.max() <= 1


def test_keras_channel_shift_is_one_offset_clipped_to_the_sample_range():
    x = torch.rand(6, 3, 4, 4)
    op = A.ColorJitter(channel_shift=0.3, per_channel_shift=False, clip="sample")
    out = op(x, generator=gen(1))
    assert (out.amin((1, 2, 3)) >= x.amin((1, 2, 3)) - 1e-6).all()
    assert (out.amax((1, 2, 3)) <= x.amax((1, 2, 3)) + 1e-6).all()
    assert op.make_params(x, gen(1))["shift"].shape == (6, 1)


def test_color_jitter_errors():
    with pytest.raises(RegularkitError, match=r"brightness must have low <= high, got \(2, 1\)"):
        A.ColorJitter(brightness=(2, 1))
    with pytest.raises(RegularkitError, match="clip must be None, 'sample' or a pair"):
        A.ColorJitter(clip="image")


# --------------------------------------------------------------------------- PCA colour
def test_pca_color_eigenvectors_match_numpy_eigh_of_pixel_covariance():
    g = gen(0)
    mix = torch.tensor([[1.0, 0.5, 0.2], [0.0, 1.0, 0.4], [0.0, 0.0, 0.3]])
    x = torch.einsum("ij,njhw->nihw", mix, torch.rand(40, 3, 8, 8, generator=g))
    op = A.PCAColor(std=0.1).fit(x)
    pixels = x.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()
    vals, vecs = np.linalg.eigh(np.cov(pixels, rowvar=False, bias=True))
    order = np.argsort(vals)[::-1]
    np.testing.assert_allclose(op.eigvals_.numpy(), vals[order], rtol=1e-4)
    for k in range(3):  # eigenvectors are defined up to sign
        got, ref = op.eigvecs_[:, k].double().numpy(), vecs[:, order[k]]
        np.testing.assert_allclose(got * np.sign(got @ ref), ref, atol=1e-4)


def test_pca_color_offset_formula_and_statistics():
    x = torch.rand(20, 3, 6, 6, generator=gen(1))
    op = A.PCAColor(std=0.5).fit(x)
    p = op.make_params(torch.empty(4000, 3, 1, 1), gen(2))
    # Offsets projected on the eigenvectors have std  std * sqrt(eigval).
    coords = p["offset"].double() @ op.eigvecs_.double()
    np.testing.assert_allclose(coords.std(0).numpy(), 0.5 * op.eigvals_.sqrt().numpy(), rtol=0.06)
    literal = A.PCAColor(std=0.5, literal=True).fit(x).make_params(torch.empty(4000, 3, 1, 1), gen(2))
    coords = literal["offset"].double() @ op.eigvecs_.double()
    np.testing.assert_allclose(coords.std(0).numpy(), 0.5 * op.eigvals_.numpy(), rtol=0.06)
    out = op(x[:3], generator=gen(3))
    delta = out - x[:3]
    assert torch.allclose(delta, delta[:, :, :1, :1].expand_as(delta))  # one offset per image and channel


def test_pca_color_refuses_test_data_and_unfitted_use():
    x = torch.rand(4, 3, 5, 5)
    with pytest.raises(RegularkitError, match="PCAColor.fit refuses the 'test' split"):
        A.PCAColor().fit(x, split="test")
    x_val = mark_split(torch.rand(4, 3, 5, 5), "val")
    with pytest.raises(RegularkitError, match="refuses data marked as the 'val' split"):
        A.PCAColor().fit(x_val[:2])
    with pytest.raises(RegularkitError, match=r"PCAColor is not fitted: call fit\(x_train\) first"):
        A.PCAColor()(x)
    with pytest.raises(RegularkitError, match="fitted on 3 channels, got 1"):
        A.PCAColor().fit(x)(torch.rand(2, 1, 5, 5))


def test_pca_color_axes_are_buffers_loaded_alone_or_inside_a_pipeline():
    op = A.PCAColor().fit(torch.rand(5, 3, 4, 4, generator=gen(1)))
    assert set(op.state_dict()) == {"eigvals_", "eigvecs_"}
    other = A.PCAColor()
    assert not hasattr(other, "eigvecs_")
    other.load_state_dict(op.state_dict())
    x = torch.rand(3, 3, 4, 4, generator=gen(2))
    assert torch.equal(op(x, generator=gen(0)), other(x, generator=gen(0)))
    pipe = A.Compose([A.HorizontalFlip(), op])
    fresh = A.Compose([A.HorizontalFlip(), A.PCAColor()])
    fresh.load_state_dict(pipe.state_dict())
    assert torch.equal(fresh(x, generator=gen(0)), pipe(x, generator=gen(0)))
    assert op.double().eigvecs_.dtype == torch.float64  # buffers follow the module
