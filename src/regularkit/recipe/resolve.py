"""Named recipes made into :class:`~regularkit.train.config.Recipe` objects, and recipes from TOML files.

A TOML file can define new recipes or override the catalog's (:mod:`regularkit.recipe.catalog`)::

    [recipes.l2-strong]
    description = "coupled L2, ten times the default"
    "reg.l2" = 1e-2
    strength = {field = "reg.l2", log_uniform = [1e-4, 1e-1]}

    [recipes.wide-dropout]
    model = { widths = [1024, 1024], dropout = 0.5 }
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping

from regularkit._util.checks import check_positive
from regularkit.config import expand_dotted, load_toml, merge, replace
from regularkit.errors import RegularkitError
from regularkit.recipe.catalog import CATALOG, RECIPE_NAME, Strength
from regularkit.search.distributions import Categorical, Int
from regularkit.search.space import SearchSpace
from regularkit.train.config import Recipe

__all__ = ["load_recipe_file", "resolve"]


def _numeric_field(dotted: str, where: str) -> None:
    """Refuse a dotted name that is not a numeric field of :class:`Recipe` (``reg.l3``, ``model``,
    ``optim.optimizer``)."""
    node: Any = Recipe
    for i, part in enumerate(dotted.split(".")):
        hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else {}
        if part not in hints:
            known = ", ".join(sorted(hints)) or "none: it is a number"
            raise RegularkitError(f"{where} field {dotted!r}: {'.'.join(dotted.split('.')[:i]) or 'a recipe'} has "
                                  f"no field {part!r} (fields: {known})")
        node = hints[part]
        if typing.get_origin(node) in (typing.Union, types.UnionType):
            node = next(a for a in typing.get_args(node) if a is not type(None))
    if node not in (int, float):
        raise RegularkitError(f"{where} field {dotted!r} is not a number (a strength is searched over a range)")


def _strength_from_toml(name: str, table: Any, path) -> Strength:
    """``strength = {field = "reg.l2", log_uniform = [1e-5, 1e-1]}`` (or uniform, or int with log)."""
    where = f"recipe {name!r} in {str(path)!r}: strength"
    if not isinstance(table, dict) or not isinstance(table.get("field"), str):
        raise RegularkitError(f"{where} must be a table with a field name, e.g. {{field = \"reg.l2\", "
                              f"log_uniform = [1e-5, 1e-1]}}, got {table!r}")
    coupled = table.get("coupled", {})
    if not isinstance(coupled, dict) or not all(isinstance(k, str) for k in coupled):
        raise RegularkitError(f"{where}.coupled must be a table {{\"reg.l2\" = 50.0}} of fields and ratios, "
                              f"got {coupled!r}")
    for dotted in (table["field"], *coupled):
        _numeric_field(dotted, where)
    ratios = tuple((k, check_positive(f"{where}.coupled.{k}", v)) for k, v in coupled.items())
    dist = SearchSpace.from_dict({table["field"]: {k: v for k, v in table.items() if k not in ("field", "coupled")}}
                                 )[table["field"]]
    if isinstance(dist, Categorical):
        raise RegularkitError(f"{where} must be a range (uniform, log_uniform or int), got categorical")
    return Strength(table["field"], dist.low, dist.high, log=dist.log, integer=isinstance(dist, Int), coupled=ratios)


def load_recipe_file(path) -> dict[str, tuple]:
    """Recipes defined in a TOML file's ``[recipes.NAME]`` tables: name -> (description, overrides, strength).

    A table may declare its strength for ``--tune``:
    ``strength = {field = "reg.l2", log_uniform = [1e-5, 1e-1]}``.
    """
    data = load_toml(path)
    tables = data.get("recipes")
    if not isinstance(tables, dict) or not tables:
        raise RegularkitError(f"{str(path)!r} has no [recipes.NAME] tables")
    other = sorted(set(data) - {"recipes"})
    if other:
        raise RegularkitError(f"{str(path)!r} holds {other[0]!r} beside [recipes.NAME] tables; a recipe file holds "
                              "only recipes")
    out = {}
    for name, table in tables.items():
        if not RECIPE_NAME.fullmatch(name):
            raise RegularkitError(f"recipe name {name!r} in {str(path)!r} must be 1-64 letters, digits, '-', '_', '.' "
                                  "or '+'")
        if not isinstance(table, dict):
            raise RegularkitError(f"recipe {name!r} in {str(path)!r} must be a table, got {table!r}")
        table = dict(table)
        description = table.pop("description", "")
        if not isinstance(description, str):
            raise RegularkitError(f"recipe {name!r} in {str(path)!r}: description must be text, got {description!r}")
        strength = _strength_from_toml(name, table.pop("strength"), path) if "strength" in table else None
        out[name] = (description, table, strength)
    return out


def resolve(names, base: Recipe, *, extra: Mapping[str, tuple[str, dict]] | None = None) -> list[Recipe]:
    """The Recipe objects for ``names``: base plus each recipe's overrides, validated."""
    registry = {**CATALOG, **(extra or {})}
    recipes = []
    for name in names:
        if name not in registry:
            raise RegularkitError(f"unknown recipe {name!r}; choose from {', '.join(registry)}")
        description, overrides = registry[name][:2]
        merged = merge(expand_dotted(overrides), {"name": name, "description": description})
        recipes.append(replace(base, merged, where=f"recipe {name!r}"))
    return recipes
