"""The run ledger: one Optuna study, one trial per (recipe, seed) run, on the search's storage.

Each run to do is enqueued as a WAITING trial carrying its key in
``user_attrs``; a worker claims one with ``study.ask()``, which pops a waiting
trial atomically in every Optuna storage (journal file, SQLite, PostgreSQL),
so several workers -- processes or machines -- can share one ledger and no
run is done twice.  A finished run is a COMPLETE trial holding its record.

This is a thin layer over :mod:`regularkit.search.storage`, which opens the
storage and holds the one worker-recovery mechanism: a claimed trial records
its worker (host, pid and process start time, so a recycled pid is not taken
for the dead worker); on start, RUNNING trials of dead workers on this host,
and orphans (a worker killed between popping a trial and recording itself),
are failed and re-enqueued with their key, to be redone from scratch.  A run
is never counted twice: only COMPLETE trials with a usable record (:data:`RECORD_FIELDS`) count, the
first per key; a COMPLETE trial whose record lacks ``final`` (or another field) is done again, with one
warning line.  A run interrupted by Ctrl-C or SIGTERM right after its pop is closed (FAIL), not left
RUNNING.  A journal whose last record was torn is cut back when opened (:mod:`regularkit.search.journal`),
and an error opening any storage names it (the default journal by its path).  Two processes that start
together may both enqueue a run; the one that claims the younger copy closes it unused (FAIL,
``duplicate_of``), so a run is also never *trained* twice.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from regularkit.errors import RegularkitError
from regularkit.search.storage import describe_storage, mark_worker, open_storage, recover_dead_trials, requeue

__all__ = ["ORPHAN_GRACE_S", "RECORD_FIELDS", "open_study", "reclaim_dead", "enqueue_missing", "claim", "claim_next",
           "fail", "completed"]

#: A ledger trial carries no parameters, so popping one takes milliseconds: a RUNNING trial
#: with no worker after this long is an orphan.  (Reclaiming a live one by mistake would only
#: repeat work, never double-count: a key counts once however often it completes.)
ORPHAN_GRACE_S = 1.0


def open_study(out_dir: Path, study_name: str, storage: str | None = None) -> optuna.Study:
    """Open (or create) the ledger: a journal file in ``out_dir`` unless ``storage`` is a URL."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    where = storage if storage is not None else Path(out_dir) / "ledger.journal"
    try:
        opened = open_storage(where)
        # Runs carry no parameters: the random sampler never does any work in ask().
        return optuna.create_study(study_name=study_name, storage=opened, load_if_exists=True,
                                   direction="minimize", sampler=optuna.samplers.RandomSampler())
    except RegularkitError:
        raise
    except (ImportError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RegularkitError(f"cannot open storage {describe_storage(where)!r}: {first}") from None


def reclaim_dead(study: optuna.Study) -> int:
    """Fail and re-enqueue the runs of dead workers on this host, and orphans; returns how many."""
    return len(recover_dead_trials(study, max_retry=None, orphan_grace=ORPHAN_GRACE_S))


def enqueue_missing(study: optuna.Study, jobs: dict[str, dict[str, Any]]) -> int:
    """Enqueue every job (key -> attrs) that is neither done, queued nor running; returns how many."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING))
    taken = {t.user_attrs.get("key") for t in trials if t.state != TrialState.COMPLETE or _usable(t)}
    for t in trials:
        key = t.user_attrs.get("key")
        if key in jobs and t.state == TrialState.COMPLETE and not _usable(t) and key not in taken:
            print(f"regularkit: warning: run {key!r} (ledger trial {t.number}) finished without a usable record "
                  f"({_what_is_wrong(t.user_attrs.get('record'))}); it is done again", file=sys.stderr)
    n = 0
    for key, attrs in jobs.items():
        if key not in taken:
            study.enqueue_trial({}, user_attrs={"key": key, **attrs})
            n += 1
    return n


def claim(study: optuna.Study, keys: set[str]) -> optuna.Trial | None:
    """Pop one waiting run of ours (recording this worker in it), or None when none is left."""
    while any(t.user_attrs.get("key") in keys
              for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))):
        trial = study.ask()
        try:
            mark_worker(trial)
            key = trial.user_attrs.get("key")
            if key in keys:
                first = _first_of(study, key, trial.number)
                if first is None:
                    return trial
                # Two processes starting together both enqueued this run: the lowest-numbered trial of
                # a key is the run; this copy is closed unused, so the run is trained once.
                trial.set_user_attr("duplicate_of", first)
                study.tell(trial, state=TrialState.FAIL)
                continue
            if key is None:
                # Another worker took the last waiting run between our look and our ask: this
                # trial is a blank one Optuna made up; close it so it is not left RUNNING.
                study.tell(trial, state=TrialState.FAIL)
            else:
                # A run of another worker's set (a study sharing this ledger): give it back, untouched.
                requeue(study, trial.number, max_retry=None)
        except BaseException:
            # Ctrl-C or SIGTERM right after the pop: the run is closed (FAIL), not left RUNNING
            # until a later start finds its worker dead; it is redone like any interrupted run.
            _fail_quietly(study, trial.number)
            raise
    return None


def claim_next(study: optuna.Study, keys: set[str], wanted: set[str]) -> optuna.Trial | None:
    """Claim the next waiting run of ours if it is one of ``wanted`` (a recipe's other seeds), else None.

    ``--vectorize-seeds`` trains a recipe's seeds together: its worker takes them while they are
    next in the queue (runs are enqueued recipe by recipe), never skipping others' turn.  Another
    worker may pop that run between the look and the claim: the run claimed then may be outside
    ``wanted``; it is returned all the same (the caller trains it next).
    """
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    head = next((t for t in waiting if t.user_attrs.get("key") in keys), None)
    if head is None or head.user_attrs.get("key") not in wanted:
        return None
    return claim(study, keys)


def fail(study: optuna.Study, trials) -> None:
    """Mark claimed runs failed (to be redone); those already finished are left as they are."""
    for trial in trials:
        _fail_quietly(study, trial.number)


def _fail_quietly(study: optuna.Study, number: int) -> None:
    """Mark RUNNING trial ``number`` failed; nothing when it is finished already."""
    try:
        study.tell(number, state=TrialState.FAIL)
    except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
        pass


def _first_of(study: optuna.Study, key: str, number: int) -> int | None:
    """The number of a live (waiting, running or complete) trial of ``key`` older than ``number``, if any."""
    older = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING,
                                                                          TrialState.COMPLETE))
             if t.user_attrs.get("key") == key and t.number < number
             and (t.state != TrialState.COMPLETE or _usable(t))]
    return min(older, default=None)


def completed(study: optuna.Study, keys: set[str]) -> dict[str, dict[str, Any]]:
    """key -> record of each completed run among ``keys`` (the first, if a key completed twice)."""
    out: dict[str, dict[str, Any]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = t.user_attrs.get("key")
        if key in keys and key not in out and _usable(t):
            out[key] = t.user_attrs["record"]
    return out


#: What a finished run's record must hold for the summary (and its type).
RECORD_FIELDS = {"recipe": str, "seed": int, "final": dict, "history": list}


def _what_is_wrong(record: Any) -> str | None:
    """Why ``record`` cannot be summarized (None when it can)."""
    if not isinstance(record, dict):
        return "no record" if record is None else f"a record of type {type(record).__name__}"
    for name, kind in RECORD_FIELDS.items():
        if not isinstance(record.get(name), kind):
            return f"no {name!r}" if name not in record else f"{name!r} is {record[name]!r:.40}"
    return None


def _usable(trial) -> bool:
    return _what_is_wrong(trial.user_attrs.get("record")) is None
