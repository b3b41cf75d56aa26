"""The one error type for bad input.

Every user-facing validation in regularkit raises :class:`RegularkitError`
(a ``ValueError``) with a message that names the parameter and the value
received, e.g. ``max_norm must be > 0, got -1.0`` (the checks live in
:mod:`regularkit._util.checks`).  The CLI turns this one type into a one-line
message and exit code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

__all__ = ["RegularkitError"]


class RegularkitError(ValueError):
    """Bad input given to regularkit (a value, a file, a name)."""
