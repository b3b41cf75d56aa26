"""``run_study``: validate everything, then recipes x seeds through the Optuna ledger, then the report.

Order (a refused command writes nothing): the plan (configuration, recipes,
data, model, applicability, device, storage: :mod:`~regularkit.study.plan`),
the folder (usable, and holding no study of other settings:
:mod:`~regularkit.study.folder`); only then are files written.

Files in the study folder (all written atomically):

* ``study.toml`` -- the StudyConfig; ``environment.json`` -- versions, machine, git revision;
  ``data.json`` -- the data's digest, shapes, split indices and where the samples came from
* ``ledger.journal`` -- the Optuna journal (unless ``storage`` is given); ``artifacts/`` -- test
  probabilities of every run (:mod:`~regularkit.study.artifacts`)
* ``runs/<recipe>/seed<k>.json`` -- each run's record and resolved recipe
* ``results.csv``, the figures, ``report.html``

Rerunning the same command resumes: finished runs are read from the ledger,
runs killed midway are redone from scratch, none is counted twice.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from regularkit._util.environment import environment
from regularkit._util.io import atomic_write_json, atomic_write_text
from regularkit.config import to_dict, to_toml
from regularkit.errors import RegularkitError
from regularkit.study import ledger, report
from regularkit.study.artifacts import load_probs, open_store
from regularkit.study.config import StudyConfig
from regularkit.study.data import prepare_data, split_record
from regularkit.study.folder import check_folder, check_same_configuration, move_aside, remove_stale_temps
from regularkit.study.plan import Plan, make_plan
from regularkit.study.progress import StudyProgress
from regularkit.study.summary import RecipeSummary, summarize
from regularkit.study.worker import check_exit_codes, spawn_workers, threads_per_worker, train_claimed

__all__ = ["StudyResult", "run_study", "prepare_splits", "finish"]

#: How often the parent of spawned workers looks at the ledger for progress (seconds).
POLL_S = 1.0


@dataclass
class StudyResult:
    summaries: list[RecipeSummary]
    records: list[dict[str, Any]]
    out_dir: Path
    files: dict[str, Path]
    plan: Plan | None = None


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


def _say_plan(plan: Plan, console: Console, done: int) -> None:
    console.print(f"data: {plan.data.description}; model: {plan.cfg.model}; device: {plan.device.type}"
                  f"{'' if plan.cfg.precision == 'fp32' else ', ' + plan.cfg.precision}", highlight=False)
    for name, why in plan.skipped.items():
        console.print(f"[yellow]left out {name}: {why}[/]", highlight=False)
    todo = len(plan.jobs) - done
    console.print(f"{len(plan.recipes)} recipes x {plan.cfg.seeds} seeds: {done} runs finished, {todo} to do",
                  highlight=False)


def _train(plan: Plan, data: Any, study, store, console: Console, progress: bool, done: int) -> None:
    cfg = plan.cfg
    with StudyProgress(console, len(plan.jobs), done, enabled=progress, workers=cfg.workers) as bar:
        if cfg.workers == 1:
            train_claimed(plan, study, store, on_start=bar.start, on_epoch=bar.epoch, on_done=bar.done_run)
            return
        # data given from Python travels to the workers as the loaded Dataset; a name or path is loaded there
        procs = spawn_workers(cfg, None if data is None else plan.data.dataset, cfg.workers)
        seen = set(ledger.completed(study, plan.keys))
        try:
            while True:
                alive = any(p.is_alive() for p in procs)
                for key, record in ledger.completed(study, plan.keys).items():
                    if key not in seen:  # finished by a worker since the last look: one line, the ETA
                        seen.add(key)
                        bar.done_run(plan.jobs[key], record)
                if not alive:
                    break
                time.sleep(POLL_S)
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join()
        check_exit_codes(procs)


def run_study(cfg: StudyConfig, *, data: Any = None, model=None, console=None, progress: bool = True,
              fresh: bool = False) -> StudyResult:
    """Run (or resume) the study ``cfg`` describes and write its report; see the module docstring.

    ``data``: instead of ``cfg.data``, a Dataset, arrays or torch Datasets; ``model``: instead of
    ``cfg.model``, the user's ``build(input_shape, num_classes)``.  ``fresh``: move an existing
    study in ``cfg.out`` aside (to ``<out>.old-<time>``) instead of resuming it.
    """
    console = console or default_console()
    plan = make_plan(cfg, data=data, model=model)
    out = check_folder(cfg.out)
    if not fresh:
        check_same_configuration(out, plan.cfg)
    # --- nothing was written above this line ---
    if fresh and (moved := move_aside(out)) is not None:
        console.print(f"the previous study in {out} was moved to {moved}", highlight=False)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out)
    env = environment()
    env["machine"]["torch_threads_per_worker"] = threads_per_worker(cfg.workers, cfg.threads)
    _write_start(plan, out, env)
    study = ledger.open_study(out, cfg.study_name, cfg.storage)
    store = open_store(out, cfg.storage, cfg.artifacts)
    reclaimed = ledger.reclaim_dead(study)
    if reclaimed:
        console.print(f"[yellow]{reclaimed} run(s) interrupted earlier will be redone from scratch[/]")
    ledger.enqueue_missing(study, {k: {"recipe": j.recipe.name, "seed": j.seed} for k, j in plan.jobs.items()})
    done = len(ledger.completed(study, plan.keys))
    _say_plan(plan, console, done)
    _train(plan, data, study, store, console, progress, done)
    records_by_key = ledger.completed(study, plan.keys)
    missing = len(plan.jobs) - len(records_by_key)
    if missing:
        console.print(f"[yellow]{missing} run(s) are still running in another worker or failed; "
                      "the table shows the finished ones[/]")
    records = [records_by_key[k] for k in plan.jobs if k in records_by_key]
    return finish(plan, records, out, env, console, store)


def _write_run_files(records, out: Path) -> None:
    for r in records:
        atomic_write_json(out / "runs" / r["recipe"] / f"seed{r['seed']}.json", r)


def add_seed_ensembles(summaries, records, store, y_test) -> int:
    """Test error of the ensemble of each recipe's seeds (mean of their probabilities), beside the members.

    Returns how many finished runs had no probabilities in this store (made on a machine whose
    artifact store this one does not see).
    """
    by_recipe: dict[str, list[np.ndarray]] = {}
    unseen = 0
    for r in records:
        if r.get("diverged"):
            continue
        probs = load_probs(store, r)
        if probs is None:
            unseen += 1
        else:
            by_recipe.setdefault(r["recipe"], []).append(probs)
    y = y_test.numpy()
    for s in summaries:
        probs = by_recipe.get(s.recipe, [])
        if len(probs) >= 2 and all(p.shape == (len(y), probs[0].shape[1]) for p in probs):
            error = float((np.mean(probs, axis=0).argmax(1) != y).mean())
            s.stats["ensemble_test_error"] = (error, 0.0)
            s.pooled_probs = (np.concatenate(probs), np.tile(y, len(probs)))
        elif len(probs) == 1:
            s.pooled_probs = (probs[0], y)
    return unseen


def finish(plan: Plan, records, out: Path, env, console, store) -> StudyResult:
    """Summaries, the table, the CSV, the figures and the HTML report of the finished ``records``."""
    cfg = plan.cfg
    summaries = summarize(records, [r.name for r in plan.recipes])
    if not summaries:
        raise RegularkitError(f"no finished runs to report in {str(out)!r}")
    for s in summaries:
        s.warnings = list(plan.warnings.get(s.recipe, []))
    _write_run_files(records, out)
    unseen = add_seed_ensembles(summaries, records, store, plan.data.splits.y_test)
    if unseen:
        console.print(f"[yellow]{unseen} run(s) were made where this machine cannot see their artifact store; "
                      "the seed-ensemble column leaves them out (share --artifacts between machines)[/]")
    title = f"regularkit study: {plan.data.dataset.name}, {cfg.model}"
    files = {"csv": report.write_csv(summaries, out / "results.csv"),
             "curves": report.plot_learning_curves(summaries, out / "learning_curves.png"),
             "test_curves": report.plot_learning_curves(summaries, out / "test_curves.png", against="test"),
             "gap": report.plot_gap(summaries, out / "gap.png"),
             "reliability": report.plot_reliability(summaries, out / "reliability.png")}
    images = [files["curves"], files["test_curves"], files["gap"], files["reliability"]]
    files["html"] = report.write_html(summaries, images, out / "report.html",
                                      title=title, config=to_dict(cfg), environment=env)
    report.print_table(summaries, title=title, console=console)
    console.print(f"results in {out}/: results.csv, learning_curves.png, test_curves.png, gap.png, "
                  "reliability.png, report.html")
    return StudyResult(summaries=summaries, records=records, out_dir=out, files=files, plan=plan)
