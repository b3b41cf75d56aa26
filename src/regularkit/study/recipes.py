"""The study's recipes: the catalog room's names, under the import path the study and the CLI use.

The catalog (one literal dict of name -> description, overrides, strength) is
:mod:`regularkit.recipe.catalog`; names and recipe files become Recipes in
:mod:`regularkit.recipe.resolve`.  Nothing is defined here.
"""
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

__all__ = ["CATALOG", "DEFAULT_RECIPES", "RECIPE_NAME", "RECIPES", "STRENGTHS", "Entry", "Strength", "field_value",
           "strength_for", "load_recipe_file", "resolve"]
