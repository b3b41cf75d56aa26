"""Building an object from a registry entry: the one ``get(identifier)`` behind every family's ``get``.

Keras' habit: a technique is named by a string (its registry key: default
arguments), by a config dict ``{"class_name": name, "config": {...}}`` (what
``get_config`` gives, e.g. read back from JSON), or given as an object, which
is returned as it is.  Each family keeps one literal ``REGISTRY`` dict in its
package and a one-line ``get`` calling :func:`build`.
"""
from __future__ import annotations

import inspect
from typing import Any, Mapping

from regularkit._util.checks import check_choice
from regularkit.errors import RegularkitError

__all__ = ["build", "required_arguments"]


def required_arguments(cls: type) -> list[str]:
    """The constructor arguments of ``cls`` that have no default."""
    return [n for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self" and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def build(registry: Mapping[str, type], identifier: Any, *, family: str, base: type | tuple[type, ...]) -> Any:
    """An instance of ``base`` from a registry name, a ``{"class_name", "config"}`` dict, or an instance."""
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        cls = registry[check_choice(family, identifier, registry)]
        required = required_arguments(cls)
        if required:
            raise RegularkitError(f"{family} {identifier!r} needs {', '.join(required)}; build it from "
                                  f"{{'class_name': {identifier!r}, 'config': {{...}}}}")
        return cls()
    if isinstance(identifier, dict) and set(identifier) == {"class_name", "config"}:
        cls = registry[check_choice("class_name", identifier["class_name"], registry)]
        return cls.from_config(identifier["config"])
    article = "an" if family[0] in "aeiou" else "a"
    raise RegularkitError(f"cannot build {article} {family} from {identifier!r}")
