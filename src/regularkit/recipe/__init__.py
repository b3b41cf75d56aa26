"""The recipe catalog: named recipes, what their fields do, and how a recipe becomes a run.

Rooms: :mod:`.catalog` (every named recipe: description, overrides, strength for ``--tune``),
:mod:`.resolve` (names and TOML recipe files -> :class:`~regularkit.train.config.Recipe`),
:mod:`.rules` (which recipes can run on these data and this model, read from the fields'
metadata), :mod:`.assemble` (a recipe -> model, optimizer and the loop's hook points).  The
schema itself, with each field's metadata, is :mod:`regularkit.train.config` (the built-in
models and the optimizer read it from below this room); the metadata's vocabulary is
:mod:`regularkit.train.knobs`.
"""
from regularkit.recipe.assemble import RunParts, assemble, build_batch_transform, smoothing_site
from regularkit.recipe.catalog import (
    CATALOG,
    DEFAULT_RECIPES,
    RECIPE_NAME,
    RECIPES,
    STRENGTHS,
    Entry,
    Strength,
    field_value,
    strength_for,
)
from regularkit.recipe.resolve import load_recipe_file, resolve
from regularkit.recipe.rules import IMAGE_ONLY, Applicability, check_recipes, describe_data, regression_reason

__all__ = ["CATALOG", "DEFAULT_RECIPES", "RECIPE_NAME", "RECIPES", "STRENGTHS", "Entry", "Strength", "field_value",
           "strength_for", "load_recipe_file", "resolve", "IMAGE_ONLY", "Applicability", "check_recipes",
           "describe_data", "regression_reason", "RunParts", "assemble", "build_batch_transform", "smoothing_site"]
