"""The journal's lock: exclusive between processes, and released at once when its holder is killed."""
import os
import signal
import subprocess
import sys
import time

from regularkit.search.storage import FlockLock
from regularkit.study import ledger

HOLD = """
import sys, time
from regularkit.search.storage import FlockLock
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
