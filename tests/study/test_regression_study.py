"""A regression study end to end (scikit-learn's diabetes, 2 seeds, 3 epochs), and bad regression input."""
import csv
import json
import re

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

from regularkit.cli import main
from regularkit.study import StudyConfig
from regularkit.study.pipeline import run_study


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "diabetes.csv"
    d = load_diabetes()
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*d.feature_names, "target"])
        w.writerows([*map(float, row), float(t)] for row, t in zip(d.data, d.target))
    return path


def test_a_regression_study_on_a_table_writes_rmse_table_ridge_row_verdict_and_figures(diabetes, tmp_path, capsys):
    out = tmp_path / "study"
    code = main(["study", "--data", str(diabetes), "--target", "target", "--epochs", "3", "--seeds", "2",
                 "--recipes", "baseline,dropout,mixup", "--threads", "1", "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0
    assert "task: regression of 'target' (auto: a floating-point target), loss mse" in text
    assert "train RMSE" in text and "ridge (linear)" in text and "Verdict." in text
    rows = {r["recipe"]: r for r in csv.DictReader(open(out / "results.csv"))}
    assert set(rows) == {"baseline", "dropout", "mixup", "ridge (linear)"}
    runs = [json.load(open(out / "runs" / "baseline" / f"seed{k}.json")) for k in (0, 1)]
    assert float(rows["baseline"]["test_error_mean"]) == pytest.approx(np.mean([r["extra"]["test_rmse"] for r in runs]),
                                                                       rel=1e-5)
    for r in runs:  # the error the summaries read is the RMSE in the target's units
        assert r["final"]["test_error"] == pytest.approx(r["extra"]["test_rmse"], rel=1e-5)
    assert 30 < float(rows["baseline"]["test_error_mean"]) < 120  # diabetes targets span 25..346, std ~77
    for column in ("test_rmse_mean", "test_mae_mean", "test_r2_mean", "train_r2_mean", "ensemble_test_error_mean",
                   "delta_test_error_low"):
        assert column in rows["dropout"], column
    assert rows["ridge (linear)"]["delta_test_error_low"] == "" and rows["ridge (linear)"]["n_seeds"] == "1"
    verdict = json.load(open(out / "verdict.json"))
    assert "ridge model" in verdict["text"] and "validation RMSE" in verdict["text"]
    data = json.load(open(out / "data.json"))
    assert data["task"] == "regression" and data["targets"] == ["target"] and data["target_std"][0] > 0
    for name in ("predicted.png", "residuals.png", "learning_curves.png", "forest.png", "report.html"):
        assert (out / name).stat().st_size > 1000, name
    assert not (out / "reliability.png").exists()
    html = (out / "report.html").read_text()
    assert "test RMSE" in html and "Regression: every error is the RMSE" in html and 'alt="predicted"' in html


def test_the_same_from_python_with_arrays(tmp_path):
    d = load_diabetes()
    result = run_study(StudyConfig(recipes=("baseline", "l2"), seeds=2, epochs=2, threads=1, out=str(tmp_path / "o")),
                       data=(d.data.astype(np.float32), d.target), progress=False)
    assert result.plan.data.splits.task == "regression"
    assert [s.recipe for s in result.summaries] == ["baseline", "l2", "ridge (linear)"]
    assert result.summaries[-1].stats["test_r2"][0] > 0.3  # a linear model explains diabetes' progression


def _table(tmp_path, targets):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{t}\n" for i, t in enumerate(targets)))
    return str(path)


@pytest.mark.parametrize("targets, match", [
    ([1.5, 2.5, "nan", 3.5, 4.5, 5.5], r"row 4: the target column 'y' has no value"),
    ([2.5] * 8, r"y_train column 0 is constant \(2\.5\)"),
    ([1.5, 2.5, "abc", 3.5, 4.5, 5.5], r"row 4: the target column 'y' holds 'abc', not a finite number"),
    ([1.5], r"1 data row\(s\); a regression study needs at least 3"),
])
def test_bad_regression_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, targets, match):
    out = tmp_path / "o"
    code = main(["study", "--data", _table(tmp_path, targets), "--target", "y", "--out", str(out), "--epochs", "1",
                 "--seeds", "1", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("regularkit: error: ") and err.count("\n") == 1, err
    assert re.search(match, err), err
    assert not out.exists()
