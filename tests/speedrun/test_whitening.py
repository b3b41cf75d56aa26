"""The stem's filters whiten the training patches: their outputs have identity covariance."""
import pytest
import torch

from regularkit.errors import RegularkitError
from regularkit.speedrun.whitening import WhiteningConv, patches, whitening_filters


@pytest.mark.parametrize("size", [2, 3, 4])
def test_outputs_on_training_patches_have_identity_covariance(splits, size):
    images = splits.x_train[:200]
    conv = WhiteningConv(1, size, eps=0.0).fit(images)
    d = size * size
    # stride-1 outputs of the "+" half are the whitened patches; one row per patch position
    out = torch.nn.functional.conv2d(images, conv.weight[:d], conv.bias[:d])
    rows = out.permute(0, 2, 3, 1).reshape(-1, d).double()
    cov = rows.T @ rows / rows.shape[0]             # the bias centred them: no mean to subtract
    assert torch.allclose(rows.mean(0), torch.zeros(d, dtype=torch.float64), atol=1e-3)
    assert torch.allclose(cov, torch.eye(d, dtype=torch.float64), atol=2e-3)


def test_filters_match_the_lecture_formula(splits):
    images = splits.x_train[:100]
    weight, bias = whitening_filters(images, 2, eps=1e-3)
    rows = patches(images, 2).double()
    mean = rows.mean(0)
    vals, vecs = torch.linalg.eigh(torch.cov(rows.T, correction=0))
    vals, vecs = vals.flip(0), vecs.flip(1)           # largest first
    expected = (vecs / (vals + 1e-3).sqrt()).T       # rows U_i / sqrt(S_i + eps)
    got = weight.reshape(4, 4).double()
    signs = torch.sign((got * expected).sum(1))      # eigenvectors are defined up to sign
    assert torch.allclose(got, expected * signs[:, None], atol=1e-4)
    assert torch.allclose(bias.double(), -(got @ mean), atol=1e-5)


def test_fit_holds_both_signs_and_freezes(splits):
    conv = WhiteningConv(1, 2).fit(splits.x_train[:50])
    assert conv.out_channels == 8 and conv.fitted
    assert torch.equal(conv.weight[4:], -conv.weight[:4]) and torch.equal(conv.bias[4:], -conv.bias[:4])
    assert not conv.weight.requires_grad and not conv.bias.requires_grad


def test_unfitted_stem_is_an_ordinary_trainable_conv():
    conv = WhiteningConv(1, 4, stride=2, padding=1)
    assert not conv.fitted and conv.weight.requires_grad
    assert conv(torch.zeros(2, 1, 28, 28)).shape == (2, 32, 14, 14)


def test_bad_input_is_one_line():
    with pytest.raises(RegularkitError, match="N x C x H x W"):
        patches(torch.zeros(28, 28), 2)
    with pytest.raises(RegularkitError, match="size must be >= 1"):
        whitening_filters(torch.zeros(4, 1, 8, 8), 0)
