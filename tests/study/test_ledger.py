"""The run ledger's recovery: dead workers' runs and orphaned pops are redone, none counted twice."""
import subprocess
import sys
import time

from optuna.trial import TrialState

from regularkit.search.storage import WORKER_ATTR, worker_identity
from regularkit.study import ledger


def states(study):
    return [(t.user_attrs.get("key"), t.state) for t in study.get_trials()]


def test_trial_popped_by_a_worker_killed_before_recording_itself_is_redone(tmp_path, monkeypatch):
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a/seed0/x": {"recipe": "a", "seed": 0}})
    study.ask()  # popped, then the worker "dies" before set_user_attr("worker", ...)
    assert ledger.reclaim_dead(study) == 0  # too young: it could be a live worker about to record itself
    monkeypatch.setattr(ledger, "ORPHAN_GRACE_S", 0.0)
    time.sleep(0.01)
    assert ledger.reclaim_dead(study) == 1
    # the recovery itself put the run back in the queue, key and all: nothing is missing
    assert ledger.enqueue_missing(study, {"a/seed0/x": {"recipe": "a", "seed": 0}}) == 0
    trial = ledger.claim(study, {"a/seed0/x"})
    assert trial is not None and trial.user_attrs["key"] == "a/seed0/x"


def test_dead_worker_on_this_host_is_reclaimed_and_live_one_is_not(tmp_path):
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a": {}, "b": {}})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    t1 = ledger.claim(study, {"a", "b"})
    t1.set_user_attr(WORKER_ATTR, {**worker_identity(), "pid": int(dead.stdout)})
    t2 = ledger.claim(study, {"a", "b"})  # this process: alive
    assert t2.user_attrs[WORKER_ATTR] == worker_identity()  # claim records its worker
    assert ledger.reclaim_dead(study) == 1
    assert states(study) == [(t1.user_attrs["key"], TrialState.FAIL), (t2.user_attrs["key"], TrialState.RUNNING),
                             (t1.user_attrs["key"], TrialState.WAITING)]  # the dead worker's run, queued again
