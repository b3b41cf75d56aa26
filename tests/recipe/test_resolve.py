"""Names and recipe files made into Recipes: overrides of the base, validated, unknown names named."""
import dataclasses

import pytest

from regularkit.errors import RegularkitError
from regularkit.recipe.catalog import Strength, strength_for
from regularkit.recipe.resolve import load_recipe_file, resolve
from regularkit.train.config import Recipe


def test_resolve_overrides_the_base_and_names_an_unknown_recipe():
    base = Recipe(optim=dataclasses.replace(Recipe().optim, epochs=3))
    (r,) = resolve(["dropout"], base)
    assert r.model.dropout == 0.3 and r.optim.epochs == 3
    with pytest.raises(RegularkitError, match="unknown recipe 'dropuot'; choose from baseline, l2"):
        resolve(["dropuot"], base)


def test_a_recipe_file_adds_and_overrides_entries_with_their_strength(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[recipes.l2]\ndescription = "mine"\n"reg.l2" = 0.5\n'
                    '[recipes.wide]\nmodel = {widths = [64]}\nstrength = {field = "model.dropout", uniform = [0, 0.5]}\n')
    extra = load_recipe_file(path)
    l2, wide = resolve(["l2", "wide"], Recipe(), extra=extra)
    assert (l2.description, l2.reg.l2, wide.model.widths) == ("mine", 0.5, (64,))
    assert strength_for("wide", extra) == Strength("model.dropout", 0.0, 0.5)
    path.write_text('[recipes.bad]\nstrength = {field = "reg.l3", uniform = [0, 1]}\n')
    with pytest.raises(RegularkitError, match="field 'reg.l3': reg has no field 'l3'"):
        load_recipe_file(path)
