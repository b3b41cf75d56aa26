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

A worker that is killed leaves its run RUNNING; the next start recovers it
(:mod:`regularkit.search.storage`), so it is redone from scratch and counted once.
A run interrupted by Ctrl-C or SIGTERM is marked failed before the worker exits.
"""
from __future__ import annotations

import math
import multiprocessing
import sys
from pathlib import Path
from typing import Any, Callable

import optuna
import torch
from optuna.trial import TrialState

from regularkit._util.signals import SIGINT_EXIT, SIGTERM_EXIT, Terminated, interrupts_raise
from regularkit.config import from_dict, to_dict
from regularkit.errors import RegularkitError
from regularkit.study import ledger
from regularkit.study.artifacts import open_store, save_probs
from regularkit.study.config import StudyConfig
from regularkit.study.execute import run_recipe
from regularkit.study.plan import Job, Plan, make_plan
from regularkit.study.tuning import tune, tuning_storage

__all__ = ["train_claimed", "spawn_workers", "check_exit_codes"]

START_METHOD = "spawn"


def objective_value(record: dict[str, Any]) -> float:
    """What the ledger's trial is told: the validation error (inf for a diverged run: Optuna refuses NaN)."""
    value = record["final"].get("val_error")
    return float(value) if value is not None and math.isfinite(value) else math.inf


def train_claimed(plan: Plan, study: optuna.Study, store, *, on_start: Callable[[Job], None] | None = None,
                  on_epoch: Callable[[Job, dict], None] | None = None,
                  on_done: Callable[[Job, dict], None] | None = None) -> int:
    """Claim this plan's runs from the ledger and train them until none is waiting; returns how many."""
    n = 0
    while (trial := ledger.claim(study, plan.keys)) is not None:
        key = trial.user_attrs["key"]
        job = plan.jobs[key]
        if on_start is not None:
            on_start(job)
        try:
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
        study.tell(trial, objective_value(record))
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


def spawn_workers(cfg: StudyConfig, data: Any, workers: int) -> list[multiprocessing.Process]:
    """Start ``workers`` processes training this study's runs (see the module docstring)."""
    ctx = multiprocessing.get_context(START_METHOD)
    threads = cfg.threads_per_worker()
    procs = [ctx.Process(target=_worker_main, args=(to_dict(cfg), data, threads), name=f"regularkit-study-{i}")
             for i in range(workers)]
    for p in procs:
        p.start()
    return procs


def check_exit_codes(procs: list[multiprocessing.Process]) -> None:
    """A worker that died of an error (not a signal) is a bug to report; its traceback is printed above."""
    bad = [p for p in procs if p.exitcode is not None and p.exitcode > 0 and p.exitcode not in (SIGINT_EXIT, SIGTERM_EXIT)]
    if bad:
        raise RegularkitError(f"study worker {bad[0].name} exited with code {bad[0].exitcode}; see its message above")
