"""The search objective: search parameters -> validation error of one recipe run.

``regularkit search`` optimizes any recipe field (``optim.lr``, ``reg.l2``,
``model.dropout``, ``augment.mixup_alpha`` ...) over a search space.  The
objective is a module-level class holding only plain data (the study config
as a dict, the recipe name, the seed), so it pickles to worker processes; each
process loads the data once and caches it.  Trials never touch the test
split; :func:`test_error` trains the chosen configuration once and measures
it, through :func:`regularkit.search.final_test`, which records the look.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable

from regularkit.config import from_dict, replace
from regularkit.errors import RegularkitError
from regularkit.study.config import StudyConfig
from regularkit.study.data import prepare_data
from regularkit.study.run.execute import run_recipe
from regularkit.study.recipes import load_recipe_file, resolve
from regularkit.search.samplers import EpochPruner

_SPLITS: dict[str, Any] = {}  # per process: data spec -> splits


def trial_value(record: dict[str, Any]) -> float:
    """A trial's value: the final validation error; ``inf`` when there is none (diverged; pruned, where
    Optuna keeps the last reported value instead)."""
    value = record["final"].get("val_error")
    return float(value) if value is not None and math.isfinite(value) else math.inf


class RecipeObjective:
    def __init__(self, study: dict[str, Any], recipe: str = "baseline", seed: int = 0):
        self.study = dict(study)
        self.recipe = recipe
        self.seed = seed

    def _config(self):
        return from_dict(StudyConfig, self.study, where="study")

    def splits(self):
        cfg = self._config()
        key = json.dumps([cfg.data, cfg.data_dir, cfg.effective_train_size(), cfg.val_fraction, cfg.val_size,
                          cfg.data_seed])
        if key not in _SPLITS:
            _SPLITS[key] = prepare_data(cfg).splits
        return _SPLITS[key]

    def recipe_for(self, params: dict[str, Any]):
        cfg = self._config()
        extra = load_recipe_file(cfg.recipe_file) if cfg.recipe_file else None
        base = resolve([self.recipe], cfg.base_recipe(), extra=extra)[0]
        return replace(base, params, where=f"recipe {self.recipe!r} with search parameters")

    def __call__(self, params: dict[str, Any], report: Callable[[int, float], bool]) -> float:
        pruner = EpochPruner(report)
        record = run_recipe(self.recipe_for(params), self.splits(), self.seed, callbacks=[pruner],
                            with_test=False, abandoned=lambda: pruner.pruned_at is not None)
        return trial_value(record)

    def test_error(self, params: dict[str, Any]) -> float:
        """Train the chosen configuration and measure it on the test split (call once, via final_test)."""
        record = run_recipe(self.recipe_for(params), self.splits(), self.seed, with_test=True)
        return float(record["final"]["test_error"])


def check_space(space, objective: RecipeObjective) -> None:
    """Every end of every range (and every choice) must make a valid recipe: one line now, not an Optuna
    traceback in the middle of the search."""
    objective.recipe_for({})  # the recipe itself
    for name, dist in space.items():
        values = list(dist.choices) if hasattr(dist, "choices") else [dist.low, dist.high]
        for value in values:
            try:
                objective.recipe_for({name: list(value) if isinstance(value, tuple) else value})
            except RegularkitError as exc:
                raise RegularkitError(f"space.{name} = {value!r} does not make a valid recipe "
                                      f"{objective.recipe!r}: {exc}") from None
