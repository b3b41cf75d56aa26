"""Search spaces: which recipe fields to tune, and over which ranges.

A :class:`SearchSpace` maps dotted recipe field names ("lr", "augment.mixup_alpha")
to one of four distributions.  The lecture's ``reg = 10**uniform(-5, 5)`` is
``LogUniform(1e-5, 1e5)``: uniform in the exponent, so each decade gets the same
share of the trials ("it's best to optimize in log space").

Sampling is Optuna's (``trial.suggest_*``), so every sampler (random, grid, TPE)
sees the same space.  The TOML form is one table::

    [space]
    lr = {log_uniform = [1e-4, 1e-1]}
    dropout = {uniform = [0.0, 0.5]}
    batch_size = {int = [32, 256], log = true}
    widths = {categorical = [[256, 256], [512]]}
    augment.mixup_alpha = {uniform = [0.0, 1.0]}   # or "augment.mixup_alpha" = ...
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from regularkit._util.checks import check_int
from regularkit.config import load_toml, tomllib
from regularkit.errors import RegularkitError
from regularkit.search.distributions import KINDS, Categorical, Distribution, Int, LogUniform, Numeric, Uniform

__all__ = ["Categorical", "Distribution", "Int", "LogUniform", "SearchSpace", "Uniform"]


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class SearchSpace(Mapping):
    """An ordered, immutable mapping of dotted recipe field names to distributions."""

    def __init__(self, params: Mapping[str, Distribution] | None = None, /, **more: Distribution):
        items = {**(params or {}), **more}
        for name, dist in items.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise RegularkitError(f"search space names are dotted identifiers like 'augment.mixup_alpha', "
                                      f"got {name!r}")
            if not isinstance(dist, (Uniform, LogUniform, Int, Categorical)):
                raise RegularkitError(f"space[{name!r}] must be Uniform, LogUniform, Int or Categorical, "
                                      f"got {dist!r}")
        if not items:
            raise RegularkitError("a search space needs at least one parameter, got {}")
        self._params = dict(items)

    def __getitem__(self, name: str) -> Distribution:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and list(self.items()) == list(other.items())

    def __hash__(self) -> int:
        return hash(tuple(self._params))

    def __repr__(self) -> str:
        return f"SearchSpace({self._params!r})"

    @property
    def numeric(self) -> list[str]:
        """Names of the ranged parameters (the ones that can be narrowed and sit on a border)."""
        return [n for n, d in self.items() if isinstance(d, Numeric)]

    def replace(self, **changes: Distribution) -> SearchSpace:
        return SearchSpace({**self._params, **changes})

    # --- sampling ------------------------------------------------------------------
    def suggest(self, trial) -> dict[str, Any]:
        """One configuration, drawn through ``trial.suggest_*`` in the space's order."""
        return {name: dist.suggest(trial, name) for name, dist in self.items()}

    def decode(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna's stored params -> the values the objective saw (JSON labels -> lists)."""
        return {n: (d.decode(stored[n]) if isinstance(d, Categorical) else stored[n])
                for n, d in self.items() if n in stored}

    def grid(self, points: int | Mapping[str, int] = 5) -> dict[str, list[Any]]:
        """Grid values per parameter: log-spaced for log ranges, every choice for categoricals."""
        per = dict(points) if isinstance(points, Mapping) else {}
        unknown = sorted(set(per) - set(self))
        if unknown:
            raise RegularkitError(f"grid_points names {unknown[0]!r}, which is not in the space {list(self)}")
        default = 5 if isinstance(points, Mapping) else points
        return {n: d.grid(check_int(f"grid_points[{n!r}]", per.get(n, default), minimum=2))
                for n, d in self.items()}

    # --- TOML --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {name: dist.to_toml() for name, dist in self.items()}

    def to_toml(self) -> str:
        """One inline table per line, as people write it (tomli_w would expand each into a section)."""
        lines = ["[space]"]
        for name, table in self.to_dict().items():
            # Dotted names are quoted ("augment.mixup_alpha"), which reads back as the same name.
            key = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)
            body = ", ".join(f"{k} = {_toml_value(v)}" for k, v in table.items())
            lines.append(f"{key} = {{{body}}}")
        text = "\n".join(lines) + "\n"
        tomllib.loads(text)  # never hand out a file we could not read back
        return text

    @classmethod
    def from_dict(cls, table: Mapping[str, Any]) -> SearchSpace:
        return cls(dict(_flatten(table, "")))

    @classmethod
    def from_toml(cls, source: str | Path) -> SearchSpace:
        """Read the ``[space]`` table from a TOML file path or a TOML string."""
        if isinstance(source, Path) or (source.strip() and "=" not in source and "[" not in source):
            doc, where = load_toml(source), repr(str(source))
        else:
            try:
                doc, where = tomllib.loads(source), "TOML text"
            except tomllib.TOMLDecodeError as exc:
                raise RegularkitError(f"invalid TOML in search space text: {exc}") from None
        if not isinstance(doc.get("space"), dict):
            raise RegularkitError(f"no [space] table in {where}; found tables {sorted(doc)}")
        other = sorted(set(doc) - {"space"})
        if other:
            raise RegularkitError(f"{where} holds {other[0]!r} beside the [space] table; a space file holds only it")
        return cls.from_dict(doc["space"])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # finite: the distributions checked it
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise RegularkitError(f"TOML cannot hold the choice {value!r} (no null or objects); keep this space in Python")


def _flatten(table: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Distribution]]:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if not isinstance(value, dict):
            raise RegularkitError(f"space.{name} must be a table like {{log_uniform = [1e-4, 1e-1]}}, got {value!r}")
        kinds = [k for k in value if k in KINDS]
        if not kinds and value and all(isinstance(v, dict) for v in value.values()):
            yield from _flatten(value, f"{name}.")  # a nested table: [space.augment] mixup_alpha = {...}
            continue
        if not kinds:
            raise RegularkitError(f"space.{name} needs one of {', '.join(KINDS)}, got keys {sorted(value)}")
        yield name, _parse(name, value, kinds)


def _parse(name: str, value: dict[str, Any], kinds: list[str]) -> Distribution:
    extra = sorted(set(value) - set(kinds) - ({"log"} if kinds == ["int"] else set()))
    if len(kinds) > 1 or extra:
        raise RegularkitError(f"space.{name} must have exactly one of {', '.join(KINDS)} "
                              f"(plus log for int), got keys {sorted(value)}")
    kind, args = kinds[0], value[kinds[0]]
    try:
        if kind == "categorical":
            return Categorical(args)
        if not isinstance(args, list) or len(args) != 2:
            raise RegularkitError(f"{kind} takes [low, high], got {args!r}")
        return Int(*args, log=value.get("log", False)) if kind == "int" else KINDS[kind](*args)
    except RegularkitError as exc:
        raise RegularkitError(f"space.{name}: {exc}") from None
