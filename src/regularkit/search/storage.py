"""Where trials are kept (a search's, and the study's run ledger), and how trials of dead workers are retried.

This is the one implementation of worker recovery in regularkit: the search's
workers and the study's ledger (:mod:`regularkit.study.run.ledger`) both record
their worker with :func:`mark_worker` and recover with :func:`recover_dead_trials`.

Storages are Optuna's:

* ``"postgresql://user@host/db"`` (any SQLAlchemy URL with ``://``): ``RDBStorage``
  with a heartbeat.  Each running trial records a heartbeat every
  ``heartbeat_interval`` seconds; a trial silent for ``grace_period`` seconds is
  failed by the next worker that asks for a trial, and Optuna's retry callback
  re-enqueues its parameters.  This works across machines.
* a path: ``JournalStorage`` over a ``JournalFileBackend`` (a folder gets
  ``journal.log`` inside it; an existing file or a path with a suffix is the file
  itself).  A local or NFS file, nothing to install or run; a torn last record is
  repaired when it is opened (:mod:`regularkit.search.journal`).

The journal has no heartbeat, so regularkit adds the missing piece by hand: each
trial records its worker in the user attribute ``regularkit.worker`` =
``{"host", "pid", "start"}`` ("start" is the process start time from /proc, so
a recycled pid is not mistaken for the dead worker).  :func:`recover_dead_trials`
marks RUNNING trials of this host whose process is gone as FAIL and re-enqueues
their parameters (and user attributes: the ledger's run key) through the same
Optuna retry callback.  The search runner calls it on start and whenever one of
its workers dies; the study calls it on start.  Trials of other hosts are left
alone (use the RDB heartbeat, or restart on that host).

Orphans: a worker killed between popping a trial (``study.ask()``) and recording
itself leaves a RUNNING trial with no worker.  One older than ``orphan_grace``
seconds is recovered too.  A live worker records itself right after the pop,
so the grace only has to cover the sampler's work inside ``ask()``; reclaiming
a live trial by mistake would make its worker's ``tell`` fail, so callers
whose samplers may be slow (TPE over many trials) pass a longer grace.
"""
from __future__ import annotations

import copy
import datetime
import inspect
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from regularkit.errors import RegularkitError
from regularkit.search.journal import check_journal_file, journal_backend, journal_path, repair_journal

WORKER_ATTR = "regularkit.worker"

HEARTBEAT_INTERVAL = 10  # seconds between heartbeats of a running trial (RDB only)
ORPHAN_GRACE = 30        # seconds after which a RUNNING trial with no worker recorded is an orphan
GRACE_PERIOD = 30        # seconds of silence after which a running trial is stale
MAX_RETRY = 3            # a trial that kills its worker this often stays failed

# Optuna 4.9 renamed RetryFailedTrialCallback; keep working on the older name (optuna >= 3.5).
_Retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback


class RetryLostTrial(_Retry):
    """Optuna's retry callback, minus the dead worker's identity on the retried copy.

    The copy waits in the queue with state WAITING; if it kept the dead pid, a
    recovery running just after a live worker picks it up could fail it again.
    """

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial = copy.deepcopy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != WORKER_ATTR}
        super().__call__(study, trial)


def _retry_callback(max_retry: int) -> RetryLostTrial:
    with warnings.catch_warnings():  # experimental in Optuna; we pin the behaviour by tests
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryLostTrial(max_retry=max_retry)


def open_storage(storage: Any, *, heartbeat_interval: int = HEARTBEAT_INTERVAL,
                 grace_period: int = GRACE_PERIOD, max_retry: int = MAX_RETRY):
    """An Optuna storage from a URL, a journal path, or an Optuna storage (returned as is)."""
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    try:
        text = os.fspath(storage)
    except TypeError:
        raise RegularkitError(f"storage must be a database URL, a journal path or an Optuna storage, "
                              f"got {storage!r}") from None
    if "://" in text:
        callback_kw = ("heartbeat_stale_trial_callback"
                       if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
                       else "failed_trial_callback")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(text, heartbeat_interval=heartbeat_interval,
                                                  grace_period=grace_period,
                                                  **{callback_kw: _retry_callback(max_retry)})
        except ImportError as exc:  # the database driver is an optional dependency
            raise _missing_driver(describe_storage(text), sqlalchemy.make_url(text), exc) from None
    path = journal_path(text)
    repair_journal(path)
    return optuna.storages.JournalStorage(journal_backend(path))


def check_storage(storage: str) -> None:
    """Refuse, in one line and without writing anything, a storage that cannot be opened.

    A URL must parse (SQLAlchemy), name a known dialect with its driver installed, and
    connect (a server that does not answer within 5 s is unreachable).  A journal path
    must not lie below a file, its folder must be writable, and an existing file must be a journal.
    """
    text = os.fspath(storage)
    if "://" not in text:
        path = Path(text).expanduser().absolute()
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if probe.is_file() and probe != path:
            raise RegularkitError(f"storage {text!r} is below {str(probe)!r}, which is a file")
        if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
            raise RegularkitError(f"storage {text!r} is not writable (no write permission on {str(probe)!r})")
        if path.is_file():
            check_journal_file(path, text)
        return
    shown = describe_storage(text)
    try:
        url = sqlalchemy.make_url(text)
        url.get_dialect()
    except NoSuchModuleError:
        raise RegularkitError(f"storage {shown!r}: unknown database scheme {text.split('://')[0]!r} "
                              "(use postgresql://, mysql://, sqlite:/// or a journal file path)") from None
    except (ArgumentError, ValueError) as exc:
        raise RegularkitError(f"storage {shown!r} is not a database URL: {exc}") from None
    except ImportError as exc:
        raise _missing_driver(shown, url, exc) from None
    args = {"connect_timeout": 5} if url.get_backend_name() in ("postgresql", "mysql") else {}
    try:
        engine = sqlalchemy.create_engine(url, connect_args=args)  # imports the driver
        with engine.connect():
            pass
        engine.dispose()
    except ImportError as exc:
        raise _missing_driver(shown, url, exc) from None
    except SQLAlchemyError as exc:
        first = str(exc.orig if getattr(exc, "orig", None) is not None else exc).strip().splitlines()[0]
        raise RegularkitError(f"storage {shown!r} is unreachable: {first}") from None


#: How to install each database driver SQLAlchemy may ask for (its dialect's ``driver`` name).
_DRIVERS = {"psycopg": "pip install 'psycopg[binary]', or name psycopg2 in the URL: postgresql+psycopg2://",
            "psycopg2": "pip install psycopg2-binary", "mysqldb": "pip install mysqlclient, or name pymysql in the "
            "URL: mysql+pymysql://", "pymysql": "pip install pymysql", "pysqlite": "Python was built without sqlite3"}


def _missing_driver(shown: str, url, exc: ImportError) -> RegularkitError:
    """The one line for a database URL whose driver cannot be imported."""
    try:
        driver = url.get_dialect().driver
    except Exception:  # noqa: BLE001 - the dialect itself needs the missing module
        driver = exc.name or str(exc)
    how = _DRIVERS.get(driver, "install it, or name another driver in the URL: dialect+driver://")
    return RegularkitError(f"storage {shown!r} needs the database driver {driver!r}, which is not installed ({how})")


def describe_storage(storage: Any) -> str | None:
    """A printable name for a storage, with any password in a URL masked."""
    if storage is None or isinstance(storage, optuna.storages.InMemoryStorage):
        return None
    if isinstance(storage, optuna.storages.BaseStorage):
        return type(storage).__name__
    text = os.fspath(storage)
    if "://" in text and "@" in text.split("://", 1)[1]:
        scheme, rest = text.split("://", 1)
        auth, host = rest.rsplit("@", 1)
        return f"{scheme}://{auth.split(':', 1)[0]}:***@{host}" if ":" in auth else text
    return text if "://" in text else str(journal_path(text))


# --- who runs a trial, and is it still alive --------------------------------------------
def _start_time(pid: int) -> str | None:
    """The process start time in clock ticks since boot (Linux /proc); None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def worker_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _start_time(pid)}


def is_alive(identity: dict[str, Any]) -> bool:
    """Whether the process of ``identity`` (a worker on this host) still runs."""
    pid = int(identity["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        pass
    start = identity.get("start")
    return start is None or _start_time(pid) in (None, start)


def mark_worker(trial: optuna.Trial) -> None:
    """Record this process as the worker of ``trial`` (first thing after popping it)."""
    trial.set_user_attr(WORKER_ATTR, worker_identity())


def _lost(trial: FrozenTrial, host: str, now: datetime.datetime, orphan_grace: float | None) -> bool:
    who = trial.user_attrs.get(WORKER_ATTR)
    if isinstance(who, dict):
        return who.get("host") == host and not is_alive(who)
    if orphan_grace is None or trial.datetime_start is None:
        return False
    return (now - trial.datetime_start).total_seconds() > orphan_grace


def recover_dead_trials(study: optuna.Study, *, max_retry: int = MAX_RETRY,
                        orphan_grace: float | None = ORPHAN_GRACE) -> list[int]:
    """Fail the RUNNING trials of dead workers on this host (and orphans) and re-enqueue them; their numbers."""
    host = socket.gethostname()
    now = datetime.datetime.now()  # Optuna stamps datetime_start with naive local time
    return [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if _lost(t, host, now, orphan_grace) and requeue(study, t.number, max_retry=max_retry)]


def requeue(study: optuna.Study, number: int, *, max_retry: int | None = MAX_RETRY) -> bool:
    """Fail RUNNING trial ``number`` and enqueue a copy (params and user attributes, minus the worker).

    Returns False when the trial finished meanwhile (by its worker or another recoverer).
    """
    try:
        failed = study.tell(number, state=TrialState.FAIL)
    except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
        return False
    _retry_callback(max_retry)(study, failed)
    return True


def fail_stale_trials(study: optuna.Study) -> None:
    """Let Optuna fail and retry heartbeat-stale trials now (a no-op without a heartbeat)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def lost_trial_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of the attempts that were retried (their retry is what counts)."""
    # Optuna's retry callback keeps the chain in system_attrs["retry_history"].
    return {n for t in trials for n in t.system_attrs.get("retry_history", ())}


def done_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Finished trials, lost attempts left out, in number order."""
    trials = study.get_trials(deepcopy=False)
    lost = lost_trial_numbers(trials)
    return [t for t in trials if t.state.is_finished() and t.number not in lost]
