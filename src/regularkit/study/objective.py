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
from typing import Any, Callable

from regularkit.config import from_dict, replace
from regularkit.study.config import StudyConfig
from regularkit.study.data import prepare_data
from regularkit.study.execute import run_recipe
from regularkit.study.recipes import load_recipe_file, resolve
from regularkit.train.callbacks import Callback, Decision

_SPLITS: dict[str, Any] = {}  # per process: data spec -> splits


class EpochPruner(Callback):
    """Reports each epoch's validation error to the search; stops when it says so."""

    def __init__(self, report: Callable[[int, float], bool]):
        self.report = report

    def on_epoch_end(self, state) -> Decision | None:
        if self.report(state.epoch, float(state.metrics["val_error"])):
            return Decision(True, f"pruned by the search at epoch {state.epoch}")
        return None


class RecipeObjective:
    def __init__(self, study: dict[str, Any], recipe: str = "baseline", seed: int = 0):
        self.study = dict(study)
        self.recipe = recipe
        self.seed = seed

    def _config(self):
        return from_dict(StudyConfig, self.study, where="study")

    def _splits(self):
        cfg = self._config()
        key = json.dumps([cfg.data, cfg.data_dir, cfg.effective_train_size(), cfg.val_fraction, cfg.data_seed])
        if key not in _SPLITS:
            _SPLITS[key] = prepare_data(cfg).splits
        return _SPLITS[key]

    def recipe_for(self, params: dict[str, Any]):
        cfg = self._config()
        extra = load_recipe_file(cfg.recipe_file) if cfg.recipe_file else None
        base = resolve([self.recipe], cfg.base_recipe(), extra=extra)[0]
        return replace(base, params, where=f"recipe {self.recipe!r} with search parameters")

    def __call__(self, params: dict[str, Any], report: Callable[[int, float], bool]) -> float:
        record = run_recipe(self.recipe_for(params), self._splits(), self.seed, callbacks=[EpochPruner(report)],
                            with_test=False)
        return float(record["final"]["val_error"])

    def test_error(self, params: dict[str, Any]) -> float:
        """Train the chosen configuration and measure it on the test split (call once, via final_test)."""
        record = run_recipe(self.recipe_for(params), self._splits(), self.seed, with_test=True)
        return float(record["final"]["test_error"])
