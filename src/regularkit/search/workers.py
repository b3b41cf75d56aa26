"""What one search worker does, and how N of them share one study on one machine.

A worker is ``study.optimize`` on a share of the trials.  ``workers=N`` starts N
processes through the one supervisor of search and study workers
(:mod:`regularkit._util.processes`: "spawn", its exit-code policy, recovery, stop): a
fresh interpreter per worker, so no PyTorch thread pool, CUDA context or lock is
inherited half-initialised from the parent.  The price is that the objective travels by
pickle: it must be a module-level function or an instance of a module-level
class (a ``functools.partial`` of one is fine), not a lambda or a closure.

The total is exact on one machine: the supervisor splits the missing trials,
``n_trials - done - running``, into N shares that add up to it.  Optuna's
``MaxTrialsCallback`` (counting running trials too) additionally stops a worker
once the study has enough trials, which is what bounds the total when workers
on several machines share a storage.  A worker killed by a signal has its
running trial failed and re-enqueued at once (see ``storage.py``); when the round
ends the supervisor counts again and runs what is missing, so the killed trial runs
once more and every other trial exactly once.  A worker that exits with an error
stops the search with one line (:class:`~regularkit._util.processes.WorkerFailed`).
"""
from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from regularkit._util.checks import check_int
from regularkit._util.processes import WorkerExit, spawn_processes, supervise_processes
from regularkit._util.signals import SIGINT_EXIT, SIGTERM_EXIT, Terminated, interrupts_raise
from regularkit.errors import RegularkitError
from regularkit.search.samplers import make_pruner, make_sampler
from regularkit.search.space import SearchSpace
from regularkit.search.storage import done_trials, fail_stale_trials, mark_worker, open_storage, recover_dead_trials

MAX_IDLE_ROUNDS = 3  # rounds in a row without a finished trial before giving up


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker process needs; pickled to each worker."""

    objective: Callable[[dict, Callable[[int, float], bool]], float]
    space: SearchSpace
    storage: Any  # a URL or journal path (reopened in each worker), or a picklable Optuna storage
    study_name: str
    total: int
    sampler: Any = "random"
    seed: int = 0
    grid_points: Any = 5
    pruner: Any = None
    fixed: Mapping[str, Any] = field(default_factory=dict)
    metric: str = "val_err"
    log: Callable[[str], None] | None = print
    workers: int = 1


class TrialFunction:
    """Optuna's ``objective(trial)`` around ours: params in, a report callable, pruning out."""

    def __init__(self, job: WorkerJob):
        self.job = job

    def __call__(self, trial: optuna.Trial) -> float:
        # First thing: who runs this trial, so a recoverer can tell when it died.
        mark_worker(trial)
        params = {**self.job.space.suggest(trial), **self.job.fixed}
        pruned_at: list[int] = []

        def report(step: int, value: float) -> bool:
            step = check_int("report step", step, minimum=0)
            trial.report(float(value), step)
            if trial.should_prune():
                pruned_at.append(step)
                return True
            return False

        value = self.job.objective(params, report)
        if pruned_at:
            # The objective stopped when told to; Optuna keeps the last reported value.
            raise optuna.TrialPruned(f"pruned at step {pruned_at[0]}")
        return float(value)


def format_line(metric: str, trial: optuna.trial.FrozenTrial, space: SearchSpace, done: int, total: int) -> str:
    """The cs231n log line: ``val_err: 0.412000, lr: 1.405206e-04, reg: 4.793564e-01, (1 / 100)``."""
    value = f"{metric}: {trial.value:.6f}" if trial.value is not None else f"{metric}: nan"
    if trial.state == TrialState.PRUNED:
        value += f" (pruned at step {trial.last_step})"
    elif trial.state == TrialState.FAIL:
        value += " (failed)"
    shown = [f"{n}: {v:.6e}" if isinstance(v, float) else f"{n}: {v}"
             for n, v in space.decode(trial.params).items()]
    return ", ".join([value, *shown, f"({done} / {total})"])


class LogLine:
    """Optuna callback printing one line per finished trial."""

    def __init__(self, job: WorkerJob):
        self.job = job

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.job.log is not None:
            done = len(done_trials(study))
            self.job.log(format_line(self.job.metric, trial, self.job.space, done, self.job.total))


def run_share(job: WorkerJob, n_trials: int, sampler_seed: int) -> None:
    """Run ``n_trials`` trials of the study in this process."""
    storage = open_storage(job.storage)
    sampler = make_sampler(job.sampler, job.space, seed=sampler_seed, grid_points=job.grid_points,
                           parallel=job.workers > 1, total=job.total)
    study = optuna.load_study(study_name=job.study_name, storage=storage, sampler=sampler,
                              pruner=make_pruner(job.pruner))
    # Everything started counts (a lost attempt too: the supervisor's next round runs its retry).
    guard = optuna.study.MaxTrialsCallback(job.total, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                              TrialState.FAIL, TrialState.RUNNING))
    with quiet_optuna():
        study.optimize(TrialFunction(job), n_trials=n_trials, callbacks=[guard, LogLine(job)])


def _worker_main(job: WorkerJob, n_trials: int, sampler_seed: int) -> None:
    """Entry point of a worker process (spawned).  Ctrl-C (sent to the whole process group) or SIGTERM
    ends it with 130 / 143 and no traceback; Optuna has marked its trial failed, and the parent retries it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with interrupts_raise():
        try:
            run_share(job, n_trials, sampler_seed)
        except Terminated:
            raise SystemExit(SIGTERM_EXIT) from None
        except KeyboardInterrupt:
            raise SystemExit(SIGINT_EXIT) from None


class HideInterruptedTrials(logging.Filter):
    """Drops Optuna's report of a trial stopped by Ctrl-C or SIGTERM -- a WARNING with the
    interrupt's traceback, then "Trial N failed with value None." -- because the interruption is
    said once, in one line, by whoever was interrupted (the CLI).  Failures of any other kind
    keep their log lines and tracebacks."""

    def __init__(self):
        super().__init__()
        self.interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, KeyboardInterrupt):      # Terminated (SIGTERM) is one too
            self.interrupted = True
            return False
        return not (self.interrupted and record.getMessage().endswith("failed with value None."))


@contextlib.contextmanager
def quiet_optuna():
    """Our log line replaces Optuna's per-trial INFO message, and an interrupted trial is not
    reported with a traceback (:class:`HideInterruptedTrials`); level and handlers restored after."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    hide = HideInterruptedTrials()
    handlers = list(logging.getLogger("optuna").handlers)   # Optuna's own handler is on its root logger
    for handler in handlers:
        handler.addFilter(hide)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(hide)
        optuna.logging.set_verbosity(level)


def split(n: int, parts: int) -> list[int]:
    """``n`` trials into ``parts`` shares that differ by at most one and add up to ``n``."""
    q, r = divmod(n, parts)
    return [q + 1] * r + [q] * (parts - r)


def worker_seed(seed: int, round_: int, index: int) -> int:
    """Distinct, reproducible sampler seeds per worker (equal seeds would draw equal trials)."""
    if round_ == 0 and index == 0:
        return seed  # a one-worker search reproduces RandomSampler(seed) exactly
    return random.Random(f"regularkit-{seed}-{round_}-{index}").randrange(2**31)


def missing(study: optuna.Study, total: int) -> int:
    """Trials still to start: the total minus done and running ones (after recovering dead ones)."""
    recover_dead_trials(study)
    fail_stale_trials(study)
    running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    return total - len(done_trials(study)) - running


def supervise(job: WorkerJob) -> None:
    """Run rounds of workers until the study holds ``job.total`` done trials."""
    # This study object only counts and recovers: a plain sampler, so that telling a
    # dead trial FAIL never runs GridSampler.after_trial (which may call study.stop()).
    study = optuna.load_study(study_name=job.study_name, storage=open_storage(job.storage),
                              sampler=optuna.samplers.RandomSampler(seed=0))
    idle, round_ = 0, 0
    while (todo := missing(study, job.total)) > 0:
        before = len(done_trials(study))
        shares = [s for s in split(todo, job.workers) if s > 0]
        if job.workers == 1:
            run_share(job, shares[0], worker_seed(job.seed, round_, 0))
        else:
            _run_processes(job, study, shares, round_)
        idle = idle + 1 if len(done_trials(study)) == before else 0
        if idle >= MAX_IDLE_ROUNDS:
            raise RegularkitError(f"search {job.study_name!r} finished no trial in {idle} rounds of workers "
                                  "in a row (each worker died); giving up")
        round_ += 1


def _run_processes(job: WorkerJob, study: optuna.Study, shares: list[int], round_: int) -> None:
    """One round: a process per share, supervised by the one supervisor (``_util/processes.py``).

    A worker killed by a signal has its trial failed and re-enqueued at once (the live workers or the
    next round run it); one that exits with an error stops the search (:class:`WorkerFailed`)."""
    def say(ended: WorkerExit) -> None:
        if ended.lost and job.log is not None:
            job.log(f"worker {ended.describe()}; re-enqueued trial(s) {list(ended.recovered)}")

    procs = spawn_processes(_worker_main, [(job, share, worker_seed(job.seed, round_, i))
                                           for i, share in enumerate(shares)],
                            [f"regularkit-search-{round_}.{i}" for i in range(len(shares))])
    supervise_processes(procs, recover=lambda: recover_dead_trials(study), on_exit=say, what="search worker")


def check_picklable(what: str, obj: Any, workers: int) -> None:
    """Worker processes receive the objective (and log) by pickle: say so early, naming it."""
    import pickle

    try:
        pickle.dumps(obj)
    except Exception as exc:  # PicklingError, AttributeError, TypeError depending on the object
        raise RegularkitError(
            f"workers={workers} needs a picklable {what} (a module-level function or class instance), "
            f"got {obj!r}: {exc}") from None
