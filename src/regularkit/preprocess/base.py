"""The preprocessors' base: an ``nn.Module`` fitted once on the training split, its statistics buffers.

scikit-learn's conventions for fitting (the constructor only stores its arguments;
``fit(x_train)`` sets attributes ending in ``_``; ``transform(x)`` applies them) and
PyTorch's for the result: a fitted preprocessor is a module, so it becomes part of the
model (``nn.Sequential(Standardize().fit(x_train), net)``), its learned statistics
(``mean_``, ``std_``, ``components_``, ...) are *buffers* that follow ``.to(device)``,
travel in ``state_dict()`` and in Lightning checkpoints, and are constants of
``torch.export`` and ``torch.compile`` graphs (``forward`` is ``transform``: no Python
branch on data values).  The constructor arguments, the fitted sample shape and any
fitted integer (``rank_``) are the module's extra state, so ``load_state_dict`` into a
preprocessor built with other (or default) arguments makes it the saved one.  Before
``fit`` the buffers are ``None`` and absent from ``state_dict()``; loading a fitted
state into an unfitted preprocessor creates them with the saved shapes.  Differs from
torchvision v2's ``Normalize`` (mean and std given as constructor numbers, not learned)
and from Keras' ``Normalization`` layer (``adapt()`` instead of ``fit``, statistics as
non-trainable weights): the same idea, with the split guard of
:mod:`regularkit.preprocess.splitguard` on ``fit``.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, Mapping

import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.preprocess.splitguard import as_fit_tensor, check_fit_split

__all__ = ["Preprocessor"]


class Preprocessor(nn.Module):
    """fit / transform (= forward) / state shared by every preprocessor; subclasses call ``super().__init__()`` first.

    ``_fitted`` names the tensor statistics (buffers), ``_fitted_extra`` the fitted Python
    numbers (extra state); ``_transform(x)`` applies them to a floating ``x``.
    """

    _fitted: tuple[str, ...] = ()
    _fitted_extra: tuple[str, ...] = ()
    _needs_fit = True

    def __init__(self):
        super().__init__()
        for name in self._fitted:
            self.register_buffer(name, None)  # fitted attributes other than buffers exist only after fit

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "feature_shape_")

    def fit(self, x, split: str = "train"):
        """Learn the statistics from training data; ``split`` other than train refuses."""
        check_fit_split(x, split, who=type(self).__name__)
        x = as_fit_tensor(x)
        if x.dim() < 2 or x.shape[0] < 1:
            raise RegularkitError(
                f"{type(self).__name__}.fit needs a batch N x ... with N >= 1, got shape {tuple(x.shape)}")
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):  # one pass over the data
            bad = int((~torch.isfinite(x)).sum())
            raise RegularkitError(f"{type(self).__name__}.fit: x holds {bad} non-finite values (NaN or inf)")
        self._fit(x)
        self.feature_shape_ = tuple(x.shape[1:])
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        x = as_fit_tensor(x)
        if self._needs_fit:
            if not hasattr(self, "feature_shape_"):
                raise RegularkitError(f"{type(self).__name__} is not fitted: call fit(x_train) before transform")
            if tuple(x.shape[1:]) != self.feature_shape_:
                raise RegularkitError(f"{type(self).__name__} was fitted on samples of shape {self.feature_shape_}, "
                                      f"got {tuple(x.shape[1:])}")
        if not x.is_floating_point():
            x = x.float()
        return self._transform(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x)

    def fit_transform(self, x, split: str = "train") -> torch.Tensor:
        return self.fit(x, split=split).transform(x)

    def _fit(self, x: torch.Tensor) -> None:
        pass

    def _transform(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self) -> Dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}

    # ------------------------------------------------------------------ state: buffers + extra state
    def get_extra_state(self) -> Dict[str, Any]:
        return {"config": self.get_config(),
                **{name: getattr(self, name, None) for name in self._fitted_extra + ("feature_shape_",)}}

    def set_extra_state(self, state: Any) -> None:
        if not isinstance(state, Mapping) or "config" not in state:
            raise RegularkitError(f"{type(self).__name__} extra state must be a dict with 'config', got {state!r}")
        if state["config"] != self.get_config():  # take the saved arguments, checked by a fresh instance
            fresh = type(self)(**state["config"])
            for name in state["config"]:
                setattr(self, name, getattr(fresh, name))
            self._needs_fit = fresh._needs_fit
        for name in self._fitted_extra + ("feature_shape_",):
            value = state.get(name)
            if value is None:  # saved unfitted
                self.__dict__.pop(name, None)
            else:
                setattr(self, name, tuple(value) if name == "feature_shape_" else value)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # The saved statistics decide the shapes (and whether there are any): make the buffers match first.
        for name in self._fitted:
            saved, current = state_dict.get(prefix + name), self._buffers[name]
            if saved is None:
                self._buffers[name] = None
            elif current is None or current.shape != saved.shape or current.stride() != saved.stride():
                device = saved.device if current is None else current.device
                self._buffers[name] = torch.empty_like(saved, device=device)  # same layout: same matmul rounding
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``; also reads the dict saved before preprocessors were modules."""
        if isinstance(state_dict, Mapping) and "config" in state_dict and "_extra_state" not in state_dict:
            old = dict(state_dict)
            state_dict = {name: old.pop(name) for name in self._fitted if name in old}
            state_dict["_extra_state"] = old
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"
