"""A first convolution whose filters whiten image patches (PCA whitening of k x k patches).

Deck 003 ("Input Normalization: Whitening / PCA"): centre the data, take the
eigenvectors U and eigenvalues S of its covariance, and ``x_white = (x - mean)
U / sqrt(S + eps)``.  Applied to every k x k patch of an image, that map *is*
a convolution: its filters are the rows ``U_i / sqrt(S_i + eps)`` reshaped to
k x k, its bias ``-filter . mean``.  airbench (Keller Jordan, 2024,
``airbench94.py``: ``init_whitening_conv``) initialises its first layer this
way on 2 x 2 CIFAR patches and keeps it frozen; like it, the layer here holds
each filter and its negative (``[W, -W]``), so the GELU after it keeps both
signs of every whitened component (2 k^2 output channels).

The statistics come from :class:`regularkit.preprocess.PCAWhiten`, fitted on
the patches of training images only (``fit(split="train")`` refuses anything
else): the one implementation of the lecture's formula, with its rank rule
(directions the patches do not span get gain 0).  Patches are read with
stride 1 whatever the convolution's stride, so every position contributes.

On the stride: the speed-run network applies this convolution with stride 2
(patch 4, padding 1: 28 x 28 -> 14 x 14), so the first trained layer already
runs at a quarter of the pixels -- the "downsample early" of the speed runs,
done by a layer that loses nothing (its 2 k^2 channels span every patch).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_int, check_non_negative
from regularkit.errors import RegularkitError
from regularkit.preprocess import PCAWhiten

__all__ = ["patches", "whitening_filters", "WhiteningConv"]


def patches(images: torch.Tensor, size: int) -> torch.Tensor:
    """Every ``size x size`` patch (stride 1, no padding) of N x C x H x W images, as rows of C * size^2."""
    if images.dim() != 4:
        raise RegularkitError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
    cols = F.unfold(images.float(), size)              # N x (C k k) x L
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def whitening_filters(images: torch.Tensor, size: int, *, eps: float = 5e-4,
                      max_patches: int = 1_000_000) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight, bias)`` of a conv that PCA-whitens ``size x size`` patches: C k^2 filters, largest variance first.

    ``weight`` is ``D x C x k x k`` with ``D = C k^2`` (fewer if the patches span fewer
    directions), ``bias`` is ``-weight . mean``, so on a training patch ``p`` the
    outputs are ``(p - mean) U / sqrt(S + eps)``: covariance ``S / (S + eps)``, the
    identity up to ``eps``.  At most ``max_patches`` patches are used (the first
    images' patches, in order: deterministic).
    """
    size = check_int("size", size, minimum=1)
    eps = check_non_negative("eps", eps)
    max_patches = check_int("max_patches", max_patches, minimum=2)
    rows = patches(images, size)[:max_patches]
    pca = PCAWhiten(eps=eps).fit(rows, split="train")
    scale = pca.components_ / (pca.explained_variance_ + eps).sqrt()     # D x k
    weight = scale.T.reshape(-1, images.shape[1], size, size).contiguous()
    bias = -(pca.mean_ @ scale)
    return weight, bias


class WhiteningConv(nn.Conv2d):
    """``Conv2d(C, 2 C k^2, k)`` holding ``[W, -W]`` of :func:`whitening_filters`; frozen unless ``trainable``.

    Built with default (random) weights; :meth:`fit` sets the whitening filters from
    training images.  A model that skips :meth:`fit` (the ablation without the
    whitening init) keeps torch's default initialisation and trains the layer.
    """

    def __init__(self, in_channels: int, size: int, *, stride: int = 1, padding: int = 0, eps: float = 5e-4):
        self.size = check_int("size", size, minimum=1)
        self.eps = check_non_negative("eps", eps)
        in_channels = check_int("in_channels", in_channels, minimum=1)
        super().__init__(in_channels, 2 * in_channels * size * size, size, stride=stride, padding=padding, bias=True)
        self.fitted = False

    @torch.no_grad()
    def fit(self, images: torch.Tensor, *, max_patches: int = 1_000_000) -> "WhiteningConv":
        """Set the filters to ``[W, -W]`` and the bias to ``[b, -b]`` whitening ``images``' patches; freeze them."""
        weight, bias = whitening_filters(images, self.size, eps=self.eps, max_patches=max_patches)
        d = weight.shape[0]
        self.weight.zero_()
        self.bias.zero_()  # directions the patches do not span (d < C k^2) stay silent
        self.weight[:d].copy_(weight)
        self.weight[d:2 * d].copy_(-weight)
        self.bias[:d].copy_(bias)
        self.bias[d:2 * d].copy_(-bias)
        self.requires_grad_(False)
        self.fitted = True
        return self

    def extra_repr(self) -> str:
        return super().extra_repr() + f", eps={self.eps}, fitted={self.fitted}"
