"""Many workers, one study: every trial runs exactly once, a killed worker's trial is retried once.

Executions are counted through files the objective writes (search_objectives.py),
not through the storage under test.
"""
import logging
import os
import socket
import subprocess
import sys
import time

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optuna.trial import TrialState
from search_objectives import CountingObjective, KillOnceObjective, read_runs

from regularkit.search import LogUniform, SearchSpace, Uniform, open_storage, recover_dead_trials, run_search
from regularkit.search.storage import WORKER_ATTR, is_alive, worker_identity
from regularkit._util.signals import Terminated
from regularkit.search.workers import quiet_optuna, split

SPACE = SearchSpace(lr=LogUniform(1e-6, 1e-1), dropout=Uniform(0.0, 0.5))


@given(st.integers(0, 10_000), st.integers(1, 64))
def test_split_adds_up_exactly(n, parts):
    shares = split(n, parts)
    assert sum(shares) == n and len(shares) == parts and max(shares) - min(shares) <= 1


def _storage(kind, tmp_path, request):
    return tmp_path / "journal" if kind == "journal" else request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("kind", ["journal", "postgres"])
def test_two_workers_run_each_trial_exactly_once(kind, tmp_path, request):
    storage = _storage(kind, tmp_path, request)
    result = run_search(CountingObjective(tmp_path), SPACE, n_trials=10, workers=2, storage=storage,
                        study_name=f"once-{kind}", log=None)
    starts, dones = read_runs(tmp_path, "start"), read_runs(tmp_path, "done")
    assert len(starts) == len(dones) == 10                          # ten executions, not more
    assert len({tuple(sorted(r["params"].items())) for r in dones}) == 10  # ten different configurations
    assert len({r["pid"] for r in dones}) == 2                      # by two worker processes
    assert len(result.trials) == 10 and {t.state for t in result.trials} == {"COMPLETE"}
    assert result.lost == [] and os.getpid() not in {r["pid"] for r in dones}
    stored = sorted(tuple(sorted(t.params.items())) for t in result.trials)
    assert stored == sorted(tuple(sorted(r["params"].items())) for r in dones)


@pytest.mark.parametrize("kind", ["journal", "postgres"])
def test_killed_worker_has_its_trial_retried_and_counted_once(kind, tmp_path, request):
    storage = _storage(kind, tmp_path, request)
    lines = []
    result = run_search(KillOnceObjective(tmp_path, kill_at=3), SPACE, n_trials=8, workers=2, storage=storage,
                        study_name=f"kill-{kind}", log=lines.append)
    assert (tmp_path / "killed.flag").exists()
    starts, dones = read_runs(tmp_path, "start"), read_runs(tmp_path, "done")
    assert len(starts) == 9 and len(dones) == 8                     # one attempt died mid-trial
    done_params = [tuple(sorted(r["params"].items())) for r in dones]
    unfinished = [p for p in (tuple(sorted(r["params"].items())) for r in starts) if p not in done_params]
    assert unfinished == []                                         # the killed configuration ran again
    assert len(set(done_params)) == 8
    assert len(result.trials) == 8 and {t.state for t in result.trials} == {"COMPLETE"}
    assert len(result.lost) == 1
    lost = result.study.get_trials(deepcopy=False)[result.lost[0]]
    assert lost.state == TrialState.FAIL
    retried = [t for t in result.trials if t.params == SPACE.decode(lost.params)]
    assert len(retried) == 1                                        # counted once in the results
    assert any(f"re-enqueued trial(s) [{result.lost[0]}]" in line for line in lines)


def test_failing_worker_stops_the_search_with_its_exit_code(tmp_path):
    from regularkit._util.processes import WorkerFailed
    with pytest.raises(WorkerFailed, match=r"^search worker regularkit-search-0\.\d \(pid \d+\) exited with code 1; "
                                           r"see its message above$"):
        run_search(_raise, SPACE, n_trials=4, workers=2, storage=tmp_path / "j", log=None)
    stuck = optuna.load_study(study_name="search", storage=open_storage(tmp_path / "j")).get_trials(
        states=(TrialState.RUNNING,))
    assert stuck == []                                              # nothing left RUNNING behind


def _raise(params, report):
    raise ValueError("bad configuration")


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_recover_dead_trials_retries_only_dead_local_workers():
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    host = socket.gethostname()
    owners = {"dead": {"host": host, "pid": _dead_pid(), "start": None},
              "alive": worker_identity(),
              "elsewhere": {"host": "another-machine", "pid": 1, "start": None},
              "recycled": {**worker_identity(), "start": "0"}}  # our pid, another process's start time
    numbers = {}
    for name, owner in owners.items():
        trial = study.ask()
        SPACE.suggest(trial)
        trial.set_user_attr(WORKER_ATTR, owner)
        numbers[name] = trial.number
    assert sorted(recover_dead_trials(study)) == sorted([numbers["dead"], numbers["recycled"]])
    trials = study.get_trials(deepcopy=False)
    states = {name: trials[n].state for name, n in numbers.items()}
    assert states == {"dead": TrialState.FAIL, "alive": TrialState.RUNNING, "elsewhere": TrialState.RUNNING,
                      "recycled": TrialState.FAIL}
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert [t.params for t in waiting] == [trials[numbers["dead"]].params, trials[numbers["recycled"]].params]
    assert all(WORKER_ATTR not in t.user_attrs for t in waiting)   # the retry carries no dead owner
    assert recover_dead_trials(study) == []                        # idempotent


def test_is_alive_checks_pid_and_start_time():
    me = worker_identity()
    assert is_alive(me) and not is_alive({**me, "pid": _dead_pid()})
    if me["start"] is not None:
        assert not is_alive({**me, "start": "0"})


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_rdb_heartbeat_retries_a_stale_trial_of_another_machine(tmp_path):
    # Optuna's own mechanism for trials this host cannot check: heartbeat + retry callback.
    storage = open_storage(f"sqlite:///{tmp_path / 'search.db'}", heartbeat_interval=1, grace_period=1)
    run_search(CountingObjective(tmp_path, sleep=0), SPACE, n_trials=2, storage=storage, log=None)
    study = optuna.load_study(study_name="search", storage=storage)
    stale = study.ask()
    SPACE.suggest(stale)
    stale.set_user_attr(WORKER_ATTR, {"host": "another-machine", "pid": 1, "start": None})
    storage.record_heartbeat(stale._trial_id)
    time.sleep(2.2)                                                # longer than the grace period
    result = run_search(CountingObjective(tmp_path, sleep=0), SPACE, n_trials=4, storage=storage, log=None)
    assert result.lost == [stale.number] and len(result.trials) == 4
    assert [t.params for t in result.trials].count(SPACE.decode(stale.params)) == 1
    assert len(read_runs(tmp_path, "done")) == 4


def test_storage_errors_are_named():
    from regularkit.errors import RegularkitError

    with pytest.raises(RegularkitError, match=r"storage must be a database URL, a journal path or an Optuna "
                                              r"storage, got 3"):
        open_storage(3)
    try:
        import psycopg2  # noqa: F401
    except ImportError:  # the password is masked in the message
        with pytest.raises(RegularkitError, match=r"storage 'postgresql://u:\*\*\*@localhost:1/db' needs its "
                                                  r"database driver \(postgresql: pip install psycopg2-binary\)"):
            open_storage("postgresql://u:secret@localhost:1/db")


def test_an_interrupted_trial_is_not_logged_with_a_traceback_but_other_failures_are():
    """Ctrl-C / SIGTERM inside a trial: Optuna would log the interrupt's traceback; the CLI's one line says it."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    root, child = logging.getLogger("optuna"), logging.getLogger("optuna.study._optimize")
    keep = Keep()
    root.addHandler(keep)
    try:
        with quiet_optuna():
            for error in (Terminated(), KeyboardInterrupt()):
                child.warning("Trial 5 failed with parameters: {} because of: %r", error,
                              exc_info=(type(error), error, None))
                child.warning("Trial 5 failed with value None.")
            boom = ValueError("boom")
            child.warning("Trial 6 failed with parameters: {} because of: %r", boom, exc_info=(ValueError, boom, None))
        child.warning("Trial 7 failed with parameters: {} because of: %r", KeyboardInterrupt(),
                      exc_info=(KeyboardInterrupt, KeyboardInterrupt(), None))   # outside: filter removed
    finally:
        root.removeHandler(keep)
    messages = [r.getMessage() for r in seen]
    assert len(messages) == 2 and "ValueError('boom')" in messages[0] and seen[0].exc_info[0] is ValueError
    assert messages[1].startswith("Trial 7") and all(keep not in h.filters for h in root.handlers)
