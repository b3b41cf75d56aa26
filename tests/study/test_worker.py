"""Many workers: N processes on one machine share the ledger; folders sharing one storage give one report."""
import csv
import subprocess
import sys

import optuna
import pytest

from regularkit.study import StudyConfig
from regularkit.study.ledger import open_study
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
    result = run_study(StudyConfig(out=str(out), workers=2, threads=1, **FAST), progress=False)
    assert len(result.records) == 6 and {(r["recipe"], r["seed"]) for r in result.records} == {
        (name, seed) for name in FAST["recipes"] for seed in range(2)}
    trials = open_study(out, "regularkit-study").get_trials()
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 6  # each run once
    workers = {t.user_attrs["regularkit.worker"]["pid"] for t in trials}
    assert len(workers) == 2  # both processes trained
    # the same numbers as one worker: a run is a function of its key, wherever it runs
    run_study(StudyConfig(out=str(tmp_path / "one"), threads=1, **FAST), progress=False)
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
