"""A package's public names resolved on first use (PEP 562), for the packages heavy to import.

``regularkit.data`` (torch, scikit-learn), ``regularkit.metrics`` (SciPy's statistics) and
``regularkit.study`` (the report's matplotlib) map each public name to the submodule that defines
it; :func:`lazy_exports` gives the package's ``__getattr__`` and ``__dir__``.  Each map points only
into its own package, so no edge between rooms is hidden from the layer test
(docs/architecture.md, "Layers").
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``name`` is ``package.<exports[name]>.name``, imported when asked."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
