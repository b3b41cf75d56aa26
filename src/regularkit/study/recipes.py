"""The named recipes of the study: one literal registry, plus recipes from TOML.

A recipe is a base configuration (model, optimizer, epochs: chosen by the
study) plus the overrides listed here.  Strengths are set for the default
study (digits, a small training set, an MLP); a TOML file can define new
recipes or override these::

    [recipes.l2-strong]
    description = "coupled L2, ten times the default"
    "reg.l2" = 1e-2

    [recipes.wide-dropout]
    model = { widths = [1024, 1024], dropout = 0.5 }
"""
from __future__ import annotations

from typing import Any, Mapping

from regularkit.config import expand_dotted, load_toml, merge, replace
from regularkit.errors import RegularkitError
from regularkit.train.config import Recipe

# name -> (description, overrides of the base recipe).  Keep it one literal dict.
RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("no regularization", {}),
    "l2": ("coupled L2 penalty (lambda/2)*sum(w^2) in the loss", {"reg.l2": 1e-3}),
    "weight-decay": ("decoupled weight decay (AdamW-style), weights only", {"optim.weight_decay": 1e-3}),
    "l1": ("L1 penalty lambda*sum|w| (sparse weights)", {"reg.l1": 1e-4}),
    "elastic-net": ("L1 + L2 penalties", {"reg.l1": 5e-5, "reg.l2": 5e-4}),
    "max-norm": ("per-unit max-norm constraint ||w_j|| <= 3, projected after each step", {"reg.max_norm": 3.0}),
    "dropout": ("inverted dropout: 0.2 on inputs, 0.5 on hidden units",
                {"model.dropout": 0.5, "model.input_dropout": 0.2}),
    "dropout-classic": ("classic dropout (scale by keep at test time): 0.2 inputs, 0.5 hidden",
                        {"model.dropout": 0.5, "model.input_dropout": 0.2, "model.dropout_kind": "classic"}),
    "dropout+max-norm": ("dropout 0.2/0.5 with max-norm 3 (Srivastava et al. 2014)",
                         {"model.dropout": 0.5, "model.input_dropout": 0.2, "reg.max_norm": 3.0}),
    "early-stopping": ("stop when val loss stalls for 10 epochs, restore the best weights",
                       {"reg.early_stopping": {"monitor": "val_loss", "mode": "min", "patience": 10}}),
    "activity-l1": ("L1 penalty on hidden activations (representational sparsity)", {"reg.activity_l1": 1e-4}),
    "gaussian-noise": ("additive Gaussian noise on training inputs, std 0.1", {"reg.input_noise": 0.1}),
    "label-smoothing": ("label smoothing alpha = 0.1, uniform formula", {"reg.label_smoothing": 0.1}),
    "batchnorm": ("batch normalization before each nonlinearity", {"model.batchnorm": True}),
    "init-he": ("He normal initialization, biases 0", {"model.init": "he_normal"}),
    "init-glorot": ("Glorot normal initialization, biases 0", {"model.init": "glorot_normal"}),
}

DEFAULT_RECIPES = ("baseline", "l2", "dropout", "early-stopping")


def load_recipe_file(path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Recipes defined in a TOML file's ``[recipes.NAME]`` tables."""
    data = load_toml(path)
    tables = data.get("recipes")
    if not isinstance(tables, dict) or not tables:
        raise RegularkitError(f"{str(path)!r} has no [recipes.NAME] tables")
    out = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise RegularkitError(f"recipe {name!r} in {str(path)!r} must be a table, got {table!r}")
        table = dict(table)
        description = str(table.pop("description", ""))
        out[name] = (description, table)
    return out


def resolve(names, base: Recipe, *, extra: Mapping[str, tuple[str, dict]] | None = None) -> list[Recipe]:
    """The Recipe objects for ``names``: base plus each recipe's overrides, validated."""
    registry = {**RECIPES, **(extra or {})}
    recipes = []
    for name in names:
        if name not in registry:
            raise RegularkitError(f"unknown recipe {name!r}; choose from {', '.join(registry)}")
        description, overrides = registry[name]
        merged = merge(expand_dotted(overrides), {"name": name, "description": description})
        recipes.append(replace(base, merged, where=f"recipe {name!r}"))
    return recipes
