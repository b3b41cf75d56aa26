"""The catalog: one literal dict of named recipes, their strengths, and the views under the old names."""

import pytest

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
from regularkit.recipe.resolve import resolve
from regularkit.search.distributions import Int, LogUniform, Uniform
from regularkit.train.config import Recipe

def test_every_entry_is_named_described_and_resolves_on_the_default_base():
    assert set(DEFAULT_RECIPES) <= set(CATALOG) and list(CATALOG)[0] == "baseline"
    for name, entry in CATALOG.items():
        assert isinstance(entry, Entry) and RECIPE_NAME.fullmatch(name) and entry.description, name
        (recipe,) = resolve([name], Recipe())
        assert recipe.name == name and recipe.description == entry.description

def test_the_old_names_are_views_of_the_catalog():
    assert RECIPES == {n: (e.description, e.overrides) for n, e in CATALOG.items()}
    assert STRENGTHS == {n: e.strength for n, e in CATALOG.items() if e.strength is not None}
    assert strength_for("l2") is CATALOG["l2"].strength and strength_for("baseline") is None
    assert strength_for("init-he") is None and strength_for("no-such-recipe") is None
    own = Strength("reg.l2", 1e-3, 1e-1, log=True)
    assert strength_for("l2", {"l2": ("mine", {"reg.l2": 1e-2}, own)}) is own  # a recipe file's own wins
    assert strength_for("l2", {"l2": ("mine", {"reg.l2": 1e-2}, None)}) is None

def test_a_strength_is_searched_over_its_range_and_keeps_its_coupled_fields_in_ratio():
    net = CATALOG["elastic-net"].strength
    assert net.expand({"reg.l1": 2e-4}) == {"reg.l1": 2e-4, "reg.l2": pytest.approx(1e-2)}
    assert isinstance(net.distribution(), LogUniform)
    assert isinstance(CATALOG["early-stopping"].strength.distribution(), Int)
    assert isinstance(CATALOG["dropout"].strength.distribution(), Uniform)
    (es,) = resolve(["early-stopping"], Recipe())
    assert CATALOG["early-stopping"].strength.value(es) == 10 == field_value(es, "reg.early_stopping.patience")
    assert field_value(Recipe(), "reg.early_stopping.patience") is None
