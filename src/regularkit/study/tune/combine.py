"""``--combine``: one more recipe, made of the recipes that helped, trained and reported beside the rest.

Which recipes helped is decided on the validation split, never on test: a recipe
qualifies when its validation error is lower than the baseline's beyond seed
noise (the paired interval of ``recipe - baseline``, adjusted for the number of
recipes compared as every call of the study is, lies below 0).  With two or
more qualifying recipes, ``combined`` applies all their overrides of the base
recipe at once, in order of validation error (when two set the same field, the
better recipe's value wins).  With ``--tune``, their strengths are searched again
*jointly* (one space with each strength's field and range, the same number of
trials), because strengths that are right alone are often too strong together.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Sequence

from regularkit.config import expand_dotted, merge, replace, to_dict
from regularkit.errors import RegularkitError
from regularkit.metrics.paired import Interval
from regularkit.search.space import SearchSpace
from regularkit.study.plan import Job, Plan, run_key
from regularkit.study.recipes import Strength, strength_for
from regularkit.train.config import Recipe

__all__ = ["COMBINED", "helped_on_validation", "combined_recipe", "joint_space", "with_combined"]

COMBINED = "combined"


def helped_on_validation(comparisons: dict[str, dict[str, Interval]]) -> list[str]:
    """Recipes whose validation error is below the baseline's beyond seed noise, best first."""
    out = [n for n, c in comparisons.items() if "val_error" in c and c["val_error"].excludes_zero
           and c["val_error"].mean < 0]
    return sorted(out, key=lambda n: comparisons[n]["val_error"].mean)


def _overrides(recipe: Recipe, base: Recipe) -> dict[str, Any]:
    """The dotted fields where ``recipe`` differs from ``base`` (name and description aside)."""
    out: dict[str, Any] = {}

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
            for k in a:
                walk(a[k], b[k], f"{prefix}{k}.")
        elif a != b:
            out[prefix[:-1]] = a

    ra, rb = to_dict(recipe), to_dict(base)
    for k in ("name", "description"):
        ra.pop(k), rb.pop(k)
    walk(ra, rb, "")
    return out


def combined_recipe(names: Sequence[str], recipes: dict[str, Recipe], base: Recipe) -> tuple[Recipe, list[str]]:
    """The base recipe with the overrides of ``names``, best first, and the names actually combined.

    A recipe whose overrides cannot join those already taken (two ways of choosing the final
    weights, such as early stopping and SWA) is left out; the description names it.  When two
    recipes set the same field, the earlier (better) one's value stays.
    """
    merged: dict[str, Any] = {}
    taken: list[str] = []
    left_out: list[str] = []
    for name in names:
        candidate = merge(expand_dotted(_overrides(recipes[name], base)), copy.deepcopy(merged))
        try:
            replace(base, candidate, where=f"recipe 'combined' with {name!r}")
        except RegularkitError:
            left_out.append(name)
            continue
        merged, taken = candidate, [*taken, name]
    description = "combination of " + ", ".join(taken) + " (the recipes that lowered validation error)"
    if left_out:
        description += "; left out, as they cannot join the others: " + ", ".join(left_out)
    recipe = replace(base, merge(merged, {"name": COMBINED, "description": description}), where="recipe 'combined'")
    return recipe, taken


def joint_space(names: Sequence[str], extra) -> tuple[SearchSpace, list[Strength]] | None:
    """One search space over the strengths of ``names`` and those strengths (None when none has one);
    the first recipe naming a field gives its range (and its coupled fields)."""
    strengths: dict[str, Strength] = {}
    for name in names:
        strength = strength_for(name, extra)
        if strength is not None and strength.field not in strengths:
            strengths[strength.field] = strength
    if not strengths:
        return None
    return SearchSpace({f: s.distribution() for f, s in strengths.items()}), list(strengths.values())


def with_combined(plan: Plan, recipe: Recipe) -> Plan:
    """A plan that trains only the combined recipe (every seed), with the same data and settings."""
    jobs = {run_key(recipe, seed, plan.identity): Job(recipe, seed) for seed in range(plan.cfg.seeds)}
    return dataclasses.replace(plan, recipes=[*plan.recipes, recipe], jobs={**plan.jobs, **jobs})
