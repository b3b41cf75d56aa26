"""``run_study``: validate everything, then recipes x seeds through the Optuna ledger, then the report.

Order (a refused command writes nothing): the plan (configuration, recipes,
data, model, applicability, device, storage: :mod:`~regularkit.study.plan`),
the folder (usable, and holding no study of other settings:
:mod:`~regularkit.study.folder`); only then are files written.

Files in the study folder (all written atomically):

* ``study.toml`` -- the StudyConfig; ``environment.json`` -- versions, machine, git revision;
  ``data.json`` -- the data's digest, shapes, split indices and where the samples came from
* ``ledger.journal`` -- the Optuna journal (unless ``storage`` is given); ``artifacts/`` -- test
  probabilities of every run (:mod:`~regularkit.study.run.artifacts`)
* ``runs/<recipe>/seed<k>.json`` -- each run's record and resolved recipe
* ``results.csv``, the figures, ``report.html``

Rerunning the same command resumes: finished runs are read from the ledger,
runs killed midway are redone from scratch, none is counted twice.

Two phases when a recipe distills from the baseline's seeds (``distill``: :mod:`~regularkit.study.run.teacher`):
first every run that needs no teacher (with ``--tune``: no search either), then the teacher is read
from the ledger and the artifact store, then the strength searches and the rest.  A rerun finds
the baseline finished and its teacher on disk.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from regularkit._util.environment import environment
from regularkit._util.io import atomic_write_json, atomic_write_text
from regularkit.config import to_toml
from regularkit.errors import RegularkitError
from regularkit.study.results.finish import StudyResult, finish
from regularkit.study.run import ledger
from regularkit.study.run.artifacts import open_store
from regularkit.study.tune.combine import COMBINED, combined_recipe, helped_on_validation, joint_space, with_combined
from regularkit.study.config import StudyConfig
from regularkit.study.data import prepare_data, split_record
from regularkit.study.folder import check_folder, check_same_configuration, move_aside, remove_stale_temps
from regularkit.study.plan import Plan, make_plan
from regularkit.study.run.progress import StudyProgress
from regularkit.study.results.statistics import compare_to_baseline
from regularkit.study.results.summary import summarize
from regularkit.study.task import task_note
from regularkit.study.run.teacher import first_phase, needs_teacher, with_teacher, without_pupils
from regularkit.study.tune.tuning import tune, tune_recipe, tuning_storage
from regularkit.study.run.worker import spawn_workers, supervise_workers, train_claimed, unfinished_runs

__all__ = ["StudyResult", "run_study", "prepare_splits", "finish"]

#: How often the parent of spawned workers looks at the ledger for progress (seconds).
POLL_S = 1.0


def prepare_splits(cfg: StudyConfig):
    """The splits a study on ``cfg`` trains on (the demos and the search reuse them)."""
    return prepare_data(cfg).splits


def default_console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=140)  # logs and CI: no wrap at 80 columns


def _write_start(plan: Plan, out: Path, env: dict) -> None:
    atomic_write_text(out / "study.toml", to_toml(plan.cfg))
    atomic_write_json(out / "environment.json", env)
    atomic_write_json(out / "data.json", split_record(plan.data))


def _say_plan(plan: Plan, console: Console) -> None:
    console.print(f"data: {plan.data.description}; model: {plan.cfg.model}; device: {plan.device.type}"
                  f"{'' if plan.cfg.precision == 'fp32' else ', ' + plan.cfg.precision}", markup=False, highlight=False)
    console.print(f"threads: {plan.work}", markup=False, highlight=False)
    if plan.seeds_together:
        console.print(plan.seeds_together, markup=False, highlight=False)
    if note := task_note(plan.cfg, plan.data.splits):
        console.print(f"task: {note}", markup=False, highlight=False)
    for name, why in plan.skipped.items():
        console.print(f"left out {name}: {why}", style="yellow", markup=False, highlight=False)


def _say_runs(plan: Plan, console: Console, done: int) -> None:
    """How many runs are finished and left (with --tune: of the tuned recipes, so said after the search)."""
    todo = len(plan.jobs) - done
    console.print(f"{len(plan.recipes)} recipes x {plan.cfg.seeds} seeds: {done} runs finished, {todo} to do",
                  highlight=False)


def _train(plan: Plan, data: Any, study, store, console: Console, progress: bool, done: int) -> list:
    """Train what is left, here or in ``cfg.workers`` supervised processes; returns the workers lost to a signal."""
    cfg = plan.cfg
    with StudyProgress(console, len(plan.jobs), done, enabled=progress, workers=cfg.workers) as bar:
        if cfg.workers == 1:
            train_claimed(plan, study, store, on_start=bar.start, on_epoch=bar.epoch, on_done=bar.done_run)
            return []
        seen = set(ledger.completed(study, plan.keys))

        def poll() -> None:
            for key, record in ledger.completed(study, plan.keys).items():
                if key not in seen:  # finished by a worker since the last look: one line, the ETA
                    seen.add(key)
                    bar.done_run(plan.jobs[key], record)

        # data given from Python travels to the workers as the loaded Dataset; a name or path is loaded there
        procs = spawn_workers(cfg, None if data is None else plan.data.dataset, cfg.workers)
        lost = supervise_workers(procs, study, plan, poll=poll, poll_s=POLL_S,
                                 say=lambda line: console.print(line, style="yellow", markup=False, highlight=False))
        poll()
        return lost


def run_study(cfg: StudyConfig, *, data: Any = None, model=None, console=None, progress: bool = True,
              fresh: bool = False) -> StudyResult:
    """Run (or resume) the study ``cfg`` describes and write its report; see the module docstring.

    ``data``: instead of ``cfg.data``, a Dataset, arrays or torch Datasets; ``model``: instead of
    ``cfg.model``, the user's ``build(input_shape, num_classes)``.  ``fresh``: move an existing
    study in ``cfg.out`` aside (to ``<out>.old-<time>``) instead of resuming it.
    """
    if not isinstance(cfg, StudyConfig):
        hint = "StudyConfig(**d)" if isinstance(cfg, dict) else "StudyConfig(...)"
        raise RegularkitError(f"run_study needs a StudyConfig (build one with {hint}), got {type(cfg).__name__}: "
                              f"{cfg!r:.80}")
    console = console or default_console()
    plan = make_plan(cfg, data=data, model=model)
    threads = torch.get_num_threads()
    torch.set_num_threads(plan.cfg.threads_per_worker())  # the plan's threads, which the run keys name
    try:
        return _run_planned(plan, data, console, progress, fresh)
    finally:
        torch.set_num_threads(threads)


def _run_planned(plan: Plan, data: Any, console: Console, progress: bool, fresh: bool) -> StudyResult:
    """Everything after the plan: the folder, the ledger, the runs (in two phases for distill), the report."""
    cfg = plan.cfg
    out = check_folder(cfg.out)
    if not fresh:
        check_same_configuration(out, plan.cfg)
    # --- nothing was written above this line ---
    if fresh and (moved := move_aside(out)) is not None:
        console.print(f"the previous study in {out} was moved to {moved}", markup=False, highlight=False)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    env = environment()
    env["machine"]["torch_threads_per_worker"] = plan.cfg.threads_per_worker()
    _write_start(plan, out, env)
    study = ledger.open_study(out, cfg.study_name, cfg.storage)
    store = open_store(out, cfg.storage, cfg.artifacts)
    reclaimed = ledger.reclaim_dead(study)
    if reclaimed:
        console.print(f"[yellow]{reclaimed} run(s) interrupted earlier will be redone from scratch[/]")
    _say_plan(plan, console)
    if any(needs_teacher(r) for r in plan.recipes):  # issue 22: the baseline's seeds first, then their teacher
        plan = _teach(plan, data, study, store, console, progress)
    if cfg.tune:
        console.print(f"searching each recipe's strength on the validation split ({cfg.tune} trials each)",
                      highlight=False)
        plan, _ = tune(plan, tuning_storage(out, cfg), log=lambda line: console.print(line, highlight=False))
    _say_runs(plan, console, len(ledger.completed(study, plan.keys)))
    records = _run_jobs(plan, data, study, store, console, progress)
    if cfg.combine:
        plan, records = _combine(plan, records, out, study, store, console, progress)
    return finish(plan, records, out, env, console, store)


def _teach(plan: Plan, data, study, store, console: Console, progress: bool) -> Plan:
    """Train the runs that need no teacher (study/run/teacher.py's first phase), then the plan whose splits carry
    the teacher, or without the distilling recipes (said in one line) when the baseline cannot teach yet."""
    pupils = [r.name for r in plan.recipes if needs_teacher(r)]
    first = first_phase(plan)
    if plan.cfg.tune:  # spawned workers would start the searches, distill's without its teacher: the parent trains
        first = dataclasses.replace(first, cfg=dataclasses.replace(plan.cfg, workers=1))
    console.print(f"first the {len(first.jobs)} runs that {', '.join(pupils)} need not wait for (the baseline's "
                  f"seeds teach): {len(ledger.completed(study, first.keys))} finished", highlight=False)
    _run_jobs(first, data, study, store, console, progress)
    plan, why = with_teacher(plan, study, store)
    if why is not None:
        console.print(f"left out {', '.join(pupils)} for now: {why}", style="yellow", markup=False, highlight=False)
        plan = without_pupils(plan, why)
    return plan


def _run_jobs(plan: Plan, data, study, store, console: Console, progress: bool) -> list[dict]:
    """Enqueue the plan's runs, train what is left (here or in workers), return the finished records."""
    ledger.enqueue_missing(study, {k: {"recipe": j.recipe.name, "seed": j.seed} for k, j in plan.jobs.items()})
    lost = _train(plan, data, study, store, console, progress, len(ledger.completed(study, plan.keys)))
    records_by_key = ledger.completed(study, plan.keys)
    missing = len(plan.jobs) - len(records_by_key)
    unfinished = unfinished_runs(plan, study) if missing else {}
    if unfinished:  # the CLI ends with these, non-zero, and the rerun command (after the table)
        console.print(f"{len(unfinished)} run(s) did not finish: {', '.join(unfinished)}; the table shows the "
                      "finished ones, and a rerun of the same command trains the rest", style="yellow", markup=False,
                      highlight=False)
    elif missing:
        console.print(f"[yellow]{missing} run(s) are still running in another command sharing this ledger; "
                      "the table shows the finished ones (rerun when they are done for the complete table)[/]",
                      highlight=False)
    elif lost:
        console.print(f"[yellow]every run finished: the run(s) of the {len(lost)} lost worker(s) were trained "
                      "by the others[/]", highlight=False)
    return [records_by_key[k] for k in plan.jobs if k in records_by_key]


def _combine(plan: Plan, records, out: Path, study, store, console: Console, progress: bool):
    """``--combine``: train the recipes that lowered validation error together (see study/tune/combine.py)."""
    comparisons = compare_to_baseline(summarize(records, [r.name for r in plan.recipes]), records)
    helped = helped_on_validation(comparisons)
    if not comparisons:
        console.print("[yellow]--combine: no baseline to compare the recipes with (it was not run, or it "
                      "diverged); nothing to combine[/]", highlight=False)
        return plan, records
    if len(helped) < 2:
        console.print(f"[yellow]--combine: {len(helped)} recipe(s) lowered validation error beyond seed noise; "
                      "nothing to combine[/]", highlight=False)
        return plan, records
    recipe, taken = combined_recipe(helped, {r.name: r for r in plan.recipes}, plan.cfg.base_recipe())
    if len(taken) < 2:
        console.print(f"[yellow]--combine: {', '.join(helped)} lowered validation error, but they cannot be "
                      "trained together (each chooses the final weights); nothing to combine[/]", highlight=False)
        return plan, records
    left_out = [n for n in helped if n not in taken]
    joint = joint_space(taken, plan.extra_recipes)
    if plan.cfg.tune and joint is not None:
        space, strengths = joint
        recipe, info = tune_recipe(plan, recipe, space, tuning_storage(out, plan.cfg), strengths=strengths)
        plan = dataclasses.replace(plan, tuned={**plan.tuned, COMBINED: {"field": ", ".join(space), **info,
                                                                         "value": info["values"]}})
    console.print(f"combining {', '.join(taken)}"
                  + (f" (left out: {', '.join(left_out)}, which cannot join them)" if left_out else ""),
                  highlight=False)
    plan = with_combined(plan, recipe)
    single = dataclasses.replace(plan, cfg=dataclasses.replace(plan.cfg, workers=1))  # the parent trains it
    return plan, _run_jobs(single, None, study, store, console, progress)

