"""Workers: train_claimed (each waiting run once, a failed run marked FAIL and redone), a worker process's exit codes;
N processes on one machine share the ledger; folders sharing one storage give one report."""
import contextlib
import csv
import math
import re
import shlex
import subprocess
import sys

import numpy as np
import optuna
import pytest

from regularkit._util.signals import Terminated
from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig
from regularkit.study.run.ledger import open_study
from regularkit.study.pipeline import run_study

FAST = dict(recipes=("baseline", "l2", "dropout"), seeds=2, epochs=3, train_size=120, batch_size=32)


def rows(path):
    return list(csv.DictReader(path.open()))


def test_threads_are_shared_out_between_workers(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    for workers, threads, expected in ((1, None, 8), (2, None, 4), (16, None, 1), (2, 3, 3)):
        assert StudyConfig(workers=workers, threads=threads).threads_per_worker() == expected


@pytest.mark.slow
def test_two_workers_train_every_run_once_and_the_parent_reports(tmp_path):
    out = tmp_path / "w"
    # one run per claim (grouped seeds would give 3 claims, which one quick worker may take before the other starts)
    # 30 epochs: each run outlasts the skew between the two workers' start-ups, so both get runs
    many = {**FAST, "epochs": 30}
    result = run_study(StudyConfig(out=str(out), workers=2, threads=1, vectorize_seeds=False, **many), progress=False)
    assert len(result.records) == 6 and {(r["recipe"], r["seed"]) for r in result.records} == {
        (name, seed) for name in FAST["recipes"] for seed in range(2)}
    trials = open_study(out, "regularkit-study").get_trials()
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 6  # each run once
    workers = {t.user_attrs["regularkit.worker"]["pid"] for t in trials}
    assert len(workers) == 2  # both processes trained
    # the same numbers as one worker: a run is a function of its key, wherever it runs
    run_study(StudyConfig(out=str(tmp_path / "one"), threads=1, **many), progress=False)
    assert rows(out / "results.csv") == rows(tmp_path / "one" / "results.csv")


def _cli(out, storage):
    return [sys.executable, "-m", "regularkit", "study", "--recipes", ",".join(FAST["recipes"]), "--seeds", "2",
            "--epochs", "3", "--train-size", "120", "--out", str(out), "--storage", str(storage),
            "--no-progress", "--threads", "1"]


@pytest.mark.slow
def test_two_folders_sharing_one_storage_write_identical_complete_reports(tmp_path):
    storage = tmp_path / "shared" / "ledger.journal"
    procs = [subprocess.Popen(_cli(tmp_path / name, storage), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for name in ("a", "b")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    # whichever finished first may have reported a partial table; a rerun (nothing left to train) is complete
    for name in ("a", "b"):
        again = subprocess.run(_cli(tmp_path / name, storage), capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "0 to do" in again.stdout, again.stdout + again.stderr
    a, b = rows(tmp_path / "a" / "results.csv"), rows(tmp_path / "b" / "results.csv")
    assert a == b and len(a) == 3
    assert all(r["ensemble_test_error_mean"] for r in a)  # every run's probabilities reached both folders
    trials = open_study(tmp_path / "a", "regularkit-study", str(storage)).get_trials()
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 6
    assert (tmp_path / "shared" / "artifacts").is_dir()


# --------------------------------------------------------------------------- train_claimed, in this process
TINY = dict(recipes=("baseline",), seeds=2, epochs=2, train_size=60, batch_size=32, threads=1)


def tiny_study(tmp_path, **kw):
    """A plan of two runs, its ledger with both enqueued, and its artifact store."""
    from regularkit.study.run import ledger
    from regularkit.study.run.artifacts import open_store
    from regularkit.study.plan import make_plan
    cfg = StudyConfig(out=str(tmp_path / "s"), **{**TINY, **kw})
    plan = make_plan(cfg)
    study = ledger.open_study(tmp_path / "s", cfg.study_name)
    ledger.enqueue_missing(study, {k: {"recipe": j.recipe.name, "seed": j.seed} for k, j in plan.jobs.items()})
    return plan, study, open_store(tmp_path / "s", None, None)


def trial_states(study):
    return [(t.user_attrs["key"], t.state) for t in study.get_trials()]


def test_train_claimed_trains_each_waiting_run_and_reports_it(tmp_path):
    from regularkit.study.run.artifacts import load_probs
    from regularkit.study.run.worker import train_claimed
    plan, study, store = tiny_study(tmp_path)
    seen = {"start": [], "epoch": [], "done": []}
    n = train_claimed(plan, study, store, on_start=lambda job: seen["start"].append(job),
                      on_epoch=lambda job, m: seen["epoch"].append((job.seed, m["epoch"])),
                      on_done=lambda job, record: seen["done"].append((job, record)))
    assert n == 2 and sorted(job.seed for job in seen["start"]) == [0, 1]
    assert sorted(seen["epoch"]) == [(0, 1), (0, 2), (1, 1), (1, 2)]  # every epoch of every run, with its job
    trials = {t.user_attrs["key"]: t for t in study.get_trials()}
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials.values())
    for job, record in seen["done"]:
        key = next(k for k, j in plan.jobs.items() if j is job)
        assert record["key"] == key and trials[key].user_attrs["record"] == record
        assert trials[key].value == record["final"]["val_error"]  # what the ledger is told: validation error
        assert "test_probs" not in record  # the probabilities went to the artifact store, not into the ledger
        probs = load_probs(store, record)
        assert probs.shape == (len(plan.data.splits.y_test), 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
        errors = float((probs.argmax(1) != plan.data.splits.y_test.numpy()).mean())
        assert errors == pytest.approx(record["final"]["test_error"], abs=1e-9)
    assert train_claimed(plan, study, store) == 0  # nothing is left waiting


@pytest.mark.parametrize("exc", [RuntimeError("boom in run 2"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_run_that_raises_is_marked_failed_the_error_propagates_and_a_rerun_redoes_it(tmp_path, monkeypatch, exc):
    from regularkit.study.run import ledger, worker
    plan, study, store = tiny_study(tmp_path, vectorize_seeds=False)  # one run per claim (see test_vectorize.py)
    real, calls = worker.run_recipe, []

    def second_run_raises(recipe, splits, seed, **kw):
        calls.append(seed)
        if len(calls) == 2:
            raise exc
        return real(recipe, splits, seed, **kw)

    monkeypatch.setattr(worker, "run_recipe", second_run_raises)
    done = []
    with pytest.raises(type(exc)):
        worker.train_claimed(plan, study, store, on_done=lambda job, record: done.append(job.seed))
    first, second = calls
    assert done == [first]  # the finished run was reported; the failed one was not
    keys = {j.seed: k for k, j in plan.jobs.items()}
    assert trial_states(study) == [(keys[first], optuna.trial.TrialState.COMPLETE),
                                   (keys[second], optuna.trial.TrialState.FAIL)]
    assert set(ledger.completed(study, plan.keys)) == {keys[first]}
    monkeypatch.setattr(worker, "run_recipe", real)
    assert ledger.enqueue_missing(study, {k: {} for k in plan.keys}) == 1  # only the failed run is to do
    assert worker.train_claimed(plan, study, store) == 1
    assert set(ledger.completed(study, plan.keys)) == plan.keys
    assert trial_states(study)[-1] == (keys[second], optuna.trial.TrialState.COMPLETE)


@pytest.mark.parametrize("val_error, told", [(0.25, 0.25), (0.0, 0.0), (None, math.inf), (math.nan, math.inf),
                                             (math.inf, math.inf)])
def test_the_ledger_is_told_the_validation_error_and_inf_for_a_diverged_run(val_error, told):
    from regularkit.study.run import worker
    from regularkit.study.tune.objective import trial_value
    assert trial_value({"final": {"val_error": val_error}}) == told
    assert trial_value({"final": {}}) == math.inf
    # one objective value for the search, the tuning and the ledger
    assert worker.trial_value is trial_value and not hasattr(worker, "objective_value")


def test_a_worker_that_exits_with_an_error_stops_the_study_in_one_line(tmp_path):
    """The one supervisor's policy (tests/_util/test_processes.py), as the study applies it."""
    import sys

    from regularkit._util.processes import WorkerFailed, spawn_processes
    from regularkit.study.run.worker import supervise_workers
    plan, study, _ = tiny_study(tmp_path)
    procs = spawn_processes(sys.exit, [(1,)], ["regularkit-study-0"])
    with pytest.raises(WorkerFailed, match=rf"^study worker regularkit-study-0 \(pid {procs[0].pid}\) exited with "
                                           r"code 1; see its message above$"):
        supervise_workers(procs, study, plan)


# --------------------------------------------------------------------------- a spawned worker's main, in this process
@pytest.fixture
def worker_main(monkeypatch):
    """``_worker_main`` without its process-wide settings leaking into the test process."""
    import torch

    from regularkit.study.run import worker
    calls = []
    @contextlib.contextmanager
    def recorded():
        calls.append("signals")
        yield

    monkeypatch.setattr(worker, "interrupts_raise", recorded)
    threads = torch.get_num_threads()
    yield worker, calls
    torch.set_num_threads(threads)


def test_a_worker_process_claims_and_trains_every_run(tmp_path, worker_main):
    import optuna
    import torch

    from regularkit.config import to_dict
    from regularkit.study.run import ledger

    worker, calls = worker_main
    plan, study, _ = tiny_study(tmp_path, workers=2, threads=2)  # as spawned: the run keys name 2 threads
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)  # a fresh interpreter's default
    try:
        worker._worker_main(to_dict(plan.cfg), None, 2)
        # Optuna's "Trial 3 finished ..." lines would interleave with the study's own output
        assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    finally:
        optuna.logging.set_verbosity(verbosity)
    assert calls == ["signals"] and torch.get_num_threads() == 2  # Ctrl-C and SIGTERM handled, the threads it was given
    assert set(ledger.completed(study, plan.keys)) == plan.keys
    assert (tmp_path / "s" / "artifacts").is_dir()


@pytest.mark.parametrize("raised, code, message", [
    (Terminated(), 143, ""), (KeyboardInterrupt(), 130, ""),
    (RegularkitError("bad data"), 2, "regularkit: error: bad data\n")])
def test_a_worker_process_exits_with_the_code_of_what_stopped_it(tmp_path, worker_main, monkeypatch, capsys,
                                                                 raised, code, message):
    from regularkit.config import to_dict
    worker, _ = worker_main

    def stopped(*args, **kwargs):
        raise raised

    monkeypatch.setattr(worker, "make_plan", stopped)
    with pytest.raises(SystemExit) as info:
        worker._worker_main(to_dict(StudyConfig(out=str(tmp_path / "s"), **TINY)), None, 1)
    assert info.value.code == code and capsys.readouterr().err == message


def test_a_tuned_worker_trains_the_strengths_the_parent_searched(tmp_path, worker_main, monkeypatch):
    from regularkit.config import to_dict
    worker, _ = worker_main
    got = {}
    monkeypatch.setattr(worker, "tune", lambda plan, storage: (("tuned", plan.cfg.tune, storage), {}))
    monkeypatch.setattr(worker, "train_claimed", lambda plan, study, store: got.setdefault("plan", plan))
    cfg = StudyConfig(out=str(tmp_path / "s"), tune=3, **TINY)
    worker._worker_main(to_dict(cfg), None, 1)
    tuned, trials, storage = got["plan"]
    assert (tuned, trials) == ("tuned", 3) and storage is not None


def test_spawn_workers_starts_n_fresh_interpreters_each_with_its_share_of_the_threads(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from regularkit._util import processes
    from regularkit.config import to_dict
    from regularkit.study.run import worker
    started, methods = [], []

    class FakeProcess:
        def __init__(self, target, args, name):
            self.target, self.args, self.name = target, args, name

        def start(self):
            started.append(self.name)

    monkeypatch.setattr(processes.multiprocessing, "get_context",
                        lambda method: methods.append(method) or SimpleNamespace(Process=FakeProcess))
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    cfg = StudyConfig(out=str(tmp_path / "s"), workers=3)
    procs = worker.spawn_workers(cfg, "the data", 3)
    assert methods == ["spawn"]  # a fresh interpreter: no thread pool or lock inherited from the parent
    assert [p.name for p in procs] == started == ["regularkit-study-0", "regularkit-study-1", "regularkit-study-2"]
    assert all(p.target is worker._worker_main and p.args == (to_dict(cfg), "the data", 2) for p in procs)


# --------------------------------------------------------------------------- a worker killed by a signal
def test_a_killed_worker_has_its_run_queued_at_once_said_recorded_and_named_until_it_is_trained(tmp_path):
    import os
    import signal
    import socket
    import time

    from regularkit._util.processes import spawn_processes
    from regularkit.search.storage import WORKER_ATTR
    from regularkit.study.run import ledger
    from regularkit.study.run.worker import lost_workers, supervise_workers, train_claimed, unfinished_runs
    plan, study, store = tiny_study(tmp_path)
    procs = spawn_processes(time.sleep, [(60,)], ["regularkit-study-0"])
    pid = procs[0].pid
    trial = ledger.claim(study, plan.keys)  # the worker's claim, as that process
    trial.set_user_attr(WORKER_ATTR, {"host": socket.gethostname(), "pid": pid, "start": None})
    job = plan.jobs[trial.user_attrs["key"]]
    os.kill(pid, signal.SIGKILL)
    lines = []
    lost = supervise_workers(procs, study, plan, say=lines.append)
    how = f"regularkit-study-0 (pid {pid}) was killed by signal 9 (SIGKILL)"
    assert [e.code for e in lost] == [-signal.SIGKILL]
    assert lines == [f"study worker {how}; its run baseline seed {job.seed} was queued again"]
    states = [(t.user_attrs.get("key"), t.state) for t in study.get_trials()]
    assert (trial.user_attrs["key"], optuna.trial.TrialState.FAIL) in states       # the attempt failed
    assert states.count((trial.user_attrs["key"], optuna.trial.TrialState.WAITING)) == 1  # and queued again, at once
    other = 1 - job.seed
    assert unfinished_runs(plan, study) == {f"baseline seed {job.seed}": how, f"baseline seed {other}": "not trained"}
    assert lost_workers(study) == [how]  # recorded under this process, the parent that saw it
    assert train_claimed(plan, study, store) == 2 and unfinished_runs(plan, study) == {}  # a rerun trains it


KILLER = '''
import os, signal, time
from pathlib import Path
from torch import nn


class Net(nn.Module):
    def __init__(self, n, k):
        super().__init__()
        self.lin = nn.Linear(n, k)

    def forward(self, x):
        if self.training and os.environ.get("KILL_DIR"):
            _maybe_die(Path(os.environ["KILL_DIR"]))
        return self.lin(x.flatten(1))


_decided = []


def _maybe_die(folder):
    """The first worker to train holds its run until a second one trains; the second waits until the first
    has ended (nothing left to claim) and kills itself: its run is left for nobody."""
    if _decided:
        return
    _decided.append(1)
    mine = folder / str(os.getpid())
    mine.touch()
    first = min(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    deadline = time.monotonic() + 60
    if first == mine:
        while len(list(folder.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        return
    while Path(f"/proc/{first.name}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(os.getpid(), signal.SIGKILL)


def build(shape, k):
    n = 1
    for s in shape:
        n *= s
    return Net(n, k)
'''


@pytest.mark.slow
def test_a_worker_killed_by_a_signal_is_reported_last_the_exit_code_says_so_and_a_rerun_trains_its_run(
        tmp_path, monkeypatch, capsys):
    """The issue's case: kill -9 on one of two workers used to exit 0 with a table missing the run."""
    from regularkit.cli import main
    from regularkit.study.run.ledger import open_study
    factory = tmp_path / "killer.py"
    factory.write_text(KILLER)
    (tmp_path / "kills").mkdir()
    out = tmp_path / "k"
    argv = ["study", "--recipes", "baseline", "--seeds", "2", "--epochs", "1", "--train-size", "60", "--workers",
            "2", "--threads", "1", "--no-vectorize-seeds", "--model", f"{factory}:build", "--out", str(out),
            "--no-progress"]  # one run per claim: each worker trains one seed
    monkeypatch.setenv("KILL_DIR", str(tmp_path / "kills"))  # the spawned workers inherit it
    assert main(argv) == 75  # EX_TEMPFAIL: runs are left, rerun
    captured = capsys.readouterr()
    victim = next(p.name for p in (tmp_path / "kills").iterdir() if p.name != min(
        (tmp_path / "kills").iterdir(), key=lambda q: q.stat().st_mtime_ns).name)
    assert ("study worker regularkit-study-" in captured.out and f"(pid {victim}) was killed by signal 9 (SIGKILL); "
            "its run baseline seed" in captured.out and "was queued again" in captured.out), captured.out
    last = captured.err.strip().splitlines()[-1]
    assert re.fullmatch(rf"regularkit: 1 of 2 runs did not finish \(baseline seed [01]: regularkit-study-[01] "
                        rf"\(pid {victim}\) was killed by signal 9 \(SIGKILL\)\); train them with: "
                        rf"regularkit {re.escape(shlex.join(argv))}", last), last
    assert len(rows(out / "results.csv")) == 1 and rows(out / "results.csv")[0]["n_seeds"] == "1"
    study = open_study(out, "regularkit-study")
    assert [t.state for t in study.get_trials()].count(optuna.trial.TrialState.WAITING) == 1  # queued at once
    monkeypatch.delenv("KILL_DIR")
    assert main(argv) == 0  # the rerun trains the missing run, and only it
    assert "1 runs finished, 1 to do" in capsys.readouterr().out
    assert rows(out / "results.csv")[0]["n_seeds"] == "2"
    trials = open_study(out, "regularkit-study").get_trials()
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 2


def test_a_worker_process_imports_neither_the_report_nor_the_compiler():
    """A worker imports what training needs: not matplotlib or SciPy's statistics (the report's), nor
    torch._dynamo (0.8 s; nothing compiles unless asked).  Each would cost every worker's start-up."""
    code = ("import sys, regularkit.study.run.worker; "
            "print(sorted(m for m in ('matplotlib', 'scipy.stats', 'torch._dynamo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
