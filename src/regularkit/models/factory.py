"""The user's own model: a factory ``build(input_shape, num_classes) -> nn.Module`` named on the command line.

``--model my_package.my_module:build`` imports a module from the Python path;
``--model path/to/file.py:build`` loads a file (relative to the working
directory).  The function is called once per run with the shape of one sample
and the number of classes, and must return an ``nn.Module`` with trainable
parameters mapping ``N x input_shape`` floats to ``N x num_classes`` floating
logits, for any ``N``: :func:`check_model` tries it on a batch of two zeros and
on a batch of three other inputs before any training (the second batch must give
finite logits, and a batch size fixed inside the model shows as a wrong first
dimension), so a wrong model is a one-line error, never a crash after an hour.
A factory (or the file defining it) that calls ``sys.exit`` is reported the same
way: its exit code in one line, not the study's exit.

A file factory's module is registered in ``sys.modules`` under a name derived
from the file's absolute path, so models built from it pickle, and worker
processes load it again from the same spec.  :func:`factory_digest` hashes the
file (or the function's source) so that an edited factory makes a new run,
never a reused one.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from regularkit.errors import RegularkitError

__all__ = ["BUILTIN_MODELS", "PYTHON_PREFIX", "is_python_name", "is_factory_spec", "load_factory", "call_factory", "check_model", "factory_digest", "factory_name"]

#: The names the study accepts besides a factory spec (the MODELS registry's keys).
BUILTIN_MODELS = ("mlp", "cnn", "resnet")

_SPEC = re.compile(r"^(?P<where>.+):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")

Factory = Callable[[tuple, int], nn.Module]


def is_factory_spec(spec: str) -> bool:
    """Whether ``spec`` looks like ``module:function`` or ``file.py:function``."""
    return isinstance(spec, str) and _SPEC.match(spec) is not None


def _parse(spec) -> tuple[str, str]:
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise RegularkitError(f"model must be one of {', '.join(BUILTIN_MODELS)}, or MODULE:FUNCTION or "
                              f"FILE.py:FUNCTION naming a factory build(input_shape, num_classes), got {spec!r}")
    return match["where"], match["function"]


def _module_from_file(path: Path, spec: str):
    path = path.expanduser().resolve()
    if not path.is_file():
        raise RegularkitError(f"model factory file not found: {str(path)!r} (from {spec!r})")
    if path.suffix != ".py":
        raise RegularkitError(f"model factory file must be a Python file ending in .py, got {str(path)!r} "
                              f"(from {spec!r})")
    name = "regularkit_user_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # before exec: dataclasses and pickling look the module up by name
    try:
        loader_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's file: any error is theirs, reported on one line
        del sys.modules[name]
        raise RegularkitError(f"cannot load {str(path)!r} for model {spec!r}: {_what(exc)}") from None
    return module


def _what(exc: BaseException) -> str:
    """``ValueError: first line`` of a user's error; ``sys.exit(3)`` as what it is."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}): it called sys.exit, where a factory must return a model"
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {message}"


def load_factory(spec: str) -> Factory:
    """The callable a ``module:function`` or ``file.py:function`` spec names."""
    if is_python_name(spec):
        raise RegularkitError(f"model {spec!r} was a Python callable that cannot be imported by name; pass it again "
                              "with run_study(..., model=build)")
    where, function = _parse(spec)
    if where.endswith(".py") or "/" in where or "\\" in where or Path(where).expanduser().is_file():
        module = _module_from_file(Path(where), spec)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise RegularkitError(f"cannot import module {where!r} for model {spec!r}: {exc}") from None
        except (Exception, SystemExit) as exc:
            raise RegularkitError(f"importing {where!r} for model {spec!r} failed: {_what(exc)}") from None
    factory = getattr(module, function, None)
    if factory is None:
        raise RegularkitError(f"{where!r} has no function {function!r} (model {spec!r})")
    if not callable(factory):
        raise RegularkitError(f"{where}:{function} must be callable build(input_shape, num_classes), "
                              f"got {type(factory).__name__}")
    return factory


#: Prefix of the name of a factory passed from Python that cannot be imported by name (a closure, a lambda).
PYTHON_PREFIX = "python:"


def factory_name(factory: Factory) -> str:
    """``module:function`` for an importable module-level function, else ``python:module.qualname``."""
    module = getattr(factory, "__module__", None) or "?"
    qualname = getattr(factory, "__qualname__", type(factory).__name__)
    if qualname.isidentifier() and module != "__main__":
        return f"{module}:{qualname}"
    return f"{PYTHON_PREFIX}{module}.{qualname}"


def is_python_name(spec: str) -> bool:
    """Whether ``spec`` names a factory that was passed from Python and cannot be imported again."""
    return isinstance(spec, str) and spec.startswith(PYTHON_PREFIX)


def factory_digest(factory: Factory | str) -> str:
    """A hash of what the factory builds: the file's bytes for a file spec, else the function's source."""
    if isinstance(factory, str):
        where, _ = _parse(factory)
        if where.endswith(".py"):
            return hashlib.sha256(Path(where).expanduser().resolve().read_bytes()).hexdigest()[:16]
        factory = load_factory(factory)
    try:
        source = inspect.getsource(factory)
    except (OSError, TypeError):  # built in C, or made at run time: its name is all we can hash
        source = factory_name(factory)
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def call_factory(factory: Factory, input_shape: Sequence[int], num_classes: int, name: str) -> nn.Module:
    """``factory(input_shape, num_classes)``, checked by :func:`check_model`; its errors in one line."""
    try:
        model = factory(tuple(int(s) for s in input_shape), int(num_classes))
    except (Exception, SystemExit) as exc:  # the user's code: any error is theirs, reported on one line
        raise RegularkitError(f"{name}({tuple(input_shape)}, {num_classes}) raised {_what(exc)}") from None
    return check_model(model, input_shape, num_classes, name)


def check_model(model, input_shape: Sequence[int], num_classes: int, name: str) -> nn.Module:
    """``model`` must be an ``nn.Module`` with trainable parameters mapping a batch of two zeros, and a batch
    of three inputs spread over [0, 1], to ``N x num_classes`` floating logits, finite on the second batch.

    Two batch sizes, because a model that reshapes to a fixed batch passes a one-batch probe and fails
    in training; the second batch is not zeros, because NaN logits may need a non-zero input to show
    (and a model dividing by the input's norm gives NaN on zeros only, which real data never is)."""
    call = f"{name}({tuple(input_shape)}, {num_classes})"
    if not isinstance(model, nn.Module):
        raise RegularkitError(f"{call} must return a torch.nn.Module, got {type(model).__name__}")
    size = math.prod(int(s) for s in input_shape)
    batches = (torch.zeros((2, *input_shape)), torch.linspace(0.0, 1.0, 3 * size).reshape(3, *input_shape))
    for i, x in enumerate(batches):
        out = _forward(model, x, call)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(x), num_classes):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            hint = "; is a batch size fixed inside the model?" if i == 1 and isinstance(out, torch.Tensor) and \
                tuple(out.shape[1:]) == (num_classes,) else ""
            raise RegularkitError(f"the model from {call} maps a batch of shape {tuple(x.shape)} to {got}; "
                                  f"expected logits of shape ({len(x)}, {num_classes}){hint}")
        if not out.is_floating_point():
            raise RegularkitError(f"the model from {call} returns logits of dtype {out.dtype}; expected floating "
                                  "point logits (cross-entropy needs them, and gradients flow only through them)")
        if i == 1 and not torch.isfinite(out).all():
            bad = int((~torch.isfinite(out)).sum())
            raise RegularkitError(f"the model from {call} returns {bad} non-finite logit(s) (NaN or inf) of "
                                  f"{out.numel()} on a batch of shape {tuple(x.shape)} with values in [0, 1]")
    params = list(model.parameters())
    if not any(p.requires_grad for p in params):
        what = ("no parameters" if not params
                else f"no trainable parameters (all {len(params)} have requires_grad=False)")
        raise RegularkitError(f"the model from {call} has {what}; training would change nothing")
    return model


def _forward(model: nn.Module, x: torch.Tensor, call: str):
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(x)
    except (Exception, SystemExit) as exc:  # the user's forward: any error is theirs
        raise RegularkitError(f"the model from {call} fails on a batch of shape {tuple(x.shape)}: {_what(exc)}") \
            from None
    finally:
        model.train(was)
