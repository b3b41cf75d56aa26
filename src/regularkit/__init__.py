"""regularkit: the regularization toolbox of deep learning, for PyTorch.

Submodules are imported on first use (``regularkit.penalties``,
``regularkit.noise``, ...), so ``import regularkit`` stays cheap for the CLI.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

from regularkit.errors import RegularkitError  # noqa: F401 - the one public error type, here too

_SUBMODULES = {
    "analysis", "augment", "averaging", "config", "constraints", "data", "demos", "distill", "distributed",
    "errors", "init", "integrations", "losses", "metrics", "models", "noise", "norm", "penalties", "preprocess",
    "recipe", "search", "spectral", "speedrun", "study", "targets", "train", "transfer", "tta",
}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"regularkit.{name}")
    raise AttributeError(f"module 'regularkit' has no attribute {name!r}")


__all__ = sorted(_SUBMODULES | {"__version__", "RegularkitError"})
