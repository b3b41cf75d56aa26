"""The journal's lock (exclusive between processes, released at once when its holder is killed) and its repair
(a torn last record cut back, with a backup and one warning line)."""
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from regularkit.errors import RegularkitError
from regularkit.search.journal import FlockLock, repair_journal
from regularkit.search.storage import open_storage
from regularkit.study.run import ledger

HOLD = """
import sys, time
from regularkit.search.journal import FlockLock
lock = FlockLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def hold(journal, seconds):
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(journal), str(seconds)], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_the_lock_excludes_another_process_until_it_releases(tmp_path):
    journal = tmp_path / "j.journal"
    child = hold(journal, 1.0)
    t0 = time.perf_counter()
    lock = FlockLock(str(journal))
    assert lock.acquire()
    waited = time.perf_counter() - t0
    lock.release()
    child.wait()
    assert 0.5 < waited < 5.0  # it waited for the holder's release, not longer


def test_a_worker_killed_under_the_lock_does_not_stall_the_next_start(tmp_path):
    """Issue 14: with Optuna's lock file the next start waited ~30 s; the kernel releases a flock at death."""
    child = hold(tmp_path / "ledger.journal", 60)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    t0 = time.perf_counter()
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a": {}})
    ledger.reclaim_dead(study)
    assert time.perf_counter() - t0 < 2.0


# --- a torn journal (issue 23, item 5) -----------------------------------------------------------------------


def finished_journal(path, n=3):
    """A journal of ``n`` COMPLETE trials written by Optuna itself; the byte offset where each line starts."""
    study = optuna.create_study(study_name="s", storage=open_storage(path))
    for i in range(n):
        trial = study.ask()
        trial.set_user_attr("record", {"i": i, "pad": "x" * 50})
        study.tell(trial, float(i))
    data = path.read_bytes()
    return [i + 1 for i, b in enumerate(data) if b == ord("\n")][:-1]


def test_a_torn_last_line_is_cut_with_a_backup_and_one_warning(tmp_path, capsys):
    journal = tmp_path / "ledger.journal"
    starts = finished_journal(journal)
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-40])  # truncate -s -40: the last record (trial 2's COMPLETE) loses its end
    assert repair_journal(journal) == starts[-1]
    assert journal.read_bytes() == whole[:starts[-1]]  # cut back to the last complete record
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("regularkit: warning: journal ")
    assert f"{str(journal)!r}" in err and f"at byte {starts[-1]}" in err
    backup = next(tmp_path.glob("ledger.journal.torn-*"))
    assert backup.read_bytes() == whole[:-40] and f"{str(backup)!r}" in err  # nothing is lost
    study = optuna.load_study(study_name="s", storage=open_storage(journal))
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING]
    study.tell(study.ask(), 9.0)  # appending after the repair: the journal stays readable
    again = optuna.load_study(study_name="s", storage=open_storage(journal))
    assert len(again.get_trials()) == 4 and capsys.readouterr().err == ""  # a sound journal: no warning


def test_a_last_record_missing_only_its_newline_is_kept_and_a_broken_middle_is_cut(tmp_path, capsys):
    journal = tmp_path / "j.journal"
    starts = finished_journal(journal)
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-1])  # the record is whole; only its line end is missing
    assert repair_journal(journal) == len(whole) - 1 and journal.read_bytes() == whole
    assert "added the missing line end" in capsys.readouterr().err
    # the state the issue found: a torn line, then a later append joined onto it
    journal.write_bytes(whole[:starts[4] - 30] + whole[starts[4]:])
    assert repair_journal(journal) == starts[3]
    assert journal.read_bytes() == whole[:starts[3]]
    assert all(isinstance(json.loads(line), dict) for line in journal.read_bytes().splitlines())
    assert "line(s) dropped" in capsys.readouterr().err
    assert repair_journal(tmp_path / "none.journal") is None and not (tmp_path / "none.journal").exists()


def test_the_ledger_opens_a_torn_journal_and_names_the_storage_in_every_error(tmp_path, capsys, monkeypatch):
    study = ledger.open_study(tmp_path, "s")
    ledger.enqueue_missing(study, {"a": {}, "b": {}})
    for key in ("a", "b"):
        trial = ledger.claim(study, {key})
        trial.set_user_attr("record", {"recipe": key, "seed": 0, "final": {}, "history": []})
        study.tell(trial, 0.1)
    journal = tmp_path / "ledger.journal"
    journal.write_bytes(journal.read_bytes()[:-40])
    reopened = ledger.open_study(tmp_path, "s")
    assert set(ledger.completed(reopened, {"a", "b"})) == {"a"}  # the run whose COMPLETE was torn is redone
    assert "cut a torn record" in capsys.readouterr().err

    def broken(storage):
        raise ValueError("Expecting ':' delimiter: line 1 column 9 (char 8)")

    monkeypatch.setattr(ledger, "open_storage", broken)
    with pytest.raises(RegularkitError, match=rf"^cannot open storage '{journal}': Expecting ':' delimiter"):
        ledger.open_study(tmp_path, "s")  # the default storage is named by its path, never None
