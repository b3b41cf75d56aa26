"""Ctrl-C and SIGTERM: one exception each, raised once, handlers restored; a study stopped by either
ends with one line and its exit code, keeps every finished run, and resumes."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from regularkit._util.signals import (
    SIGINT_EXIT,
    SIGTERM_EXIT,
    Terminated,
    interrupts_raise,
    stop_processes,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


@posix_only
@pytest.mark.parametrize("signum, exc", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_the_first_signal_raises_the_second_is_ignored_and_the_handlers_come_back(signum, exc):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    seen = []
    with pytest.raises(exc) as info:
        with interrupts_raise():
            try:
                os.kill(os.getpid(), signum)
                time.sleep(1)  # the handler runs here
            finally:
                os.kill(os.getpid(), signum)  # a second signal during the clean-up: ignored
                os.kill(os.getpid(), signal.SIGTERM if signum == signal.SIGINT else signal.SIGINT)
                time.sleep(0.05)
                seen.append("clean-up finished")
    assert seen == ["clean-up finished"]
    assert (type(info.value) is Terminated) == (signum == signal.SIGTERM)
    assert {s: signal.getsignal(s) for s in before} == before


def test_exit_codes_are_128_plus_the_signal():
    assert (SIGINT_EXIT, SIGTERM_EXIT) == (130, 143)


def test_outside_the_main_thread_nothing_is_changed():
    before = signal.getsignal(signal.SIGINT)
    inside = []

    def body():
        with interrupts_raise():
            inside.append(signal.getsignal(signal.SIGINT))

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert inside == [before]


class _Stuck:
    """A process that ignores SIGTERM (as a worker finishing its clean-up does)."""

    def __init__(self):
        self.terminated = self.killed = 0
        self.alive = True

    def is_alive(self):
        return self.alive

    def terminate(self):
        self.terminated += 1

    def join(self, timeout=None):
        pass

    def kill(self):
        self.killed += 1
        self.alive = False


def test_stop_processes_kills_what_ignores_the_request_after_the_grace_period():
    stuck = _Stuck()
    t0 = time.monotonic()
    stop_processes([stuck], grace_s=0.01)
    assert (stuck.terminated, stuck.killed) == (1, 1) and time.monotonic() - t0 < 1


# --------------------------------------------------------------------------- the CLI, as a user stops it
STUDY = ["study", "--recipes", "baseline,l2", "--seeds", "2", "--epochs", "80", "--train-size", "200"]
FIRST_RUN = re.compile(r"\[1/4\] (\S+) seed (\d): val err ([\d.]+)%, test err ([\d.]+)%")


def _start(out):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    return subprocess.Popen([sys.executable, "-m", "regularkit", *STUDY, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _first_run(proc) -> re.Match:
    for line in proc.stdout:  # blocks line by line; the study prints one line per finished run
        m = FIRST_RUN.search(line)
        if m:
            return m
    raise AssertionError(f"the study ended before a run finished: {proc.stderr.read()}")


def _stop(proc, *signals):
    for s in signals:
        proc.send_signal(s)
        time.sleep(0.01)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


@posix_only
@pytest.mark.parametrize("signals, code, word", [
    ((signal.SIGTERM,), 143, " (SIGTERM)"),
    ((signal.SIGINT, signal.SIGINT), 130, ""),   # Ctrl-C pressed twice
])
def test_a_stopped_study_says_one_line_keeps_its_finished_run_and_resumes(tmp_path, signals, code, word):
    out = tmp_path / "study"
    proc = _start(out)
    first = _first_run(proc)
    rc, err = _stop(proc, *signals)
    assert rc == code, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == [f"regularkit: interrupted{word}; finished runs are kept in {out}/ and a rerun resumes"], err
    assert not list(out.rglob(".*.tmp"))  # no half-written file left behind

    again = subprocess.run([sys.executable, "-m", "regularkit", *STUDY, "--out", str(out)], capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "160"}, timeout=600)
    assert again.returncode == 0, again.stderr
    finished = int(re.search(r"(\d+) runs? finished, (\d+) to do", again.stdout).group(1))
    assert finished >= 1  # the run finished before the signal is not trained again
    recipe, seed, test_err = first.group(1), int(first.group(2)), float(first.group(4))
    record = json.loads((out / "runs" / recipe / f"seed{seed}.json").read_text())
    assert record["final"]["test_error"] * 100 == pytest.approx(test_err, abs=0.006)  # the same run, kept
