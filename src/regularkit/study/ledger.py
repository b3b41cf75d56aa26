"""The run ledger: one Optuna study, one trial per (recipe, seed) run.

Each run to do is enqueued as a WAITING trial carrying its key in
``user_attrs``; a worker claims one with ``study.ask()``, which pops a waiting
trial atomically in every Optuna storage (journal file, SQLite, PostgreSQL),
so several workers -- processes or machines -- can share one ledger and no
run is done twice.  A finished run is a COMPLETE trial holding its record.

Resume: a run whose worker died (SIGKILL, power loss) is left RUNNING.  When
a worker starts, RUNNING trials whose worker was on this host and whose
process is gone are marked FAIL and their run is enqueued again, to be redone
from scratch; it is never counted twice because only COMPLETE trials count.
Runs on other hosts cannot be checked from here; they are left alone.  A worker
killed between popping a trial and recording itself in it leaves a RUNNING trial
with no worker: such a trial older than ``ORPHAN_GRACE_S`` is reclaimed too (a
live worker records itself milliseconds after the pop; reclaiming a live one by
mistake would only repeat work, since a key counts once however often it completes).
"""
from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from regularkit.errors import RegularkitError


ORPHAN_GRACE_S = 1.0


def open_study(out_dir: Path, study_name: str, storage: str | None = None) -> optuna.Study:
    """Open (or create) the ledger: a journal file in ``out_dir`` unless ``storage`` is a URL."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        backend = JournalFileBackend(str(out_dir / "ledger.journal"))
        storage_obj: Any = JournalStorage(backend)
    else:
        storage_obj = storage
    try:
        return optuna.create_study(study_name=study_name, storage=storage_obj, load_if_exists=True,
                                   direction="minimize")
    except (ImportError, ValueError) as exc:
        raise RegularkitError(f"cannot open storage {storage!r}: {exc}") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_id() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def reclaim_dead(study: optuna.Study) -> int:
    """Mark RUNNING trials of dead workers on this host, and orphans, as FAIL; returns how many."""
    me = socket.gethostname()
    now = datetime.datetime.now()  # Optuna stamps datetime_start with naive local time
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        w = t.user_attrs.get("worker") or {}
        dead = w.get("host") == me and w.get("pid") and not _alive(int(w["pid"]))
        orphan = not w and t.datetime_start is not None and (
            (now - t.datetime_start).total_seconds() > ORPHAN_GRACE_S)
        if dead or orphan:
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            n += 1
    return n


def enqueue_missing(study: optuna.Study, jobs: dict[str, dict[str, Any]]) -> int:
    """Enqueue every job (key -> attrs) that is neither done, queued nor running; returns how many."""
    taken = {t.user_attrs.get("key") for t in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING))}
    n = 0
    for key, attrs in jobs.items():
        if key not in taken:
            study.enqueue_trial({}, user_attrs={"key": key, **attrs})
            n += 1
    return n


def claim(study: optuna.Study, keys: set[str]) -> optuna.Trial | None:
    """Pop one waiting trial of ours, or None when nothing is left to do."""
    waiting = [t for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
               if t.user_attrs.get("key") in keys]
    if not waiting:
        return None
    trial = study.ask()
    if trial.user_attrs.get("key") not in keys:
        # Another worker took the last waiting trial between our look and our ask:
        # this trial is a blank one Optuna made up; close it so it is not left RUNNING.
        study.tell(trial, state=TrialState.FAIL)
        return None
    trial.set_user_attr("worker", worker_id())
    return trial


def completed(study: optuna.Study, keys: set[str]) -> dict[str, dict[str, Any]]:
    """key -> record of each completed run among ``keys`` (the first, if a key completed twice)."""
    out: dict[str, dict[str, Any]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = t.user_attrs.get("key")
        if key in keys and key not in out and "record" in t.user_attrs:
            out[key] = t.user_attrs["record"]
    return out
