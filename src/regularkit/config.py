"""Frozen dataclass configs that round-trip to dicts, JSON and TOML.

Every result regularkit writes has its resolved config next to it, so a run
can be reproduced from its folder alone (Keras' get_config/from_config, the
airbench habit of saving the hyper-parameters with the log).
"""
from __future__ import annotations

import dataclasses
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from regularkit.errors import RegularkitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, JSON/TOML-ready dict of a (nested) dataclass; tuples become lists."""
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"expected a dataclass instance, got {type(cfg).__name__}")
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        out[f.name] = _plain(getattr(cfg, f.name))
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "") -> T:
    """Build ``cls`` from a dict, converting nested dicts and lists; unknown keys are errors."""
    if not isinstance(data, dict):
        raise RegularkitError(f"{where or cls.__name__} must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise RegularkitError(
            f"unknown field {unknown[0]!r} in {where or cls.__name__}; known fields: {', '.join(sorted(names))}")
    kwargs = {k: _convert(hints[k], v, f"{where + '.' if where else ''}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise RegularkitError(f"bad {where or cls.__name__}: {exc}") from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        for a in args:
            if dataclasses.is_dataclass(a) and isinstance(value, dict):
                return from_dict(a, value, where=where)
        return _convert(args[0], value, where) if len(args) == 1 else _tuplify(value)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value, where=where)
    if origin is tuple:
        return _tuplify(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _tuplify(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def replace(cfg: T, overrides: dict[str, Any], *, where: str = "") -> T:
    """A copy of ``cfg`` with nested ``overrides`` applied (dotted keys allowed: ``{"optim.lr": 0.1}``)."""
    base = to_dict(cfg)
    merge(base, expand_dotted(overrides))
    return from_dict(type(cfg), base, where=where)


def expand_dotted(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        value = expand_dotted(value) if isinstance(value, dict) else value
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            merge(node[parts[-1]], value)
        else:
            node[parts[-1]] = value
    return out


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overrides`` into ``base`` in place."""
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def _drop_none(value: Any) -> Any:
    # TOML has no null: absent means default None on the way back.
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def to_toml(cfg: Any) -> str:
    return tomli_w.dumps(_drop_none(to_dict(cfg)))


def from_toml(cls: type[T], text: str) -> T:
    return from_dict(cls, tomllib.loads(text))


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning syntax errors and missing files into one-line errors."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegularkitError(f"TOML file not found: {str(path)!r}") from None
    except IsADirectoryError:
        raise RegularkitError(f"{str(path)!r} is a folder, not a TOML file") from None
    except PermissionError:
        raise RegularkitError(f"cannot read {str(path)!r}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise RegularkitError(f"{str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegularkitError(f"invalid TOML in {str(path)!r}: {exc}") from None
