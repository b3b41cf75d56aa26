"""Which parameters a penalty, constraint, decay group or metric touches: chosen in one place.

The default rule is the one timm and nanoGPT use to split weight decay
(timm ``timm/optim/_param_groups.py: param_groups_weight_decay`` with the model's
``no_weight_decay()`` passed in by ``timm/optim/_optim_factory.py``; nanoGPT
``model.py: configure_optimizers``): a parameter is a *weight* when

1. ``p.ndim >= 2`` -- Linear and Conv kernels, ``MultiheadAttention.in_proj_weight``,
   ``Embedding.weight``, the LSTM/GRU ``weight_ih_l*`` / ``weight_hh_l*``, a ViT's class
   token and position embedding; 1-D and 0-D parameters (biases, norm gains and shifts,
   LSTM ``bias_*_l*``) never are ("not used for bias b", lecture 003: a bias does not
   scale an input, and shrinking it only adds bias to the fit);
2. its name is not ``bias`` / does not end in ``.bias`` (timm's second test, for a
   bias stored with more than one dim);
3. it is not named by a ``no_weight_decay()`` method: timm calls the model's and
   matches each returned string with ``fnmatch`` (an exact name unless it holds
   ``*``, ``?`` or ``[...]``); we match with ``fnmatch.fnmatchcase`` (the same on
   POSIX; timm's ``fnmatch`` folds case on Windows) and, on purpose, also consult
   every *submodule* that has the method, its names read relative to that submodule,
   so a timm backbone wrapped in a bigger model keeps its exclusions (timm looks
   only at the model it is given);
4. ``requires_grad`` is True (timm skips frozen parameters when it builds groups):
   a penalty on a frozen weight is a constant, a decay group cannot hold it, and a
   projection would move a weight that was frozen to stay put.  Pass
   ``trainable_only=False`` to measure frozen weights too (``weight_sparsity`` does:
   an EMA copy is frozen).

``modules`` chooses the rule: ``None`` (default) the rule above; a type or tuple of
``nn.Module`` types the module-type rule (the ``weight`` of each such module, e.g.
:data:`DEFAULT_MODULES`, the default before the rank rule), still minus
``no_weight_decay()`` names and frozen parameters; ``"all"`` every parameter
(frozen ones only with ``trainable_only=False``), ``no_weight_decay()`` ignored.
``pattern`` (a regex, ``re.search`` on the qualified name from
``model.named_parameters()``) then keeps a subset.  ``init.initialize`` selects
layers by type (an initializer is per layer type) with :func:`check_types`.
"""
from __future__ import annotations

import fnmatch
import re

from torch import nn

from regularkit.errors import RegularkitError

__all__ = ["DEFAULT_MODULES", "ALL", "select_parameters", "no_weight_decay_names", "check_selection",
           "check_types", "check_pattern"]

#: The layer types ``init.initialize`` touches, and the module-type rule (``modules=DEFAULT_MODULES``).
DEFAULT_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
    nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)

#: ``modules=ALL`` (``"all"``): every parameter, biases and normalisation parameters included.
ALL = "all"


def no_weight_decay_names(model: nn.Module) -> list[str]:
    """The ``no_weight_decay()`` patterns of ``model`` and its submodules, as qualified-name patterns."""
    out: list[str] = []
    for prefix, module in model.named_modules():
        method = getattr(module, "no_weight_decay", None)
        if not callable(method):
            continue
        names = method()
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise RegularkitError(f"{type(module).__name__}.no_weight_decay() must return a collection of "
                                  f"parameter names, got {names!r}")
        out.extend(f"{prefix}.{n}" if prefix else n for n in names)
    return out


def _is_weight(name: str, p: nn.Parameter) -> bool:
    return p.ndim >= 2 and not (name == "bias" or name.endswith(".bias"))


def select_parameters(model: nn.Module, modules=None, pattern: str | None = None, *,
                      trainable_only: bool = True) -> list[tuple[str, nn.Parameter]]:
    """``(qualified name, parameter)`` pairs chosen by the rule (module doc), then by name pattern.

    ``modules``: ``None`` -> every weight (ndim >= 2, not ``*.bias``, not in ``no_weight_decay()``);
    a type or tuple of types -> the ``weight`` of each such module (minus ``no_weight_decay()``);
    ``"all"`` -> every parameter.  ``pattern``: keep names where ``re.search`` matches.
    ``trainable_only``: skip parameters with ``requires_grad=False``.
    A parameter shared by several modules (tied weights) appears once, under its first name.
    """
    if not isinstance(model, nn.Module):
        raise RegularkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    rule = check_selection(modules)
    regex = check_pattern(pattern)
    if not isinstance(trainable_only, bool):
        raise RegularkitError(f"trainable_only must be True or False, got {trainable_only!r}")
    if rule is None or rule == ALL:
        pairs = list(model.named_parameters())
    else:
        pairs = [(f"{prefix}.weight" if prefix else "weight", m.weight)
                 for prefix, m in model.named_modules()
                 if isinstance(m, rule) and isinstance(getattr(m, "weight", None), nn.Parameter)]
    excluded = [] if rule == ALL else no_weight_decay_names(model)
    seen: set[int] = set()
    out = []
    for name, p in pairs:
        if id(p) in seen:
            continue
        seen.add(id(p))
        if ((rule is None and not _is_weight(name, p)) or (trainable_only and not p.requires_grad)
                or any(fnmatch.fnmatchcase(name, pat) for pat in excluded)
                or (regex is not None and not regex.search(name))):
            continue
        out.append((name, p))
    return out


def check_selection(modules):
    """``None``, ``"all"``, or ``modules`` as a tuple of ``nn.Module`` subclasses."""
    if modules is None or (isinstance(modules, str) and modules == ALL):
        return modules
    types = (modules,) if isinstance(modules, type) else tuple(modules) if isinstance(modules, (tuple, list)) else None
    if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
        raise RegularkitError(f"modules must be None, 'all' or a tuple of nn.Module types, got {modules!r}")
    return types


def check_types(modules):
    """``None``, or ``modules`` as a tuple of ``nn.Module`` subclasses (module-type selection only)."""
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


def types_to_names(modules) -> list | str | None:
    """``modules`` for a config: ``None`` and ``"all"`` as they are, torch.nn types by name (``"Linear"``)."""
    rule = check_selection(modules)
    if rule is None or rule == ALL:
        return rule
    return [t.__name__ if getattr(nn, t.__name__, None) is t else t for t in rule]


def names_to_types(names):
    """The inverse of :func:`types_to_names`: ``"Linear"`` -> ``torch.nn.Linear``; ``None`` and ``"all"`` kept."""
    if names is None or names == ALL:
        return names
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
    return check_selection(tuple(out))
