"""Everything a study will do, decided and validated before a single file is written.

:func:`make_plan` checks, in this order, and raises one-line errors:
the configuration (StudyConfig checks itself), the recipes (names, the recipe
file), the data (loaded, split, digested), the model (the user's factory is
built once and tried on a batch; the parameter memory of every recipe's model
is estimated and refused when it cannot fit), which recipes can run on this
data and model (:mod:`~regularkit.study.applicability`), the device, and the
storage URL.  The result is a :class:`Plan`; the pipeline then writes.

Recipes that cannot run: when the recipe list is the default one, they are
left out with a note (the table says why); a recipe the user named is refused
with the reason and the list of recipes that do apply.

A run is identified by its key: the recipe, the data's content digest, the
split settings, the device type and precision, the factory's source digest, and
the seed.  Same key, same numbers (up to thread scheduling); anything else is a
new run, never a reused one.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch
from torch import nn

from regularkit.config import to_dict
from regularkit.errors import RegularkitError
from regularkit.models import build_model
from regularkit.models.factory import call_factory, factory_digest, factory_name, load_factory
from regularkit.search.storage import check_storage
from regularkit.study.applicability import check_recipes
from regularkit.study.config import StudyConfig
from regularkit.study.data import StudyData, prepare_data
from regularkit.study.recipes import DEFAULT_RECIPES, load_recipe_file, resolve
from regularkit.study.task import task_identity
from regularkit.train.config import Recipe
from regularkit.train.device import resolve_device

__all__ = ["Job", "Plan", "make_plan", "run_key", "MEMORY_SHARE"]

#: A model whose training state (weights, gradients, momentum, an average: 4 copies) needs more than this
#: share of the machine's available memory is refused before training.
MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class Job:
    recipe: Recipe
    seed: int


@dataclass(frozen=True, eq=False)
class Plan:
    cfg: StudyConfig
    data: StudyData
    recipes: list[Recipe]
    skipped: dict[str, str]
    warnings: dict[str, list[str]]
    device: torch.device
    factory: Callable | None = None
    factory_digest: str | None = None
    jobs: dict[str, Job] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)        # what every run key covers besides recipe and seed
    extra_recipes: dict[str, tuple] | None = None                 # recipes from --recipe-file
    tuned: dict[str, dict] = field(default_factory=dict)          # recipe -> its searched strength (--tune)

    @property
    def keys(self) -> set[str]:
        return set(self.jobs)


def run_key(recipe: Recipe, seed: int, identity: dict[str, Any]) -> str:
    """``recipe/seed<k>/<hash>``: the hash covers the recipe and everything in ``identity``."""
    blob = json.dumps({"recipe": to_dict(recipe), **identity}, sort_keys=True, default=str)
    return f"{recipe.name}/seed{seed}/{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _check_memory(recipes: list[Recipe], data: StudyData, factory) -> None:
    """Refuse models whose parameters cannot fit (counted on the meta device: no memory is used)."""
    s = data.splits
    limit = MEMORY_SHARE * _available_memory()
    for r in recipes:
        if r.model.kind == "factory":
            continue  # built for real already (the probe): it fitted
        try:
            with torch.device("meta"):
                n = sum(p.numel() for p in build_model(r.model, s.input_shape, s.num_classes).parameters())
        except RegularkitError:
            continue  # a model that cannot be built on this data: the applicability check says why
        if 16 * n > limit:
            raise RegularkitError(f"recipe {r.name!r} builds a model of {n:,} parameters ({16 * n / 2**30:.1f} GiB to "
                                  f"train in float32), more than {MEMORY_SHARE:.0%} of the {limit / MEMORY_SHARE / 2**30:.1f}"
                                  " GiB available; use smaller --widths / --channels")


def _factory(cfg: StudyConfig, model: Callable | None) -> tuple[Callable | None, str | None, StudyConfig]:
    """The user's build function, its source digest, and the config naming it."""
    if model is None:
        if not cfg.is_factory():
            return None, None, cfg
        return load_factory(cfg.model), factory_digest(cfg.model), cfg
    if not callable(model):
        raise RegularkitError(f"model must be a callable build(input_shape, num_classes), got {type(model).__name__}")
    name = factory_name(model)
    if cfg.workers > 1:
        try:
            loadable = load_factory(name) is model
        except RegularkitError:
            loadable = False
        if not loadable:
            raise RegularkitError(f"workers={cfg.workers} start fresh processes, which must import the model factory "
                                  f"by name; {name} cannot be imported (define it in a module, or use workers=1)")
    return model, factory_digest(model), replace(cfg, model=name)


def make_plan(cfg: StudyConfig, *, data: Any = None, model: Callable | None = None) -> Plan:
    """Validate everything and decide every run; nothing is written (see the module docstring)."""
    factory, digest, cfg = _factory(cfg, model)
    extra = load_recipe_file(cfg.recipe_file) if cfg.recipe_file else None
    base = cfg.base_recipe()
    recipes = resolve(cfg.recipes, base, extra=extra)
    study_data = prepare_data(cfg, data)
    s = study_data.splits
    _check_memory(recipes, study_data, factory)
    probe: nn.Module | None = None
    if factory is not None:
        probe = call_factory(factory, s.input_shape, s.num_classes, cfg.model)
    else:
        with torch.device("meta"):  # the built-in model's modules, without memory for its weights
            probe = build_model(base.model, s.input_shape, s.num_classes)
    verdict = check_recipes(recipes, base, kind=study_data.kind, input_shape=tuple(s.input_shape), probe=probe,
                            flips=study_data.dataset.flips, data_name=study_data.dataset.name, task=s.task)
    chosen = [r for r in recipes if r.name not in verdict.refused]
    if verdict.refused and tuple(cfg.recipes) != DEFAULT_RECIPES:
        name, why = next(iter(verdict.refused.items()))
        applies = ", ".join(r.name for r in chosen) or "none of those asked for"
        raise RegularkitError(f"recipe {name!r} cannot run here: {why}; recipes that apply: {applies}")
    if not chosen:
        raise RegularkitError(f"no recipe can run on this data and model: {next(iter(verdict.refused.values()))}")
    device = resolve_device(cfg.device)
    if cfg.storage is not None:
        check_storage(cfg.storage)
    identity = {"data": study_data.digest, "split": [s.input_shape, len(s.y_train), len(s.y_val), cfg.val_fraction,
                                                      cfg.data_seed, cfg.effective_train_size()],
                "device": device.type, "precision": cfg.precision, "factory": digest, **task_identity(s)}
    jobs = {run_key(r, seed, identity): Job(r, seed) for r in chosen for seed in range(cfg.seeds)}
    return Plan(cfg=cfg, data=study_data, recipes=chosen, skipped=verdict.refused, warnings=verdict.warnings,
                device=device, factory=factory, factory_digest=digest, jobs=jobs, identity=identity,
                extra_recipes=extra)
