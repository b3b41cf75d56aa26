"""``search.journal``: which file a storage path names, the flock that dies with its holder, and the repair of
a journal whose last record was torn (issue 23), on a real Optuna journal."""
import json
import subprocess
import sys
import time

import optuna
import pytest
from optuna.storages import JournalStorage

from regularkit.errors import RegularkitError
from regularkit.search.journal import FlockLock, check_journal_file, journal_backend, journal_path, repair_journal

optuna.logging.set_verbosity(optuna.logging.WARNING)


def journal_with_trials(path, n=3):
    storage = JournalStorage(journal_backend(path))
    study = optuna.create_study(study_name="j", storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n)
    return path.read_bytes()


def trials_in(path):
    return len(optuna.load_study(study_name="j", storage=JournalStorage(journal_backend(path))).trials)


def test_journal_path_is_the_file_or_a_journal_log_in_the_folder(tmp_path):
    assert journal_path(tmp_path / "runs" / "search.log") == tmp_path / "runs" / "search.log"
    assert (tmp_path / "runs").is_dir()  # its folder is made
    assert journal_path(tmp_path / "folder") == tmp_path / "folder" / "journal.log"
    (tmp_path / "plain").write_text("")
    assert journal_path(tmp_path / "plain") == tmp_path / "plain"  # an existing file, even without a suffix
    (tmp_path / "dir.d").mkdir()
    assert journal_path(tmp_path / "dir.d") == tmp_path / "dir.d" / "journal.log"  # a folder, even with a suffix


def test_a_file_that_is_no_journal_is_refused_and_never_repaired(tmp_path):
    stranger = tmp_path / "notes.txt"
    stranger.write_text("my notes\n")
    with pytest.raises(RegularkitError, match=r"storage 'x' is an existing file that is not an Optuna journal"):
        check_journal_file(stranger, "x")
    with pytest.raises(RegularkitError, match="not an Optuna journal"):
        repair_journal(stranger)
    assert stranger.read_text() == "my notes\n" and list(tmp_path.iterdir()) == [stranger]
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    check_journal_file(empty, "e")  # empty: a journal not yet written
    with pytest.raises(RegularkitError, match=r"storage 'gone' cannot be read"):
        check_journal_file(tmp_path / "missing.log", "gone")


def test_a_torn_last_record_is_cut_with_a_copy_kept_and_the_study_goes_on(tmp_path, capsys):
    path = tmp_path / "search.log"
    good = journal_with_trials(path)
    torn = good + b'{"op_code": 5, "worker_id": "w", "trial_id": 3, "param_na'
    path.write_bytes(torn)
    assert repair_journal(path) == len(good)
    assert path.read_bytes() == good
    (backup,) = tmp_path.glob("search.log.torn-*")
    assert backup.read_bytes() == torn
    assert f"cut a torn record at byte {len(good)}" in capsys.readouterr().err
    assert trials_in(path) == 3
    study = optuna.load_study(study_name="j", storage=JournalStorage(journal_backend(path)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # appending works again
    assert trials_in(path) == 4
    assert repair_journal(path) is None  # a whole journal is left alone


def test_a_last_record_missing_only_its_newline_gets_it_back(tmp_path, capsys):
    path = tmp_path / "search.log"
    good = journal_with_trials(path, n=2)
    path.write_bytes(good.rstrip(b"\n"))
    assert repair_journal(path) == len(good) - 1
    assert path.read_bytes() == good and all(json.loads(line) for line in good.splitlines())
    assert "added the missing line end" in capsys.readouterr().err


def test_the_flock_dies_with_a_killed_holder(tmp_path):
    """A holder killed with SIGKILL releases the lock at once (Optuna's lock file would wait 30 s)."""
    target = str(tmp_path / "j.log")
    holder = subprocess.Popen([sys.executable, "-c", (  # flock on <journal>.flock, as FlockLock takes it
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1] + '.flock', os.O_CREAT | os.O_RDWR); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"), target],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        blocked = subprocess.run([sys.executable, "-c", (
            "import fcntl, os, sys; fd = os.open(sys.argv[1] + '.flock', os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)"), target], capture_output=True, text=True)
        assert blocked.returncode != 0 and "BlockingIOError" in blocked.stderr  # held: the same lock FlockLock takes
        holder.kill()
        holder.wait(10)
        start = time.monotonic()
        lock = FlockLock(target)
        assert lock.acquire() is True
        assert time.monotonic() - start < 5
        lock.release()
        lock.release()  # a second release is harmless
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        holder.stdout.close()
