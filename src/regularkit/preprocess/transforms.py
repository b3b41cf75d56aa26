"""Input normalisation fitted on the training split only: standardise, min-max, rescale, PCA/ZCA whitening.

Deck 003 (Haschke, "Input Normalization"): each input feature gets zero mean,
unit variance, decorrelated, "across whole *training* data set.  Only
*compute* normalization on *training* data set.  *Apply* calculated
transformation to test + validation set."  The cookbook's whitening is

    X -= mean(X, axis=0);  cov = X.T X / N;  U, S, V = svd(cov);  X_white = X U / sqrt(S)

and Keras' ``ImageDataGenerator`` adds ZCA, ``X U diag(1/sqrt(S + eps)) U.T``
(Bell & Sejnowski 1997; Krizhevsky 2009 for images).

Fewer samples than features: N centred samples span at most N - 1 of the D
directions, and the other eigenvalues of the covariance are rounding noise.
The cookbook's formula (and Keras, and scikit-learn's ``PCA(whiten=True)``,
which floors the scale at machine epsilon) divides by their square root, so a
test point's component off the training span is multiplied by ``1/sqrt(eps)``
(1000 for Keras' 1e-6).  We differ on purpose: a direction with eigenvalue
``S_i <= rtol * S_max`` is not spanned and gets gain 0 (PCA drops the
component, ZCA projects it out) -- the rule ``numpy.linalg.pinv`` applies to
small singular values.  ``rtol`` defaults to ``max(N, D) * eps(float64)``, the
default relative tolerance of ``numpy.linalg.matrix_rank`` (and of ``pinv`` with
``rtol=None``; MATLAB's ``rank``; Press et al., *Numerical Recipes*, 3rd ed.
2007, p. 795), applied to the eigenvalues of the covariance (its singular
values), with N and D of the N x D data the covariance is summed from: that is
the size of the float64 rounding error of those eigenvalues, so only
numerically null directions are dropped and full-rank data are whitened
exactly as before.  Fitting on N <= D samples warns (a ``UserWarning``): the
estimate is rank deficient whatever the data.

scikit-learn's conventions: the constructor only stores its arguments;
``fit(x_train)`` sets attributes ending in ``_``; ``transform(x)`` applies
them.  Each preprocessor is an ``nn.Module`` (:mod:`regularkit.preprocess.base`):
fit once on the training split, then put it in the model
(``nn.Sequential(ToDtype(torch.float32), Standardize().fit(x_train), net)``); its
statistics are buffers, so ``state_dict()``, ``.to(device)``, ``torch.export`` and
``torch.compile`` (one graph, ``fullgraph=True``) carry them with the model.

``fit`` refuses data holding NaN or inf (one ``torch.isfinite`` pass over it):
every statistic learned from it would be NaN, and so would every transformed sample.

Guard against fitting on the wrong split: ``fit(x, split=...)`` refuses
``"val"``, ``"validation"`` and ``"test"``, and so does fitting anything tagged
with :func:`~regularkit.preprocess.splitguard.mark_split` (see that module).
"""
from __future__ import annotations

import warnings
from typing import Tuple

import torch

from regularkit._util.checks import (
    check_bool,
    check_choice,
    check_in_range,
    check_int,
    check_non_negative,
    check_number,
)
from regularkit.errors import RegularkitError
from regularkit.preprocess.base import Preprocessor
from regularkit.preprocess.dtype import rescale

__all__ = ["Standardize", "MinMax", "Rescale", "PCAWhiten", "ZCAWhiten"]


# --------------------------------------------------------------------------- preprocessors
_CHUNK = 4096  # rows per float64 pass: bounds the memory of fitting on a large array


def _chunks(x: torch.Tensor):
    for i in range(0, x.shape[0], _CHUNK):
        yield x[i:i + _CHUNK].double()


def _reduce_dims(x: torch.Tensor, per: str) -> Tuple[int, ...]:
    """Dimensions averaged over: all but the channel (dim 1), or only the batch."""
    return tuple(d for d in range(x.dim()) if d != 1) if per == "channel" else (0,)


def _mean_std(x: torch.Tensor, per: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """Population mean and std (NumPy's ``np.std``), two float64 passes over row chunks."""
    dims = _reduce_dims(x, per)
    count = x.numel() // (x[0].numel() if per == "feature" else x.shape[1])
    total = sum(c.sum(dims, keepdim=True) for c in _chunks(x))
    mean = total / count
    sq = sum(((c - mean) ** 2).sum(dims, keepdim=True) for c in _chunks(x))
    return mean[0], (sq / count).sqrt()[0]


def _covariance(flat: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance X_c^T X_c / N (D x D) in float64, the cookbook's formula."""
    mean = sum(c.sum(0) for c in _chunks(flat)) / flat.shape[0]
    cov = sum((c - mean).T @ (c - mean) for c in _chunks(flat)) / flat.shape[0]
    return mean, cov


def _eigh_desc(cov: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (clipped at 0) and eigenvectors, largest first.

    ``eigh`` on the symmetric covariance gives the cookbook's ``svd`` factors
    (U and S coincide for a symmetric positive semi-definite matrix) at less cost.
    """
    vals, vecs = torch.linalg.eigh(cov)
    return vals.flip(0).clamp_min(0.0), vecs.flip(1)


def _check_rtol(rtol: float | None) -> float | None:
    return None if rtol is None else check_in_range("rtol", rtol, 0.0, 1.0, high_inclusive=False)


def _rank(vals: torch.Tensor, n: int, rtol: float | None, who: str) -> int:
    """How many directions the training set spans: eigenvalues ``S_i > rtol * S_max`` (sorted, so a prefix).

    ``rtol=None``: ``max(N, D) * eps(float64)``, ``numpy.linalg.matrix_rank``'s default tolerance.
    """
    d = vals.shape[0]
    tol = max(n, d) * torch.finfo(torch.float64).eps if rtol is None else rtol
    rank = int((vals > tol * vals[0]).sum())
    if rank == 0:
        raise RegularkitError(f"{who}.fit: the {n} training samples are all equal (zero variance), nothing to whiten")
    if n <= d:
        warnings.warn(f"{who}.fit: {n} samples of {d} features (N <= D): the centred training set spans at most "
                      f"{n - 1} directions; whitening keeps the {rank} with eigenvalue > rtol * largest and gives the "
                      f"other {d - rank} gain 0 (not 1/sqrt(eps))", UserWarning, stacklevel=4)
    return rank


class Standardize(Preprocessor):
    """Zero mean and unit variance: ``(x - mean) / (std + eps)``.

    ``mode="featurewise"`` learns mean and std on the training set, per channel
    (``per="channel"``, Keras' ``featurewise_center``: statistics over N, H, W)
    or per feature (``per="feature"``, the cookbook's ``np.mean(X, axis=0)``);
    for N x D data both are per column.  ``mode="samplewise"`` normalises each
    sample by its own mean and std (Keras' ``samplewise_center``) and needs no fit.
    ``eps`` is Keras' 1e-6 added to the std, so a constant feature maps to 0.
    """

    _fitted = ("mean_", "std_")

    def __init__(self, mode: str = "featurewise", *, per: str = "channel", with_mean: bool = True,
                 with_std: bool = True, eps: float = 1e-6):
        super().__init__()
        self.mode = check_choice("mode", mode, ("featurewise", "samplewise"))
        self.per = check_choice("per", per, ("channel", "feature"))
        self.with_mean, self.with_std = check_bool("with_mean", with_mean), check_bool("with_std", with_std)
        self.eps = check_non_negative("eps", eps)
        self._needs_fit = self.mode == "featurewise"

    def _fit(self, x):
        if self.mode == "featurewise":
            mean, std = _mean_std(x, self.per)
            self.mean_, self.std_ = mean.float(), std.float()

    def _transform(self, x):
        if self.mode == "samplewise":
            dims = tuple(range(1, x.dim()))
            mean, std = x.mean(dims, keepdim=True), x.std(dims, keepdim=True, correction=0)
        else:
            mean, std = self.mean_.to(x), self.std_.to(x)
        if self.with_mean:
            x = x - mean
        if self.with_std:
            x = x / (std + self.eps)
        return x


class MinMax(Preprocessor):
    """Map the training range to ``feature_range``: ``lo + (x - min) (hi - lo) / (max - min)``.

    A feature constant on the training set (max == min) is only shifted.
    """

    _fitted = ("min_", "max_")

    def __init__(self, feature_range: Tuple[float, float] = (0.0, 1.0), *, per: str = "channel"):
        super().__init__()
        if not isinstance(feature_range, (tuple, list)) or len(feature_range) != 2:
            raise RegularkitError(f"feature_range must be a pair (low, high), got {feature_range!r}")
        lo, hi = (check_number("feature_range", v) for v in feature_range)
        if lo >= hi:
            raise RegularkitError(f"feature_range must have low < high, got {feature_range!r}")
        self.feature_range = (lo, hi)
        self.per = check_choice("per", per, ("channel", "feature"))

    def _fit(self, x):
        dims = _reduce_dims(x, self.per)
        self.min_ = x.amin(dims, keepdim=True)[0].float()
        self.max_ = x.amax(dims, keepdim=True)[0].float()

    def _transform(self, x):
        lo, hi = self.feature_range
        span = self.max_ - self.min_
        scale = (hi - lo) / torch.where(span > 0, span, torch.ones_like(span))
        return (x - self.min_.to(x)) * scale.to(x) + lo


class Rescale(Preprocessor):
    """Multiply by a constant, e.g. ``Rescale(1/255)`` (``ImageDataGenerator``'s ``rescale``); nothing to fit.

    The in-model layer with an offset is :class:`~regularkit.preprocess.dtype.Rescaling`
    (Keras' layer); both apply :func:`~regularkit.preprocess.dtype.rescale`.
    """

    _needs_fit = False

    def __init__(self, factor: float):
        super().__init__()
        self.factor = check_number("factor", factor)
        if self.factor == 0:  # every input would become 0: the model would learn from nothing
            raise RegularkitError(f"Rescale: factor must be non-zero (0 maps every input to 0), got {factor!r}")

    def _transform(self, x):
        return rescale(x, self.factor)


class PCAWhiten(Preprocessor):
    """The cookbook's PCA whitening ``(x - mean) U / sqrt(S + eps)`` on flattened features.

    Output: N x k (k = ``n_components`` or all D), decorrelated, unit variance
    on the training set (up to ``eps``, which keeps small directions from
    blowing up).  Components are sorted by decreasing variance.

    Components the training set does not span (``S_i <= rtol * S_max``, see the
    module docstring) are dropped, so k is at most that rank ``rank_``: with
    N <= D samples at most N - 1 (a warning says so, and says how many are
    kept).  scikit-learn keeps ``min(N, D)`` components and only floors the scale
    at machine epsilon, so its N-th component (rounding noise, variance ~1e-13)
    blows test points up a million-fold; on the kept components the two agree
    up to sign and sklearn's ``N - 1`` in the variance (``ours = sklearn *
    sqrt(N / (N - 1))`` with ``eps=0``).
    """

    _fitted = ("mean_", "components_", "explained_variance_")
    _fitted_extra = ("rank_",)

    def __init__(self, n_components: int | None = None, *, eps: float = 1e-5, rtol: float | None = None):
        super().__init__()
        self.n_components = None if n_components is None else check_int("n_components", n_components, minimum=1)
        self.eps = check_non_negative("eps", eps)
        self.rtol = _check_rtol(rtol)

    def _fit(self, x):
        flat = x.reshape(x.shape[0], -1)
        k = self.n_components or flat.shape[1]
        if k > flat.shape[1]:
            raise RegularkitError(f"n_components must be <= the {flat.shape[1]} features, got {k}")
        mean, cov = _covariance(flat)
        vals, vecs = _eigh_desc(cov)
        self.rank_ = _rank(vals, flat.shape[0], self.rtol, "PCAWhiten")
        if self.rank_ < k and flat.shape[0] > flat.shape[1]:  # N <= D has already warned
            warnings.warn(f"PCAWhiten.fit: the training data span {self.rank_} directions, fewer than the {k} "
                          f"components asked for; keeping {self.rank_}", UserWarning, stacklevel=3)
        k = min(k, self.rank_)
        self.mean_ = mean.float()
        self.components_ = vecs[:, :k].float().contiguous()
        self.explained_variance_ = vals[:k].float()

    def _transform(self, x):
        scale = self.components_ / (self.explained_variance_ + self.eps).sqrt()
        return (x.reshape(x.shape[0], -1) - self.mean_.to(x)) @ scale.to(x)


class ZCAWhiten(Preprocessor):
    """ZCA whitening as Keras: ``(x - mean) U diag(1 / sqrt(S + eps)) U^T``, reshaped back.

    Unlike PCA whitening it rotates back to pixel space, so whitened images
    still look like (edge-enhanced) images.  ``eps`` is Keras' ``zca_epsilon``.

    Unlike Keras, directions the training set does not span (``S_i <= rtol *
    S_max``, see the module docstring; ``rank_`` counts the others) get gain 0
    instead of ``1/sqrt(eps)``: ``W = U_r diag(1 / sqrt(S_r + eps)) U_r^T`` over
    the r spanned directions, the (eps-regularised) pseudo-inverse square root
    of the covariance.  A test point's component off the training span is
    projected out instead of multiplied by ``1/sqrt(eps)`` (1000 for the default
    eps); on full-rank data nothing changes.
    """

    _fitted = ("mean_", "whitening_")
    _fitted_extra = ("rank_",)

    def __init__(self, eps: float = 1e-6, *, rtol: float | None = None):
        super().__init__()
        self.eps = check_non_negative("eps", eps)
        self.rtol = _check_rtol(rtol)

    def _fit(self, x):
        flat = x.reshape(x.shape[0], -1)
        mean, cov = _covariance(flat)
        vals, vecs = _eigh_desc(cov)
        r = self.rank_ = _rank(vals, flat.shape[0], self.rtol, "ZCAWhiten")
        self.mean_ = mean.float()
        self.whitening_ = ((vecs[:, :r] / (vals[:r] + self.eps).sqrt()) @ vecs[:, :r].T).float()

    def _transform(self, x):
        flat = x.reshape(x.shape[0], -1) - self.mean_.to(x)
        return (flat @ self.whitening_.to(x)).view(x.shape)
