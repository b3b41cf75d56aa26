"""Everything a study will do, decided and validated before a single file is written.

:func:`make_plan` checks, in this order, and raises one-line errors:
the configuration (StudyConfig checks itself), the recipes (names, the recipe
file), the data (loaded, split, digested), the model (the user's factory is
built once and tried on a batch; the parameter memory of every recipe's model
is estimated and refused when it cannot fit), which recipes can run on this
data and model (:mod:`~regularkit.study.applicability`), the device, the
storage and the artifact folder.  The result is a :class:`Plan`; the pipeline then writes.

Recipes that cannot run: when the recipe list is the default one, they are
left out with a note (the table says why); a recipe the user named is refused
with the reason and the list of recipes that do apply.

A run is identified by its key: the recipe, the data's content digest, the
split settings, the factory's source digest, the seed, and the numerical
environment (:func:`numerics`: device type, precision, torch version, and the
CPU thread count or the GPU model).  Same key, same numbers; anything else is a
new run, never a reused one.

Threads and workers (:func:`work`), unless given: by the work of one training
step and the cores (:func:`regularkit._util.threads.study_work`): one torch
thread per worker below 1 GFLOP a step (every MLP the study builds by default),
and as many one-thread workers as there are cores free now, runs, and steps to
pay for starting them (the threads never follow the load: they are in the run
keys).  The plan's config carries both (so spawned workers and the run keys use
the same count) and :attr:`Plan.work` says what was chosen and why.

Why the environment is in the key rather than in the folder's configuration
check: the thread count changes the order of floating-point sums (the losses
differ by ~1e-7, a test error can move by one example), and it follows the
model's size and the machine's cores, so a rerun with other ``--threads`` or on
another machine gets other numbers.  A refusal would have to stop every machine that
shares a ``--storage`` but has another core count; a key lets each reuse exactly
the runs made under its own numerics and train the others.  The default rerun
(same command, same machine) has the same key and resumes.  A rerun with
``--threads 2`` after ``--threads 1`` says "0 runs finished" and trains new runs;
the old ones stay in the ledger, unused.

Limits checked before any work: ``workers`` at most :data:`WORKERS_PER_CORE` per
core (each worker is a Python process holding its own copy of the data), the
model's training state and the data of every worker within
:data:`~regularkit._util.memory.MEMORY_SHARE` of the available memory (an image
folder's pixels are estimated from the headers before they are decoded:
:mod:`~regularkit.data.images`).
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch
from torch import nn

from regularkit._util.memory import MEMORY_SHARE, available_memory, check_fits, gib
from regularkit._util.threads import busy_cores, step_flops, study_work, usable_cores
from regularkit.config import to_dict
from regularkit.data.streaming import resident_bytes
from regularkit.errors import RegularkitError
from regularkit.models import build_model
from regularkit.models.factory import call_factory, factory_digest, factory_name, load_factory
from regularkit.search.storage import check_storage
from regularkit.study.applicability import check_recipes
from regularkit.study.config import StudyConfig
from regularkit.study.data import StudyData, prepare_data
from regularkit.study.folder import check_folder
from regularkit.study.recipes import DEFAULT_RECIPES, load_recipe_file, resolve
from regularkit.study.task import task_identity
from regularkit.study.run.teacher import check_teacher
from regularkit.study.run.vectorize import stacking
from regularkit.train.config import Recipe
from regularkit.train.device import resolve_device

__all__ = ["Job", "Plan", "make_plan", "run_key", "numerics", "work", "check_workers", "MEMORY_SHARE",
           "WORKERS_PER_CORE"]

#: ``--workers`` above this many per core is refused: the processes would only wait for each other.
WORKERS_PER_CORE = 4


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
    work: str = ""                                                # the threads and workers, and why (:func:`work`)
    seeds_together: str = ""                                      # which recipes train their seeds together, why not

    @property
    def keys(self) -> set[str]:
        return set(self.jobs)


def run_key(recipe: Recipe, seed: int, identity: dict[str, Any]) -> str:
    """``recipe/seed<k>/<hash>``: the hash covers the recipe and everything in ``identity``."""
    blob = json.dumps({"recipe": to_dict(recipe), **identity}, sort_keys=True, default=str)
    return f"{recipe.name}/seed{seed}/{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def numerics(cfg: StudyConfig, device: torch.device) -> dict[str, Any]:
    """The numerical environment of a run, part of its key (see the module docstring).

    Threads: the count every run trains with, the plan's (``cfg`` as :func:`work` resolved it:
    :meth:`StudyConfig.threads_per_worker`), which spawned workers set and the CLI sets in its own
    process.  On a GPU the CPU threads do not touch the numbers; the GPU model does.
    """
    env: dict[str, Any] = {"device": device.type, "precision": cfg.precision, "torch": torch.__version__}
    if device.type == "cpu":
        env["threads"] = cfg.threads_per_worker()
    elif device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def check_workers(workers: int) -> None:
    """Refuse more than :data:`WORKERS_PER_CORE` workers per core, in one line."""
    cores = os.cpu_count() or 1
    if workers > WORKERS_PER_CORE * cores:
        raise RegularkitError(f"workers {workers} is more than {WORKERS_PER_CORE} per core ({WORKERS_PER_CORE * cores} "
                              f"on this machine's {cores} cores); each worker is a Python process with its own copy "
                              "of the data")


def _check_memory(recipes: list[Recipe], data: StudyData, factory, workers: int) -> None:
    """Refuse models whose parameters cannot fit (counted on the meta device: no memory is used), and data
    that every worker's copy would not fit."""
    s = data.splits
    if workers > 1 and multiprocessing.parent_process() is None:  # a spawned worker: its parent checked this
        nbytes = sum(resident_bytes(t) for t in (s.x_train, s.x_val, s.x_test))
        check_fits(workers * nbytes, f"the data of {workers} workers ({gib(nbytes)} each)", "use fewer --workers")
    limit = MEMORY_SHARE * available_memory()
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


def _importable(model: Callable | None, name: str) -> bool:
    """Whether a spawned worker can import the model by ``name``: a built-in or a factory named in the
    config can; a callable given from Python only if importing its name gives the same object."""
    if model is None:
        return True
    try:
        return load_factory(name) is model
    except RegularkitError:
        return False


def _factory(cfg: StudyConfig, model: Callable | None) -> tuple[Callable | None, str | None, StudyConfig]:
    """The user's build function, its source digest, and the config naming it."""
    if model is None:
        if not cfg.is_factory():
            return None, None, cfg
        return load_factory(cfg.model), factory_digest(cfg.model), cfg
    if not callable(model):
        raise RegularkitError(f"model must be a callable build(input_shape, num_classes), got {type(model).__name__}")
    name = factory_name(model)
    if cfg.workers is not None and cfg.workers > 1:  # by the rule (None): one worker if it cannot be imported
        if not _importable(model, name):
            raise RegularkitError(f"workers={cfg.workers} start fresh processes, which must import the model factory "
                                  f"by name; {name} cannot be imported (define it in a module, or use workers=1)")
    return model, factory_digest(model), replace(cfg, model=name)


def work(cfg: StudyConfig, recipes: list[Recipe], data: StudyData, probe: nn.Module | None, device: torch.device,
         *, importable: bool = True) -> tuple[StudyConfig, str]:
    """``cfg`` with its threads and workers decided (what the user gave stays), and the sentence saying why.

    The step's FLOPs are the largest of the recipes' models on one batch (:func:`step_flops`; built-in
    models on the meta device, the user's factory on its probe); the steps are every run's epochs x
    batches.  Workers are capped at the cores free now (:func:`busy_cores`, looked at only when more
    than one worker could be chosen), at what memory holds (each has its own copy of the data), at one
    where a fresh process cannot import the user's factory, and at one on a GPU (the runs would share it).
    """
    s = data.splits
    batch = min(cfg.batch_size, len(s.y_train))
    shape, dtype = (batch, *s.input_shape), s.x_train.dtype     # zeros: the FLOPs depend on the shape only
    flops = 0
    for model_cfg in {r.model for r in recipes}:
        if model_cfg.kind == "factory":
            flops = max(flops, step_flops(probe, torch.zeros(shape, dtype=dtype)))
            continue
        try:
            with torch.device("meta"):
                net = build_model(model_cfg, s.input_shape, s.num_classes)
        except RegularkitError:
            continue  # cannot be built on this data: the applicability check said why
        flops = max(flops, step_flops(net, torch.zeros(shape, dtype=dtype, device="meta")))
    runs = len(recipes) * cfg.seeds
    steps = runs * cfg.epochs * -(-len(s.y_train) // batch)
    cap = None
    nbytes = sum(resident_bytes(t) for t in (s.x_train, s.x_val, s.x_test))
    if device.type != "cpu":
        cap = (1, f"one {device.type} device")
    elif not importable:
        cap = (1, "a fresh process cannot import the model factory")
    elif nbytes and (fit := int(MEMORY_SHARE * available_memory() // nbytes)) < usable_cores():
        cap = (max(1, fit), f"memory holds {max(1, fit)} cop{'ies' if fit > 1 else 'y'} of the data")
    threads, workers, why = study_work(flops, steps=steps, runs=runs, cores=usable_cores(), threads=cfg.threads,
                                       workers=cfg.workers, cap=cap, busy=busy_cores)
    return replace(cfg, threads=threads, workers=workers), why


def make_plan(cfg: StudyConfig, *, data: Any = None, model: Callable | None = None) -> Plan:
    """Validate everything and decide every run; nothing is written (see the module docstring)."""
    if cfg.workers is not None:
        check_workers(cfg.workers)
    factory, digest, cfg = _factory(cfg, model)
    extra = load_recipe_file(cfg.recipe_file) if cfg.recipe_file else None
    base = cfg.base_recipe()
    recipes = resolve(cfg.recipes, base, extra=extra)
    study_data = prepare_data(cfg, data)
    s = study_data.splits
    _check_memory(recipes, study_data, factory, cfg.workers or 1)
    probe: nn.Module | None = None
    if factory is not None:
        probe = call_factory(factory, s.input_shape, s.num_classes, cfg.model)
    else:
        with torch.device("meta"):  # the built-in model's modules, without memory for its weights
            probe = build_model(base.model, s.input_shape, s.num_classes)
    verdict = check_recipes(recipes, base, kind=study_data.kind, input_shape=tuple(s.input_shape), probe=probe,
                            flips=study_data.dataset.flips, data_name=study_data.dataset.name, task=s.task)
    if s.streamed:  # the colour covariance needs every training pixel at once (data/streaming.py)
        for r in recipes:
            if r.augment.pca_colour and r.name not in verdict.refused:
                verdict.refused[r.name] = ("PCA colour needs every training pixel's colour covariance, not computed "
                                           "from streamed data yet; use --stream off")
    chosen = [r for r in recipes if r.name not in verdict.refused]
    check_teacher(chosen, s.task)  # distill: its teacher (the baseline) in the study, no target rewriting
    if verdict.refused and tuple(cfg.recipes) != DEFAULT_RECIPES:
        name, why = next(iter(verdict.refused.items()))
        applies = ", ".join(r.name for r in chosen) or "none of those asked for"
        raise RegularkitError(f"recipe {name!r} cannot run here: {why}; recipes that apply: {applies}")
    if not chosen:
        raise RegularkitError(f"no recipe can run on this data and model: {next(iter(verdict.refused.values()))}")
    device = resolve_device(cfg.device)
    if cfg.storage is not None:
        check_storage(cfg.storage)
    if cfg.artifacts is not None:
        check_folder(cfg.artifacts, name="artifacts", outputs=False)
    cfg, why = work(cfg, chosen, study_data, probe, device, importable=_importable(model, cfg.model))
    identity = {"data": study_data.digest, "split": [s.input_shape, len(s.y_train), len(s.y_val), cfg.val_fraction,
                                                      cfg.data_seed, cfg.effective_train_size()],
                "numerics": numerics(cfg, device), "factory": digest, **task_identity(s)}
    jobs = {run_key(r, seed, identity): Job(r, seed) for r in chosen for seed in range(cfg.seeds)}
    _, together = stacking(chosen, s, enabled=cfg.vectorize_seeds, seeds=cfg.seeds, precision=cfg.precision,
                           factory=factory)
    return Plan(cfg=cfg, data=study_data, recipes=chosen, skipped=verdict.refused, warnings=verdict.warnings,
                device=device, factory=factory, factory_digest=digest, jobs=jobs, identity=identity,
                extra_recipes=extra, work=why, seeds_together=together)
