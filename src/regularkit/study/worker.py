"""Workers: claim runs from the ledger and train them, in this process or in N spawned ones.

``regularkit study --workers N`` starts N processes with the "spawn" method (a
fresh interpreter each: no half-initialised thread pool or lock inherited from
the parent).  Each one rebuilds the plan from the configuration (loading the
data itself; data given from Python travels by pickle), sets its torch threads
(``--threads``, default ``cores // N`` so that N x threads <= cores: ``StudyConfig.threads_per_worker``), and claims
runs until none is left; the parent watches the ledger for progress and writes
the report once every worker has finished.  Several commands started by hand
(on one machine or many, sharing ``--storage``) cooperate the same way: each
claims what is left, and each writes a report of what is finished when it ends.

The N processes are started and watched by the one supervisor of search and
study workers (:mod:`regularkit._util.processes`, with its exit-code policy).  A
worker killed by a signal (``kill -9``, the OOM killer) has its run failed and
queued again at once (:func:`regularkit.search.storage.recover_dead_trials`, the
search's recovery), so a worker still claiming trains it; the parent records
how the worker died in the ledger (study user attribute ``regularkit.lost_workers``)
and, if the run is still unfinished when every worker has ended,
:func:`unfinished_runs` names it and the command exits non-zero with the rerun
command.  A worker killed while no parent watches (another command, another
machine) leaves its run RUNNING; the next start on its host recovers it.  A run
interrupted by Ctrl-C or SIGTERM is marked failed before the worker exits; a
worker that exits with an error stops the others (one line, exit 2).
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

import optuna
import torch
from optuna.trial import TrialState

from regularkit._util.processes import WorkerExit, spawn_processes, supervise_processes
from regularkit._util.signals import SIGINT_EXIT, SIGTERM_EXIT, Terminated, interrupts_raise
from regularkit.config import from_dict, to_dict
from regularkit.data.schema import DataWarning
from regularkit.errors import RegularkitError
from regularkit.search.storage import WORKER_ATTR, recover_dead_trials, worker_identity
from regularkit.study import ledger
from regularkit.study.artifacts import open_store, save_probs
from regularkit.study.config import StudyConfig
from regularkit.study.execute import run_recipe
from regularkit.study.objective import trial_value
from regularkit.study.plan import Job, Plan, make_plan
from regularkit.study.tuning import tune, tuning_storage

__all__ = ["train_claimed", "spawn_workers", "supervise_workers", "unfinished_runs", "lost_workers", "LOST_ATTR"]

#: Study user attribute: ``"pid:start" -> {"how": ..., "parent": "pid:start"}`` for each worker a parent saw die
#: by a signal (``"pid:?"`` when it held no run).
LOST_ATTR = "regularkit.lost_workers"


def train_claimed(plan: Plan, study: optuna.Study, store, *, on_start: Callable[[Job], None] | None = None,
                  on_epoch: Callable[[Job, dict], None] | None = None,
                  on_done: Callable[[Job, dict], None] | None = None) -> int:
    """Claim this plan's runs from the ledger and train them until none is waiting; returns how many."""
    n = 0
    while (trial := ledger.claim(study, plan.keys)) is not None:
        try:  # from the claim on: a signal or a failure marks this run failed, never leaves it RUNNING
            key = trial.user_attrs["key"]
            job = plan.jobs[key]
            if on_start is not None:
                on_start(job)
            record = run_recipe(job.recipe, plan.data.splits, job.seed, device=plan.device,
                                precision=plan.cfg.precision, factory=plan.factory,
                                on_epoch=None if on_epoch is None else (lambda m, job=job: on_epoch(job, m)))
            record["key"] = key
            probs = record.pop("test_probs")
            if probs is not None:
                record["probs_artifact"] = save_probs(store, trial, probs.numpy())
            trial.set_user_attr("record", record)
        except BaseException:
            # Ctrl-C, SIGTERM or a bug: this run is marked failed and redone next time;
            # everything already finished stays in the ledger.
            study.tell(trial, state=TrialState.FAIL)
            raise
        study.tell(trial, trial_value(record))
        n += 1
        if on_done is not None:
            on_done(job, record)
    return n


def _worker_main(cfg_dict: dict, data: Any, threads: int) -> None:
    """Entry point of a spawned worker: rebuild the plan, claim and train until nothing is left."""
    with interrupts_raise():
        _work(cfg_dict, data, threads)


def _work(cfg_dict: dict, data: Any, threads: int) -> None:
    torch.set_num_threads(threads)
    cfg = from_dict(StudyConfig, cfg_dict, where="study")
    try:
        with warnings.catch_warnings():  # the parent made the same plan and said its data warnings once
            warnings.simplefilter("ignore", DataWarning)
            plan = make_plan(cfg, data=data)
        out = Path(cfg.out)
        if cfg.tune:  # the parent has run the searches: this reads the chosen strengths from the storage
            plan, _ = tune(plan, tuning_storage(out, cfg))
        study = ledger.open_study(out, cfg.study_name, cfg.storage)
        train_claimed(plan, study, open_store(out, cfg.storage, cfg.artifacts))
    except Terminated:
        raise SystemExit(SIGTERM_EXIT) from None
    except KeyboardInterrupt:
        raise SystemExit(SIGINT_EXIT) from None
    except RegularkitError as exc:
        print(f"regularkit: error: {exc}", file=sys.stderr)
        raise SystemExit(2)


def spawn_workers(cfg: StudyConfig, data: Any, workers: int) -> list:
    """Start ``workers`` processes training this study's runs (see the module docstring)."""
    threads = cfg.threads_per_worker()
    return spawn_processes(_worker_main, [(to_dict(cfg), data, threads)] * workers,
                           [f"regularkit-study-{i}" for i in range(workers)])


def supervise_workers(procs: Sequence, study: optuna.Study, plan: Plan, *, poll: Callable[[], None] | None = None,
                      say: Callable[[str], None] | None = None, poll_s: float = 1.0) -> list[WorkerExit]:
    """Wait for the workers of :func:`spawn_workers`; returns those that ended by a signal.

    Each one that dies by a signal has its run queued again at once (other workers still
    claiming take it), is said in one line naming the run, and is recorded in the ledger
    (``LOST_ATTR``) so that :func:`unfinished_runs` can name how it ended.  A worker that
    exits with an error stops the others and raises :class:`~regularkit._util.processes.WorkerFailed` (one line).
    """
    def recover() -> list[int]:
        # no retry limit (a run is a run); other workers are live, so an anonymous RUNNING trial gets the
        # storage's long orphan grace, not the ledger's 1 s at start (a busy live worker may not have marked it yet)
        return recover_dead_trials(study, max_retry=None)

    def on_exit(ended: WorkerExit) -> None:
        if not ended.lost:
            return
        runs = _run_names(study, plan, ended.recovered)
        _record_lost(study, ended)
        if say is not None:
            say(f"study worker {ended.describe()}; "
                + (f"its run {', '.join(runs)} was queued again" if runs else "it held no run"))

    return [e for e in supervise_processes(procs, recover=recover, on_exit=on_exit, poll=poll, poll_s=poll_s,
                                           what="study worker") if e.lost]


def _run_names(study: optuna.Study, plan: Plan, numbers: Sequence[int]) -> list[str]:
    trials = study.get_trials(deepcopy=False)
    keys = [trials[n].user_attrs.get("key") for n in numbers if n < len(trials)]
    return [f"{plan.jobs[k].recipe.name} seed {plan.jobs[k].seed}" for k in keys if k in plan.jobs]


def _worker_key(identity: Any) -> str | None:
    return f"{identity.get('pid')}:{identity.get('start')}" if isinstance(identity, dict) else None


def _record_lost(study: optuna.Study, ended: WorkerExit) -> None:
    """Keep how a worker died in the ledger (a pid alone says nothing about why), with the parent that saw it."""
    trials = study.get_trials(deepcopy=False)
    held = [trials[n].user_attrs.get(WORKER_ATTR) for n in ended.recovered if n < len(trials)]
    key = next((_worker_key(w) for w in held if isinstance(w, dict)), f"{ended.pid}:?")
    entry = {"how": ended.describe(), "parent": _worker_key(worker_identity())}
    study.set_user_attr(LOST_ATTR, {**study.user_attrs.get(LOST_ATTR, {}), key: entry})


def lost_workers(study: optuna.Study) -> list[str]:
    """How each worker of this process (the parent) that died by a signal ended, as recorded in the ledger."""
    me = _worker_key(worker_identity())
    return [e["how"] for e in study.user_attrs.get(LOST_ATTR, {}).values() if e.get("parent") == me]


def unfinished_runs(plan: Plan, study: optuna.Study) -> dict[str, str]:
    """``"recipe seed k" -> why`` for the plan's runs that are neither finished nor running in a live worker.

    These are what a rerun of the same command trains: runs queued again after their worker died
    by a signal, and runs nobody claimed.  A run still RUNNING (another command or machine is
    training it) is not unfinished.
    """
    done = set(ledger.completed(study, plan.keys))
    trials = study.get_trials(deepcopy=False)
    running = {t.user_attrs.get("key") for t in trials if t.state == TrialState.RUNNING}
    lost = study.user_attrs.get(LOST_ATTR, {})
    out = {}
    for key, job in plan.jobs.items():
        if key in done or key in running:
            continue
        failed = [t for t in trials if t.user_attrs.get("key") == key and t.state == TrialState.FAIL
                  and WORKER_ATTR in t.user_attrs]
        why = "not trained"
        if failed:
            who = failed[-1].user_attrs[WORKER_ATTR]
            why = lost.get(_worker_key(who), {}).get("how", f"its worker (pid {who.get('pid')}) ended before "
                                                            "finishing it")
        out[f"{job.recipe.name} seed {job.seed}"] = why
    return out
