"""The study end to end: files, the table, resume after SIGKILL, recipes from TOML."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from regularkit.errors import RegularkitError
from regularkit.metrics.summary import gap, mean_std
from regularkit.study import StudyConfig, resolve
from regularkit.study.pipeline import run_study
from regularkit.study.recipes import RECIPES, load_recipe_file
from regularkit.study.results.summary import summarize
from regularkit.train import Recipe

FAST = dict(seeds=2, epochs=4, train_size=120, batch_size=32)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_mean_std_and_gap_reference():
    m, s = mean_std([0.1, 0.2, 0.4])
    assert m == pytest.approx(0.7 / 3)
    assert s == pytest.approx(((0.1 - m) ** 2 + (0.2 - m) ** 2 + (0.4 - m) ** 2) ** 0.5 / 2 ** 0.5)
    assert mean_std([0.3]) == (0.3, 0.0)
    assert gap(0.05, 0.12) == pytest.approx(0.07)


def test_summarize_groups_by_recipe_in_order():
    rec = lambda r, s, te: {"recipe": r, "seed": s, "final": {"train_error": 0.0, "val_error": 0.1,
                                                               "test_error": te, "gap": te},
                            "history": [{"train_error": 0.5, "val_error": 0.5, "test_error": 0.5}], "extra": {}}
    out = summarize([rec("b", 1, 0.2), rec("a", 0, 0.1), rec("b", 0, 0.4)], ["b", "a"])
    assert [s.recipe for s in out] == ["b", "a"]
    assert out[0].seeds == [0, 1] and out[0].stats["test_error"][0] == pytest.approx(0.3)


def test_every_registered_recipe_resolves_and_differs_from_baseline():
    base = StudyConfig().base_recipe()
    recipes = resolve(list(RECIPES), base)
    baseline = recipes[0]
    for r in recipes[1:]:
        if r.name == "seed-ensemble":  # the baseline on purpose: its ensemble column is the point
            continue
        assert (r.model, r.optim, r.reg, r.augment) != (baseline.model, baseline.optim, baseline.reg,
                                                         baseline.augment), r.name


def test_unknown_recipe_is_named():
    with pytest.raises(RegularkitError, match="unknown recipe 'l7'; choose from baseline, l2"):
        resolve(["l7"], Recipe())


def test_recipe_file(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text('[recipes.big-l2]\ndescription = "strong"\n"reg.l2" = 0.01\n'
                 '[recipes.narrow]\nmodel = { widths = [16] }\n')
    extra = load_recipe_file(f)
    r = resolve(["big-l2", "narrow"], StudyConfig().base_recipe(), extra=extra)
    assert r[0].reg.l2 == 0.01 and r[0].description == "strong"
    assert r[1].model.widths == (16,)


def test_study_writes_everything_and_reports_the_gap(tmp_path):
    cfg = StudyConfig(recipes=("baseline", "early-stopping"), out=str(tmp_path / "s"), **FAST)
    result = run_study(cfg, progress=False)
    out = tmp_path / "s"
    for name in ("results.csv", "learning_curves.png", "test_curves.png", "gap.png", "reliability.png",
                 "report.html", "study.toml",
                 "environment.json", "ledger.journal", "runs/baseline/seed0.json", "runs/early-stopping/seed1.json"):
        assert (out / name).exists(), name
    rows = read_csv(out / "results.csv")
    assert [r["recipe"] for r in rows] == ["baseline", "early-stopping"]
    for r in rows:
        assert float(r["gap_mean"]) == pytest.approx(float(r["test_error_mean"]) - float(r["train_error_mean"]),
                                                     abs=2e-6)
    record = json.loads((out / "runs/baseline/seed0.json").read_text())
    assert len(record["history"]) == FAST["epochs"]
    assert record["recipe_config"]["optim"]["epochs"] == FAST["epochs"]
    env = json.loads((out / "environment.json").read_text())
    assert env["versions"]["torch"] and env["machine"]["cpu_count"] and env["git_revision"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "early-stopping" in html
    assert result.summaries[0].stats["train_error"][0] <= result.summaries[0].stats["test_error"][0]
    verdict = json.loads((out / "verdict.json").read_text())  # the verdict, for scripts and CI
    assert verdict["text"] == result.verdict.text
    assert verdict["fit"] in ("under-fits", "over-fits", "under- and over-fits", "fits")
    assert verdict["fit_reason"] and isinstance(verdict["within_noise"], bool)
    assert rows[1]["delta_test_error_p"] and rows[1]["delta_test_error_raw_low"]
    assert verdict["recommended"] == result.verdict.recommended


@pytest.mark.parametrize("case, settings", [
    ("no baseline", dict(recipes=("dropout", "l2"))),
    ("diverged baseline", dict(recipes=("baseline", "l2"), lr=1e6)),
])
def test_a_study_without_a_usable_baseline_finishes_with_a_verdict_and_so_does_its_rerun(tmp_path, case, settings):
    """Issue 23, item 1: these crashed in finish() after training everything, on every rerun."""
    cfg = StudyConfig(out=str(tmp_path / "s"), **{**FAST, **settings})
    for _ in range(2):  # the first run trains, the rerun reads the ledger: both end in a report
        result = run_study(cfg, progress=False)
        verdict = json.loads((tmp_path / "s" / "verdict.json").read_text())
        assert verdict["fit"] == "unknown" and verdict["text"] == result.verdict.text
        assert ("There is no baseline run" if case == "no baseline" else "The baseline diverged") in verdict["text"]
        assert (tmp_path / "s" / "report.html").exists() and (tmp_path / "s" / "results.csv").exists()


def test_rerun_resumes_without_repeating(tmp_path):
    cfg = StudyConfig(recipes=("baseline",), out=str(tmp_path / "s"), **FAST)
    first = run_study(cfg, progress=False)
    result = run_study(cfg, progress=False)
    assert result.records == first.records  # read back from the ledger, not retrained
    import optuna

    from regularkit.study.run.ledger import open_study
    trials = open_study(tmp_path / "s", cfg.study_name).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_another_configuration_in_the_same_folder_is_refused_unless_fresh(tmp_path):
    out = tmp_path / "s"
    a = run_study(StudyConfig(recipes=("baseline",), out=str(out), **FAST), progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(RegularkitError, match=r"holds a study with other settings \(epochs 4 -> 2\)"):
        run_study(StudyConfig(recipes=("baseline",), out=str(out), **{**FAST, "epochs": 2}), progress=False)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # byte-identical
    # adding a recipe to the same configuration is fine: runs are per recipe and seed
    c = run_study(StudyConfig(recipes=("baseline", "l2"), out=str(out), **FAST), progress=False)
    assert [r["recipe"] for r in c.records] == ["baseline", "baseline", "l2", "l2"]
    assert c.records[:2] == a.records
    b = run_study(StudyConfig(recipes=("baseline",), out=str(out), **{**FAST, "epochs": 2}), progress=False, fresh=True)
    assert len(b.records[0]["history"]) == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("s.old-")]  # moved aside, not deleted


def _cli(out, *extra):
    return [sys.executable, "-m", "regularkit", "study", "--recipes", "baseline,early-stopping", "--seeds", "3",
            "--epochs", "25", "--train-size", "200", "--out", str(out), "--no-progress", "--threads", "1", *extra]


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_same_table(tmp_path):
    clean = subprocess.run(_cli(tmp_path / "clean"), capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = killed_dir / "artifacts"  # a finished run's test probabilities land here
    deadline = time.time() + 120
    while not (marker.exists() and any(marker.iterdir())) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "results.csv").exists(), "the study finished before it could be killed"
    resumed = subprocess.run(_cli(killed_dir), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert read_csv(killed_dir / "results.csv") == read_csv(tmp_path / "clean" / "results.csv")
    # The ledger counts each run once, however many times it was started.
    import optuna

    from regularkit.study.run.ledger import open_study
    study = open_study(killed_dir, "regularkit-study")
    keys = [t.user_attrs["key"] for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))]
    assert len(keys) == len(set(keys)) == 6


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_run_that_raises_inside_run_study_is_failed_in_the_ledger_and_redone_by_a_rerun(tmp_path, monkeypatch,
                                                                                          exc):
    import optuna

    from regularkit.study.run import worker
    from regularkit.study.run.ledger import open_study
    cfg = StudyConfig(recipes=("baseline",), out=str(tmp_path / "s"), vectorize_seeds=False, **{**FAST, "epochs": 2})
    real, trained = worker.run_recipe, []

    def seed_1_raises(recipe, splits, seed, **kw):
        trained.append(seed)
        if seed == 1:
            raise exc
        return real(recipe, splits, seed, **kw)

    monkeypatch.setattr(worker, "run_recipe", seed_1_raises)
    with pytest.raises(type(exc)):
        run_study(cfg, progress=False)
    states = [(t.user_attrs["seed"], t.state) for t in open_study(tmp_path / "s", cfg.study_name).get_trials()]
    assert states == [(0, optuna.trial.TrialState.COMPLETE), (1, optuna.trial.TrialState.FAIL)]
    assert not (tmp_path / "s" / "results.csv").exists()  # no report of a study that did not finish
    monkeypatch.setattr(worker, "run_recipe", lambda recipe, splits, seed, **kw: (trained.append(seed),
                                                                                 real(recipe, splits, seed, **kw))[1])
    result = run_study(cfg, progress=False)  # the rerun: seed 1 again, seed 0 read from the ledger
    assert trained == [0, 1, 1]
    assert [r["seed"] for r in result.records] == [0, 1]
    states = [(t.user_attrs["seed"], t.state) for t in open_study(tmp_path / "s", cfg.study_name).get_trials()]
    assert states == [(0, optuna.trial.TrialState.COMPLETE), (1, optuna.trial.TrialState.FAIL),
                      (1, optuna.trial.TrialState.COMPLETE)]


def test_a_two_seed_study_keeps_each_runs_probabilities_and_reports_their_ensemble(tmp_path):
    """Each run's test probabilities are an artifact; the seed-ensemble column is the error of their mean."""
    import numpy as np

    from regularkit.study.run.artifacts import load_probs, open_store
    out = tmp_path / "s"
    result = run_study(StudyConfig(recipes=("baseline",), out=str(out), **{**FAST, "epochs": 2}), progress=False)
    store = open_store(out, None, None)
    y = result.plan.data.splits.y_test.numpy()
    probs = [load_probs(store, r) for r in result.records]
    assert len({r["probs_artifact"] for r in result.records}) == 2
    assert len([p for p in (out / "artifacts").rglob("*") if p.is_file()]) == 2
    for p, r in zip(probs, result.records):
        assert p.shape == (len(y), 10) and float((p.argmax(1) != y).mean()) == pytest.approx(
            r["final"]["test_error"], abs=1e-9)
    ensemble = float((np.mean(probs, axis=0).argmax(1) != y).mean())
    (row,) = read_csv(out / "results.csv")
    assert float(row["ensemble_test_error_mean"]) == pytest.approx(ensemble, abs=1e-6)
    assert result.summaries[0].stats["ensemble_test_error"] == (pytest.approx(ensemble), 0.0)
    pooled, labels = result.summaries[0].pooled_probs
    assert pooled.shape == (2 * len(y), 10) and np.array_equal(labels, np.tile(y, 2))


def test_a_recipe_warning_reaches_the_table_and_a_bracketed_folder_is_printed_as_it_is(tmp_path, capsys):
    """Mutation survivors of study/pipeline.py (docs/mutation.md): the applicability warnings are copied onto
    the summaries, and the last line prints the folder as text (rich markup would drop '[x]')."""
    from rich.console import Console
    out = tmp_path / "study [x]"
    console = Console(width=200, force_terminal=False, color_system=None)
    result = run_study(StudyConfig(recipes=("baseline", "flip-crop"), out=str(out), **FAST), progress=False,
                       console=console)
    flip = next(s for s in result.summaries if s.recipe == "flip-crop")
    assert flip.warnings and "horizontal flips may change the class" in flip.warnings[0]
    text = capsys.readouterr().out
    assert f"results in {out}/:" in text and "⚠ flip-crop: horizontal flips may change the class" in text
