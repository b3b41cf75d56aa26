"""The one worker supervisor: each exit code gets its policy, recovery runs at once, nothing is left running."""
import os
import signal
import sys
import time

import pytest

from regularkit._util.processes import WorkerExit, WorkerFailed, spawn_processes, supervise_processes
from regularkit.errors import RegularkitError


@pytest.mark.parametrize("code, killed, interrupted, failed, text", [
    (0, False, False, False, "w (pid 7) exited with code 0"),
    (-9, True, False, False, "w (pid 7) was killed by signal 9 (SIGKILL)"),
    (-15, True, False, False, "w (pid 7) was killed by signal 15 (SIGTERM)"),
    (130, False, True, False, "w (pid 7) was stopped by Ctrl-C (exit code 130)"),
    (143, False, True, False, "w (pid 7) was stopped by SIGTERM (exit code 143)"),
    (1, False, False, True, "w (pid 7) exited with code 1"),
    (2, False, False, True, "w (pid 7) exited with code 2"),
])
def test_the_exit_code_policy(code, killed, interrupted, failed, text):
    ended = WorkerExit("w", 7, code)
    assert (ended.killed, ended.interrupted, ended.failed) == (killed, interrupted, failed)
    assert ended.lost == (killed or interrupted) and ended.describe() == text
    assert issubclass(WorkerFailed, RegularkitError)  # one line and exit 2 in the CLI


def test_a_killed_worker_is_recovered_at_once_while_the_others_still_run():
    procs = spawn_processes(time.sleep, [(60,), (0.5,)], ["victim", "survivor"])
    events = []

    def recover():
        events.append(("recover", [p.name for p in procs if p.is_alive()]))
        return [41]

    os.kill(procs[0].pid, signal.SIGKILL)
    exits = supervise_processes(procs, recover=recover, on_exit=lambda e: events.append(("exit", e.name, e.code)),
                                what="test worker")
    # recovery ran when the victim died, before the survivor ended, and only for the lost worker
    assert events[0] == ("recover", ["survivor"])
    assert events[1:] == [("exit", "victim", -signal.SIGKILL), ("exit", "survivor", 0)]
    assert exits == [WorkerExit("victim", procs[0].pid, -9, (41,)), WorkerExit("survivor", procs[1].pid, 0, ())]
    assert not any(p.is_alive() for p in procs)


def test_a_worker_that_fails_stops_the_others_and_raises_one_line_naming_it():
    procs = spawn_processes(sys.exit, [(3,)], ["bad"]) + spawn_processes(time.sleep, [(60,)], ["slow"])
    recovered = []
    start = time.monotonic()
    with pytest.raises(WorkerFailed, match=rf"^test worker bad \(pid {procs[0].pid}\) exited with code 3; "
                                           r"see its message above$"):
        supervise_processes(procs, recover=lambda: recovered.append(1) or [], what="test worker")
    assert time.monotonic() - start < 30  # the sleeper was stopped, not waited for
    assert procs[1].exitcode == -signal.SIGTERM and not procs[1].is_alive()
    assert len(recovered) == 2  # after the failed worker, and after stopping the other one


def test_an_error_in_the_parent_stops_every_worker_and_recovers_their_work():
    procs = spawn_processes(time.sleep, [(60,), (60,)], ["a", "b"])
    recovered = []

    def poll():
        raise KeyboardInterrupt  # Ctrl-C while the parent waits

    with pytest.raises(KeyboardInterrupt):
        supervise_processes(procs, recover=lambda: recovered.append(1) or [], poll=poll, poll_s=0.01)
    assert [p.exitcode for p in procs] == [-signal.SIGTERM, -signal.SIGTERM] and recovered == [1]


def test_poll_runs_while_workers_run_and_a_clean_exit_is_not_recovered():
    procs = spawn_processes(time.sleep, [(0.3,)], ["w"])
    polls, recovered = [], []
    exits = supervise_processes(procs, recover=lambda: recovered.append(1) or [], poll=lambda: polls.append(1),
                                poll_s=0.02)
    assert exits == [WorkerExit("w", procs[0].pid, 0)] and recovered == [] and len(polls) >= 2


def test_spawn_processes_needs_a_name_per_worker():
    with pytest.raises(ValueError, match="one name per worker, got 2 args and 1 names"):
        spawn_processes(time.sleep, [(1,), (1,)], ["only"])
