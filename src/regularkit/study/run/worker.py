"""Workers: claim runs from the ledger and train them, in this process or in N spawned ones.

``regularkit study --workers N`` starts N processes with the "spawn" method (a
fresh interpreter each: no half-initialised thread pool or lock inherited from
the parent).  Each one rebuilds the plan from the configuration (loading the
data itself; data given from Python travels by pickle), sets its torch threads
(the plan's count: ``--threads``, or by the work of a step, study/plan.py ``work``), and claims
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
from regularkit.study.run import ledger
from regularkit.study.run.artifacts import open_store, save_outputs
from regularkit.study.config import StudyConfig
from regularkit.study.run.execute import run_recipe
from regularkit.study.tune.objective import trial_value
from regularkit.study.plan import Job, Plan, make_plan
from regularkit.study.run.teacher import keeps_train_probs, with_teacher
from regularkit.study.tune.tuning import tune, tuning_storage
from regularkit.study.run.vectorize import sequential_reason, train_seeds

__all__ = ["train_claimed", "spawn_workers", "supervise_workers", "unfinished_runs", "lost_workers",
           "LOST_ATTR"]

#: Study user attribute: ``"pid:start" -> {"how": ..., "parent": "pid:start"}`` for each worker a parent saw die
#: by a signal (``"pid:?"`` when it held no run).
LOST_ATTR = "regularkit.lost_workers"


def train_claimed(plan: Plan, study: optuna.Study, store, *, on_start: Callable[[Job], None] | None = None,
                  on_epoch: Callable[[Job, dict], None] | None = None,
                  on_done: Callable[[Job, dict], None] | None = None) -> int:
    """Claim this plan's runs from the ledger and train them until none is waiting; returns how many.

    With ``vectorize_seeds`` (``--vectorize-seeds``), a run of a recipe whose seeds can train together
    (:func:`regularkit.study.run.vectorize.sequential_reason`) is trained with the waiting runs of the
    recipe's other seeds that are next in the queue (:func:`regularkit.study.run.ledger.claim_next`)
    by :func:`regularkit.study.run.vectorize.train_seeds`; each seed's record is told to the ledger as
    its own run, with the numbers its sequential run has (so its key is the same).  Every other
    run is trained alone, as before.
    """
    n = 0
    later: list = []  # runs claimed while gathering a group that are not of it: trained next
    together = _together(plan)
    while (trial := later.pop(0) if later else ledger.claim(study, plan.keys)) is not None:
        group = [trial]
        try:  # from the claim on: a signal or a failure marks these runs failed, never leaves them RUNNING
            key = trial.user_attrs["key"]
            recipe = plan.jobs[key].recipe
            if together(recipe):
                siblings = {k for k, j in plan.jobs.items() if j.recipe == recipe and k != key}
                siblings -= {t.user_attrs["key"] for t in later}
                while siblings and (more := ledger.claim_next(study, plan.keys, siblings)) is not None:
                    (group if more.user_attrs["key"] in siblings else later).append(more)
                    siblings.discard(more.user_attrs["key"])
            jobs = [plan.jobs[t.user_attrs["key"]] for t in group]
            records = _train(plan, jobs, together(recipe), on_start, on_epoch)
            for t, record in zip(group, records):
                record["key"] = t.user_attrs["key"]
                save_outputs(store, t, record)
                t.set_user_attr("record", record)
            for t, job, record in zip(group, jobs, records):
                study.tell(t, trial_value(record))
                n += 1
                if on_done is not None:
                    on_done(job, record)
        except BaseException:
            # Ctrl-C, SIGTERM or a bug: the runs not yet told are marked failed and redone next time;
            # everything already finished stays in the ledger.
            ledger.fail(study, group + later)
            raise
    return n


def _together(plan: Plan) -> Callable[[Any], bool]:
    """recipe -> whether its seeds train together here (decided once per recipe, when first claimed)."""
    decided: dict[str, bool] = {}

    def together(recipe) -> bool:
        if recipe.name not in decided:
            cfg = plan.cfg
            decided[recipe.name] = cfg.vectorize_seeds and sequential_reason(
                recipe, plan.data.splits, seeds=cfg.seeds, precision=cfg.precision, factory=plan.factory) is None
        return decided[recipe.name]

    return together


def _train(plan: Plan, jobs: list[Job], together: bool, on_start, on_epoch) -> list[dict]:
    """The records of ``jobs``: one run alone, or (``together``) a recipe's seeds in one group, in order."""
    if on_start is not None:
        for job in jobs:
            on_start(job)
    keep = keeps_train_probs(plan, jobs[0])  # the baseline's training-set probabilities when the plan distills
    if together:
        by_seed = {job.seed: job for job in jobs}
        return train_seeds(jobs[0].recipe, plan.data.splits, [job.seed for job in jobs], device=plan.device,
                           train_probs=keep,
                           precision=plan.cfg.precision, factory=plan.factory,
                           on_epoch=None if on_epoch is None else (lambda s, m: on_epoch(by_seed[s], m)))
    job = jobs[0]
    return [run_recipe(job.recipe, plan.data.splits, job.seed, device=plan.device, precision=plan.cfg.precision,
                       factory=plan.factory, train_probs=keep,
                       on_epoch=None if on_epoch is None else (lambda m, job=job: on_epoch(job, m)))]


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
        study = ledger.open_study(out, cfg.study_name, cfg.storage)
        store = open_store(out, cfg.storage, cfg.artifacts)
        plan, _ = with_teacher(plan, study, store)  # distill's teacher, read from disk (issue 22)
        if cfg.tune:  # the parent has run the searches: this reads the chosen strengths from the storage
            plan, _ = tune(plan, tuning_storage(out, cfg))
        train_claimed(plan, study, store)
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
