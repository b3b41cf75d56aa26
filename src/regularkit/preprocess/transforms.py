"""Input normalisation fitted on the training split only: standardise, min-max, rescale, PCA/ZCA whitening.

Deck 003 (Haschke, "Input Normalization"): each input feature gets zero mean,
unit variance, decorrelated, "across whole *training* data set.  Only
*compute* normalization on *training* data set.  *Apply* calculated
transformation to test + validation set."  The cookbook's whitening is

    X -= mean(X, axis=0);  cov = X.T X / N;  U, S, V = svd(cov);  X_white = X U / sqrt(S)

and Keras' ``ImageDataGenerator`` adds ZCA, ``X U diag(1/sqrt(S + eps)) U.T``
(Bell & Sejnowski 1997; Krizhevsky 2009 for images).

scikit-learn's conventions: the constructor only stores its arguments;
``fit(x_train)`` sets attributes ending in ``_``; ``transform(x)`` applies
them; ``state_dict()`` / ``load_state_dict()`` save them with the model.

Guard against fitting on the wrong split: ``fit(x, split=...)`` refuses
``"val"``, ``"validation"`` and ``"test"``, and so does fitting anything tagged
with :func:`~regularkit.preprocess.splitguard.mark_split` (see that module).
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, Tuple

import torch

from regularkit._util.checks import check_choice, check_non_negative, check_number, check_positive
from regularkit.errors import RegularkitError
from regularkit.preprocess.splitguard import as_fit_tensor, check_fit_split

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


class _Preprocessor:
    """fit / transform / state_dict shared by every preprocessor."""

    _fitted: Tuple[str, ...] = ()
    _needs_fit = True

    def fit(self, x, split: str = "train"):
        """Learn the statistics from training data; ``split`` other than train refuses."""
        check_fit_split(x, split, who=type(self).__name__)
        x = as_fit_tensor(x)
        if x.dim() < 2 or x.shape[0] < 1:
            raise RegularkitError(f"{type(self).__name__}.fit needs a batch N x ... with N >= 1, got shape {tuple(x.shape)}")
        self._fit(x)
        self.feature_shape_ = tuple(x.shape[1:])
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        x = as_fit_tensor(x)
        if self._needs_fit:
            if not hasattr(self, "feature_shape_"):
                raise RegularkitError(f"{type(self).__name__} is not fitted: call fit(x_train) before transform")
            if tuple(x.shape[1:]) != self.feature_shape_:
                raise RegularkitError(
                    f"{type(self).__name__} was fitted on samples of shape {self.feature_shape_}, got {tuple(x.shape[1:])}")
        if not x.is_floating_point():
            x = x.float()
        return self._transform(x)

    __call__ = transform

    def fit_transform(self, x, split: str = "train") -> torch.Tensor:
        return self.fit(x, split=split).transform(x)

    def _fit(self, x: torch.Tensor) -> None:
        pass

    def get_config(self) -> Dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}

    def state_dict(self) -> Dict[str, Any]:
        """Constructor arguments and fitted attributes, ready for ``torch.save`` next to the model."""
        state: Dict[str, Any] = {"config": self.get_config()}
        for name in self._fitted + ("feature_shape_",):
            if hasattr(self, name):
                state[name] = getattr(self, name)
        return state

    def load_state_dict(self, state: Dict[str, Any]):
        if state.get("config", self.get_config()) != self.get_config():
            type(self).__init__(self, **state["config"])  # a fresh instance takes the saved arguments
        for name, value in state.items():
            if name != "config":
                setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class Standardize(_Preprocessor):
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
        self.mode = check_choice("mode", mode, ("featurewise", "samplewise"))
        self.per = check_choice("per", per, ("channel", "feature"))
        self.with_mean, self.with_std = bool(with_mean), bool(with_std)
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


class MinMax(_Preprocessor):
    """Map the training range to ``feature_range``: ``lo + (x - min) (hi - lo) / (max - min)``.

    A feature constant on the training set (max == min) is only shifted.
    """

    _fitted = ("min_", "max_")

    def __init__(self, feature_range: Tuple[float, float] = (0.0, 1.0), *, per: str = "channel"):
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


class Rescale(_Preprocessor):
    """Multiply by a constant, e.g. ``Rescale(1/255)`` (Keras' ``rescale``); nothing to fit."""

    _needs_fit = False

    def __init__(self, factor: float):
        self.factor = check_number("factor", factor)

    def _transform(self, x):
        return x * self.factor


class PCAWhiten(_Preprocessor):
    """The cookbook's PCA whitening ``(x - mean) U / sqrt(S + eps)`` on flattened features.

    Output: N x k (k = ``n_components`` or all D), decorrelated, unit variance
    on the training set (up to ``eps``, which keeps near-zero directions from
    blowing up).  Components are sorted by decreasing variance.
    """

    _fitted = ("mean_", "components_", "explained_variance_")

    def __init__(self, n_components: int | None = None, *, eps: float = 1e-5):
        if n_components is not None:
            n_components = int(check_positive("n_components", n_components))
        self.n_components = n_components
        self.eps = check_non_negative("eps", eps)

    def _fit(self, x):
        flat = x.reshape(x.shape[0], -1)
        k = self.n_components or flat.shape[1]
        if k > flat.shape[1]:
            raise RegularkitError(f"n_components must be <= the {flat.shape[1]} features, got {k}")
        mean, cov = _covariance(flat)
        vals, vecs = _eigh_desc(cov)
        self.mean_ = mean.float()
        self.components_ = vecs[:, :k].float()
        self.explained_variance_ = vals[:k].float()

    def _transform(self, x):
        scale = self.components_ / (self.explained_variance_ + self.eps).sqrt()
        return (x.reshape(x.shape[0], -1) - self.mean_.to(x)) @ scale.to(x)


class ZCAWhiten(_Preprocessor):
    """ZCA whitening as Keras: ``(x - mean) U diag(1 / sqrt(S + eps)) U^T``, reshaped back.

    Unlike PCA whitening it rotates back to pixel space, so whitened images
    still look like (edge-enhanced) images.  ``eps`` is Keras' ``zca_epsilon``.
    """

    _fitted = ("mean_", "whitening_")

    def __init__(self, eps: float = 1e-6):
        self.eps = check_non_negative("eps", eps)

    def _fit(self, x):
        mean, cov = _covariance(x.reshape(x.shape[0], -1))
        vals, vecs = _eigh_desc(cov)
        self.mean_ = mean.float()
        self.whitening_ = ((vecs / (vals + self.eps).sqrt()) @ vecs.T).float()

    def _transform(self, x):
        flat = x.reshape(x.shape[0], -1) - self.mean_.to(x)
        return (flat @ self.whitening_.to(x)).view(x.shape)
