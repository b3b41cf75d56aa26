"""``--tune N``: each recipe's main strength searched on the validation split before the seeds are trained.

A recipe's strength (its catalog entry's, :mod:`~regularkit.recipe.catalog`: l2's lambda,
dropout's p, mixup's alpha, ...) is set by hand for one small data set; on
another it may do nothing or too much.  With ``--tune N`` each recipe that has a
strength gets a search of ``N`` trials (Optuna's TPE sampler, one seed: seed 0) over
its declared range, starting from the recipe's own value, then every seed trains the
chosen value; the table shows it.  Pruning is cautious (:func:`tune_pruner`): a trial
stops only when, after half of its epochs, its validation error is worse than the
median of the trials before it at the same epoch.  Successive halving, tried first,
stopped most trials after one epoch, where the ranking says little about the end
(a weak penalty was pruned for a worse first epoch and never completed).

The search looks at the validation split only: its trials get the splits with
the test split replaced by a guard that raises on any use (:class:`TestSplitGuard`),
so a bug that touched the test set would stop the study instead of leaking.

The searches live in the ledger's storage as Optuna studies named
``<study>.tune.<recipe>.<hash>`` (the hash covers the recipe, the data's digest
and the settings), so tuning resumes like the rest: a rerun runs only the
trials still missing, and a finished search costs nothing (workers and later
reruns read the chosen values from it).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from regularkit.config import replace
from regularkit.errors import RegularkitError
from regularkit.search.discipline import TestSplitGuard, guarded
from regularkit.search.optimize import run_search
from regularkit.search.samplers import tune_pruner
from regularkit.search.space import SearchSpace
from regularkit.study.run.execute import run_recipe
from regularkit.study.tune.objective import EpochPruner, trial_value
from regularkit.study.plan import Job, Plan, run_key
from regularkit.study.recipes import Strength, field_value, strength_for
from regularkit.train.config import Recipe

__all__ = ["TestSplitGuard", "guarded", "tune", "tune_pruner", "tune_recipe", "tuning_storage", "TUNE_SEED"]

TUNE_SEED = 0
#: Part of every search's name: bumped when how a search runs changes (v2: the recipe's own strength is
#: the first trial, TPE's random start is a third of the trials; v3: median pruning after half the
#: epochs; v4: the name covers the strengths' ranges and coupled fields), so a stored search of the
#: old kind is not resumed as if it were the same.
TUNE_VERSION = 4


class Expand:
    """``params`` plus the coupled fields of each strength (a class, not a closure: with ``--workers``
    the objective travels to the worker processes by pickle)."""

    def __init__(self, strengths: Sequence[Strength] = ()):
        self.strengths = tuple(strengths)

    def __call__(self, params: dict) -> dict:
        for strength in self.strengths:
            params = strength.expand(params)
        return params


class TuneObjective:
    """``(params, report) -> validation error`` of one recipe with the searched strength (seed 0)."""

    def __init__(self, plan: Plan, recipe: Recipe, expand: Callable[[dict], dict] = Expand()):
        self.plan, self.recipe, self.expand = plan, recipe, expand
        self.splits = guarded(plan.data.splits)

    def __call__(self, params: dict[str, Any], report: Callable[[int, float], bool]) -> float:
        # in a search worker process (--workers N) the threads are shared out as for training
        torch.set_num_threads(self.plan.cfg.threads_per_worker())
        recipe = replace(self.recipe, self.expand(params), where=f"recipe {self.recipe.name!r} with a tuned strength")
        pruner = EpochPruner(report)
        record = run_recipe(recipe, self.splits, TUNE_SEED, callbacks=[pruner], with_test=False,
                            device=self.plan.device, precision=self.plan.cfg.precision, factory=self.plan.factory,
                            abandoned=lambda: pruner.pruned_at is not None)
        return trial_value(record)


def tuning_storage(out: Path, cfg) -> str:
    """Where the strength searches live: the ledger's own storage (a journal in ``out`` by default)."""
    return cfg.storage if cfg.storage is not None else str(Path(out) / "ledger.journal")


def _study_name(plan: Plan, recipe: Recipe, strengths: Sequence[Strength]) -> str:
    """The search's name covers what it searches: the recipe and data (its run key), the number of
    trials, the strengths' fields, ranges and coupled ratios, and :data:`TUNE_VERSION`.  A recipe
    file whose range changed starts a new search (the old one stays in the storage)."""
    blob = json.dumps([run_key(recipe, TUNE_SEED, plan.identity), plan.cfg.tune, TUNE_VERSION,
                       [s.to_dict() for s in strengths]], sort_keys=True)
    return f"{plan.cfg.study_name}.tune.{recipe.name}.{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


def tune_recipe(plan: Plan, recipe: Recipe, space: SearchSpace, storage, *,
                strengths: Sequence[Strength] = ()) -> tuple[Recipe, dict[str, Any]]:
    """Search ``space`` for ``recipe`` (TPE, pruning, ``cfg.tune`` trials, seed 0, validation only).

    The recipe's own values of the searched fields are the first trial (when they lie in the
    ranges), so the chosen strength is never worse on validation than the hand-set one; the
    ``strengths`` set their coupled fields.  Resumes a stored search; returns the recipe with the
    best values and what was found.
    """
    expand = Expand(strengths)
    own = {name: field_value(recipe, name) for name in space}
    inside = all(not hasattr(d, "low") or d.low <= own[n] <= d.high for n, d in space.items())
    # --workers N: N processes share the trials (TPE with the constant liar); a factory passed from Python
    # cannot travel to them, so that search stays in this process
    workers = plan.cfg.workers if plan.factory is None or not plan.cfg.model.startswith("python:") else 1
    result = run_search(TuneObjective(plan, recipe, expand), space, sampler="tpe", n_trials=plan.cfg.tune,
                        seed=TUNE_SEED, storage=storage, study_name=_study_name(plan, recipe, strengths),
                        pruner=tune_pruner(recipe.optim.epochs),
                        log=None, workers=workers, enqueue=[own] if inside else [])
    if result.best_params is None:
        raise RegularkitError(f"the strength search of recipe {recipe.name!r} finished no trial (every trial "
                              "diverged or was pruned); lower --lr or widen the range")
    values = expand(dict(result.best_params))
    tuned = replace(recipe, values, where=f"recipe {recipe.name!r}")
    return tuned, {"values": values, "best_val_error": result.best_value,
                   "trials": len(result.completed), "pruned": sum(t.state == "PRUNED" for t in result.trials),
                   "space": space.to_dict(), "warnings": result.warnings}


def tune(plan: Plan, storage, *, log: Callable[[str], None] | None = None) -> tuple[Plan, dict[str, dict]]:
    """Search each recipe's strength (resuming what is stored), and the plan with the chosen values.

    Returns the new plan (recipes and jobs with the tuned strengths) and, per tuned recipe,
    ``{"field", "default", "value", "values", "best_val_error", "trials", "space", "warnings"}``.
    """
    cfg = plan.cfg
    chosen: dict[str, dict] = {}
    recipes = []
    for recipe in plan.recipes:
        strength: Strength | None = strength_for(recipe.name, plan.extra_recipes)
        if strength is None:
            recipes.append(recipe)
            continue
        tuned, info = tune_recipe(plan, recipe, SearchSpace({strength.field: strength.distribution()}), storage,
                                  strengths=[strength])
        recipes.append(tuned)
        value = info["values"][strength.field]
        chosen[recipe.name] = {"field": strength.field, "default": strength.value(recipe), "value": value, **info}
        if log is not None:
            best = info["best_val_error"]
            shown = f"val RMSE {best:.4g}" if plan.data.splits.task == "regression" else f"val err {100 * best:.2f}%"
            log(f"tuned {recipe.name}: {strength.field} = {value:.4g} ({shown}, "
                f"{info['trials']} trials finished, {info['pruned']} pruned)")
    jobs = {run_key(r, seed, plan.identity): Job(r, seed) for r in recipes for seed in range(cfg.seeds)}
    return dataclasses.replace(plan, recipes=recipes, jobs=jobs, tuned=chosen), chosen
