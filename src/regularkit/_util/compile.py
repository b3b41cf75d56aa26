"""Marks for ``torch.compile`` that do not import ``torch._dynamo`` when a module is imported.

``torch.compiler.assume_constant_result`` imports ``torch._dynamo`` (0.8 s on the 2-core AMD
EPYC of docs/benchmarks.md: sympy, the FX symbolic shapes, every variable tracker) just to set one
attribute on the function it decorates.  Every process that imports the augmentations paid it:
the study's main process and each of its workers, whether or not anything is ever compiled.
:func:`constant_result` sets the same mark without the import; ``tests/_util/test_compile.py``
checks that it is the mark torch's own decorator sets (and fails if torch renames it), and
``tests/augment/test_compile.py`` that the marked function still compiles without a graph break.
"""
from __future__ import annotations

from typing import Callable, TypeVar

__all__ = ["MARK", "constant_result"]

F = TypeVar("F", bound=Callable)

#: the attribute torch.compile reads (torch/_dynamo/decorators.py, ``assume_constant_result``)
MARK = "_dynamo_marked_constant"


def constant_result(fn: F) -> F:
    """``torch.compiler.assume_constant_result(fn)`` without importing ``torch._dynamo``.

    While tracing, ``torch.compile`` calls ``fn`` once and puts its result in the graph as a
    constant; only for functions whose result depends on nothing a draw or a tensor's values can
    change (shapes and settings).
    """
    setattr(fn, MARK, True)
    return fn
