"""The run ledger: claims (the worker recorded, a lost race closed, another study's run given back), completed
records (asked keys only, the first of a key), recovery (dead workers' runs and orphaned pops redone, none counted
twice)."""
import subprocess
import sys
import time

import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

from regularkit.errors import RegularkitError
from regularkit.search.storage import WORKER_ATTR, worker_identity
from regularkit.study.run import ledger


def rec(key, n):
    """A finished run's record: what the summary reads (recipe, seed, final, history), plus a marker."""
    return {"key": key, "n": n, "recipe": "r", "seed": 0, "final": {"val_error": 0.5}, "history": []}


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


def test_claim_records_its_worker_and_returns_none_when_nothing_of_ours_waits(tmp_path):
    study = ledger.open_study(tmp_path, "s")
    assert ledger.enqueue_missing(study, {"a": {"recipe": "r", "seed": 0}, "b": {"recipe": "r", "seed": 1}}) == 2
    trial = ledger.claim(study, {"a", "b"})
    assert trial.user_attrs["key"] == "a" and trial.user_attrs["recipe"] == "r"
    assert trial.user_attrs[WORKER_ATTR] == worker_identity()
    assert ledger.claim(study, {"a"}) is None  # "a" is running and "b" is not ours: nothing to claim
    assert states(study) == [("a", TrialState.RUNNING), ("b", TrialState.WAITING)]  # "b" left where it was
    assert ledger.enqueue_missing(study, {"a": {}, "b": {}, "c": {}}) == 1  # running and waiting keys count as taken


def test_completed_reads_only_the_asked_keys_and_the_first_record_of_a_key(tmp_path):
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a": {}, "b": {}, "other": {}})
    for key in ("a", "b", "other"):
        trial = ledger.claim(study, {key})
        trial.set_user_attr("record", rec(key, 1))
        study.tell(trial, 0.5)
    study.enqueue_trial({}, user_attrs={"key": "a"})  # "a" done a second time (a live run reclaimed by mistake)
    assert ledger.claim(study, {"a"}) is None  # claim closes a copy of a finished run unused...
    study.enqueue_trial({}, user_attrs={"key": "a"})
    again = study.ask()  # ...but should one complete anyway, the first record still counts
    again.set_user_attr("record", rec("a", 2))
    study.tell(again, 0.1)
    study.enqueue_trial({}, user_attrs={"key": "b2"})  # a COMPLETE trial without a record is not a finished run
    study.tell(ledger.claim(study, {"b2"}), 0.3)
    done = ledger.completed(study, {"a", "b", "b2", "never-run"})
    assert done == {"a": rec("a", 1), "b": rec("b", 1)}  # no "other": it was not asked for
    assert ledger.completed(study, set()) == {}


def test_a_claim_that_loses_the_race_leaves_no_blank_running_trial(tmp_path):
    """Another worker pops the last waiting run between our look and our ``ask``: Optuna's ``ask`` then makes
    up a blank trial, which claim must close (FAIL) instead of leaving it RUNNING forever."""
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a": {}})
    other = ledger.open_study(tmp_path, "s")  # the other worker, on the same journal
    real_ask = study.ask

    def ask_after_the_other_worker():
        other.ask()
        return real_ask()

    study.ask = ask_after_the_other_worker
    assert ledger.claim(study, {"a"}) is None
    assert states(study) == [("a", TrialState.RUNNING), (None, TrialState.FAIL)]
    assert ledger.reclaim_dead(study) == 0  # nothing to recover: the blank trial is closed, the run is alive


def test_a_run_of_another_study_popped_by_claim_is_given_back(tmp_path):
    """Two studies share one ledger: popping the other's run puts it back, waiting, with its key and attrs."""
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"theirs": {"recipe": "l2", "seed": 3}})
    ledger.enqueue_missing(study, {"ours": {"recipe": "baseline", "seed": 0}})
    trial = ledger.claim(study, {"ours"})  # Optuna pops the oldest waiting trial first: theirs
    assert trial.user_attrs["key"] == "ours"
    assert states(study) == [("theirs", TrialState.FAIL), ("ours", TrialState.RUNNING),
                             ("theirs", TrialState.WAITING)]
    back = study.get_trials(states=(TrialState.WAITING,))[0]
    assert back.user_attrs == {"key": "theirs", "recipe": "l2", "seed": 3}  # untouched: no worker recorded
    theirs = ledger.claim(study, {"theirs"})
    assert theirs.user_attrs["key"] == "theirs" and theirs.user_attrs[WORKER_ATTR] == worker_identity()


def test_open_study_names_a_storage_it_cannot_open(tmp_path, monkeypatch):
    optuna.logging.set_verbosity(optuna.logging.INFO)
    study = ledger.open_study(tmp_path, "s")
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING  # no INFO line per run from Optuna
    assert (tmp_path / "ledger.journal").exists() and study.study_name == "s"
    assert study.directions == [StudyDirection.MINIMIZE]  # a run's validation error: lower is better
    assert len(ledger.open_study(tmp_path, "s").get_trials()) == 0  # opened again, not refused as a duplicate

    def refuse(storage):
        raise ValueError("no such server")

    monkeypatch.setattr(ledger, "open_storage", refuse)
    with pytest.raises(RegularkitError, match=r"^cannot open storage 'sqlite:///x.db': no such server$"):
        ledger.open_study(tmp_path, "s", "sqlite:///x.db")


def test_a_pop_left_without_a_worker_for_a_second_is_an_orphan(tmp_path):
    """ORPHAN_GRACE_S = 1 s: popping a ledger trial takes milliseconds, so one that has had no worker for a second
    belongs to a worker that died in between; younger ones are left to the worker about to record itself."""
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a": {}})
    study.ask()
    time.sleep(0.2)
    assert ledger.reclaim_dead(study) == 0
    time.sleep(1.0)
    assert ledger.reclaim_dead(study) == 1
    assert states(study) == [("a", TrialState.FAIL), ("a", TrialState.WAITING)]


def test_a_run_enqueued_twice_by_two_starting_processes_is_trained_once(tmp_path):
    study = ledger.open_study(tmp_path, "s")
    for _ in range(2):  # both processes looked before either enqueued: the race enqueue_missing cannot close
        study.enqueue_trial({}, user_attrs={"key": "a", "recipe": "r", "seed": 0})
    study.enqueue_trial({}, user_attrs={"key": "b", "recipe": "r", "seed": 1})
    first = ledger.claim(study, {"a", "b"})
    assert first.number == 0 and first.user_attrs["key"] == "a"
    second = ledger.claim(study, {"a", "b"})  # pops the copy of "a", closes it, takes "b"
    assert second.user_attrs["key"] == "b"
    assert ledger.claim(study, {"a", "b"}) is None
    copy = study.get_trials()[1]
    assert copy.state == TrialState.FAIL and copy.user_attrs["duplicate_of"] == 0
    # the copy that lost is closed even when the run it copies waits behind it
    study2 = ledger.open_study(tmp_path, "t")
    study2.enqueue_trial({}, user_attrs={"key": "a"})
    study2.enqueue_trial({}, user_attrs={"key": "a"})
    popped = study2.ask()  # another worker holds the first copy
    assert popped.number == 0
    assert ledger.claim(study2, {"a"}) is None and study2.get_trials()[1].state == TrialState.FAIL


def test_a_run_finished_without_a_usable_record_is_done_again_with_one_line(tmp_path, capsys):
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a": {}, "b": {}})
    for key, record in (("a", {k: v for k, v in rec("a", 1).items() if k != "final"}), ("b", rec("b", 1))):
        trial = ledger.claim(study, {key})
        trial.set_user_attr("record", record)
        study.tell(trial, 0.5)
    assert ledger.completed(study, {"a", "b"}) == {"b": rec("b", 1)}  # not counted as finished
    assert ledger.enqueue_missing(study, {"a": {}, "b": {}}) == 1  # "a" is queued again, "b" is not
    err = capsys.readouterr().err
    assert err == "regularkit: warning: run 'a' (ledger trial 0) finished without a usable record (no 'final'); " \
                  "it is done again\n"
    redo = ledger.claim(study, {"a", "b"})  # the new copy is the run, not a duplicate of the broken one
    assert redo is not None and redo.number == 2 and "duplicate_of" not in redo.user_attrs
    redo.set_user_attr("record", rec("a", 2))
    study.tell(redo, 0.4)
    assert ledger.completed(study, {"a", "b"}) == {"a": rec("a", 2), "b": rec("b", 1)}
    assert ledger.enqueue_missing(study, {"a": {}, "b": {}}) == 0 and capsys.readouterr().err == ""


def test_a_signal_right_after_the_pop_closes_the_run_instead_of_leaving_it_running(tmp_path, monkeypatch):
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a": {}})

    def terminated(trial):
        raise KeyboardInterrupt  # SIGTERM arrives while the worker records itself

    monkeypatch.setattr(ledger, "mark_worker", terminated)
    with pytest.raises(KeyboardInterrupt):
        ledger.claim(study, {"a"})
    assert states(study) == [("a", TrialState.FAIL)]
    assert ledger.enqueue_missing(study, {"a": {}}) == 1  # the next start queues it again


def test_claim_next_takes_a_recipes_other_seeds_only_while_they_are_next_in_the_queue(tmp_path):
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {k: {} for k in ("a0", "a1", "b0", "a2")})
    ours = {"a0", "a1", "b0", "a2"}
    first = ledger.claim(study, ours)
    assert first.user_attrs["key"] == "a0"
    more = ledger.claim_next(study, ours, {"a1", "a2"})
    assert more.user_attrs["key"] == "a1" and more.user_attrs[WORKER_ATTR] == worker_identity()
    assert ledger.claim_next(study, ours, {"a2"}) is None  # b0 is next: its turn is not skipped
    assert states(study)[2:] == [("b0", TrialState.WAITING), ("a2", TrialState.WAITING)]
    assert ledger.claim_next(study, ours, set()) is None


def test_fail_closes_claimed_runs_and_leaves_finished_ones(tmp_path):
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a": {}, "b": {}})
    a, b = ledger.claim(study, {"a", "b"}), ledger.claim(study, {"a", "b"})
    study.tell(a, 0.5)
    ledger.fail(study, [a, b])
    assert states(study) == [("a", TrialState.COMPLETE), ("b", TrialState.FAIL)]
