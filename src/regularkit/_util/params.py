"""Which parameters a penalty, constraint, decay group or initializer touches: chosen in one place.

By default the ``weight`` of every Linear and Conv layer (the "kernels");
biases and normalisation parameters are never selected by default ("not used
for bias b", lecture 003): a bias does not scale an input, and shrinking it
only adds bias to the fit.  ``modules`` picks module types (``None``: every
parameter) and ``pattern`` (a regex, ``re.search`` on the qualified name from
``model.named_parameters()``) keeps a subset.
"""
from __future__ import annotations

import re

from torch import nn

from regularkit.errors import RegularkitError

__all__ = ["DEFAULT_MODULES", "select_parameters", "check_types", "check_pattern"]

#: Layers whose ``weight`` is a penalised/constrained/initialised "kernel" by default.
DEFAULT_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)


def select_parameters(model: nn.Module, modules=DEFAULT_MODULES, pattern: str | None = None
                      ) -> list[tuple[str, nn.Parameter]]:
    """``(qualified name, parameter)`` pairs chosen by module type and name pattern.

    ``modules``: a type or tuple of types -> the ``weight`` of each such module;
    ``None`` -> every parameter.  ``pattern``: keep names where ``re.search`` matches.
    A parameter shared by several modules (tied weights) appears once.
    """
    if not isinstance(model, nn.Module):
        raise RegularkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    types = check_types(modules)
    regex = check_pattern(pattern)
    if types is None:
        pairs = list(model.named_parameters())
    else:
        pairs = [(f"{prefix}.weight" if prefix else "weight", m.weight)
                 for prefix, m in model.named_modules()
                 if isinstance(m, types) and isinstance(getattr(m, "weight", None), nn.Parameter)]
    seen: set[int] = set()
    out = []
    for name, p in pairs:
        if id(p) in seen or (regex is not None and not regex.search(name)):
            continue
        seen.add(id(p))
        out.append((name, p))
    return out


def check_types(modules):
    """``None``, or ``modules`` as a tuple of ``nn.Module`` subclasses."""
    if modules is None:
        return None
    types = (modules,) if isinstance(modules, type) else tuple(modules) if isinstance(modules, (tuple, list)) else None
    if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
        raise RegularkitError(f"modules must be None or a tuple of nn.Module types, got {modules!r}")
    return types


def check_pattern(pattern):
    """``None``, or ``pattern`` compiled as a regular expression."""
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise RegularkitError(f"pattern must be a regular expression string, got {pattern!r}")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise RegularkitError(f"pattern is not a valid regular expression: {pattern!r} ({exc})") from None


def types_to_names(types) -> list[str] | None:
    """``modules`` for a config: torch.nn types by name (``"Linear"``); other types are kept as they are."""
    if types is None:
        return None
    return [t.__name__ if getattr(nn, t.__name__, None) is t else t for t in check_types(types)]


def names_to_types(names) -> tuple[type[nn.Module], ...] | None:
    """The inverse of :func:`types_to_names`: ``"Linear"`` -> ``torch.nn.Linear``."""
    if names is None:
        return None
    if isinstance(names, (str, type)):
        names = [names]
    out = []
    for n in names:
        if isinstance(n, str):
            t = getattr(nn, n, None)
            if not (isinstance(t, type) and issubclass(t, nn.Module)):
                raise RegularkitError(f"modules names an unknown torch.nn module type {n!r}")
            out.append(t)
        else:
            out.append(n)
    return check_types(tuple(out))
