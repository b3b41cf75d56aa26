"""Spectral normalization: every chosen weight divided by its largest singular value, re-estimated each step.

Miyato, Kataoka, Koyama & Yoshida (2018), "Spectral normalization for
generative adversarial networks", ICLR.  A layer uses
``W_SN = W / sigma(W)``, ``sigma(W) = max_{||h|| = 1} ||W h||`` its spectral
norm, so each linear map is 1-Lipschitz and the network's Lipschitz constant
is bounded by the product over layers (times the activations', 1 for ReLU).
``sigma`` is estimated by power iteration, carried over between steps::

    u <- W v / ||W v||,   v <- W^T u / ||W^T u||,   sigma ~ u^T W v,

``n_power_iterations`` rounds per training forward (1 in the paper: the
weights move little per step, so the estimate follows them); eval uses the
stored ``u, v`` without updating them.

:func:`apply_spectral_norm` puts torch's own parametrization
(``torch.nn.utils.parametrizations.spectral_norm``) on every module of the
chosen types, in place; it is not reimplemented here.  For a convolution the
weight is reshaped to ``out x (in * kh * kw)`` (as torch and Miyato et al. do):
that matrix's norm bounds, but is not, the norm of the convolution operator.

Why a helper of its own and not a constraint (:mod:`regularkit.constraints`):
a constraint is the Keras contract ``weight -> projected weight`` applied after
``optimizer.step()`` to the stored weight; spectral normalization is a
reparametrization inside the forward pass (the optimizer updates the raw
``W``, the layer applies ``W / sigma``, and the gradient flows through
``sigma``), with its own state (``u``, ``v``).  Projecting the stored weight onto
``sigma <= 1`` after each step would be a different method (a spectral-norm
max-norm constraint).  A classifier's head is usually left out (``exclude=("head",)``):
a 1-Lipschitz head caps how confident its logits can become.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from regularkit._util.checks import check_int, check_positive
from regularkit.errors import RegularkitError

__all__ = ["LAYER_TYPES", "apply_spectral_norm", "spectral_norms", "remove_spectral_norm"]

#: the layer names ``layers=`` accepts, and the module types each stands for
LAYER_TYPES: dict[str, tuple[type[nn.Module], ...]] = {
    "linear": (nn.Linear,),
    "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
}


def _layer_types(layers) -> tuple[type[nn.Module], ...]:
    """Names of :data:`LAYER_TYPES` and / or module classes -> a tuple of classes."""
    if isinstance(layers, (str, type)):
        layers = (layers,)
    items = tuple(layers) if isinstance(layers, (list, tuple)) else None
    if not items:
        raise RegularkitError(f"layers must name layer types ({', '.join(LAYER_TYPES)}) or nn.Module classes, "
                              f"got {layers!r}")
    types: list[type[nn.Module]] = []
    for item in items:
        if isinstance(item, str) and item in LAYER_TYPES:
            types.extend(LAYER_TYPES[item])
        elif isinstance(item, type) and issubclass(item, nn.Module):
            types.append(item)
        else:
            raise RegularkitError(f"layers must name layer types ({', '.join(LAYER_TYPES)}) or nn.Module classes, "
                                  f"got {item!r}")
    return tuple(types)


def _excluded(name: str, exclude: Sequence[str]) -> bool:
    return any(name == e or name.startswith(e + ".") for e in exclude)


def apply_spectral_norm(model: nn.Module, layers: Sequence[str | type] = ("linear", "conv"), *,
                        n_power_iterations: int = 1, exclude: Sequence[str] = (), eps: float = 1e-12) -> list[str]:
    """Spectral-normalize the ``weight`` of every module of ``model`` of the given types, in place.

    Args:
        model: any module; changed in place (its ``state_dict`` gains the parametrization's keys).
        layers: ``"linear"``, ``"conv"`` and / or module classes (subclasses match too).
        n_power_iterations: power-iteration rounds per training forward (>= 1).
        exclude: module names (and everything below them) to leave alone, e.g. ``("head",)``.
        eps: torch's guard against dividing by a zero norm.

    Returns the names of the wrapped modules; refuses a model where nothing matches.
    """
    if not isinstance(model, nn.Module):
        raise RegularkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    types = _layer_types(layers)
    n_power_iterations = check_int("n_power_iterations", n_power_iterations, minimum=1)
    eps = check_positive("eps", eps)
    if isinstance(exclude, str) or not all(isinstance(e, str) for e in exclude):
        raise RegularkitError(f"exclude must be a list of module names, got {exclude!r}")
    chosen = [(name, m) for name, m in model.named_modules()
              if isinstance(m, types) and not _excluded(name, exclude)
              and isinstance(getattr(m, "weight", None), torch.Tensor)]
    if not chosen:
        raise RegularkitError(f"no layer of {model.__class__.__name__} matches layers={tuple(layers)!r} "
                              f"(exclude={tuple(exclude)!r}): nothing to spectral-normalize")
    for name, module in chosen:
        if parametrize.is_parametrized(module, "weight"):
            raise RegularkitError(f"layer {name!r} already has a parametrization on its weight "
                                  f"(spectral norm applied twice?)")
    for _, module in chosen:
        spectral_norm(module, n_power_iterations=n_power_iterations, eps=eps)
    return [name for name, _ in chosen]


def _normalized(model: nn.Module):
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight") and any(
                type(p).__name__ == "_SpectralNorm" for p in module.parametrizations.weight):
            yield name, module


def spectral_norms(model: nn.Module) -> dict[str, float]:
    """The largest singular value of each spectral-normalized weight as the layer applies it (``dim 0`` rows)."""
    with torch.no_grad():
        return {name: float(torch.linalg.matrix_norm(m.weight.reshape(m.weight.shape[0], -1).double(), ord=2))
                for name, m in _normalized(model)}


def remove_spectral_norm(model: nn.Module) -> list[str]:
    """Bake ``W / sigma`` into plain weights (torch's ``remove_parametrizations``); returns the layers' names."""
    names = []
    for name, module in list(_normalized(model)):
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        names.append(name)
    return names
