"""search_report: real PNGs written atomically, importance only when it means something, warnings returned."""
import json
import math

import optuna
import pytest
from PIL import Image
from search_objectives import bowl

from regularkit.search import Categorical, LogUniform, SearchSpace, Uniform, border_warnings, run_search, search_report
from regularkit.search.report import best_so_far

SPACE = SearchSpace(lr=LogUniform(1e-6, 1e-3), dropout=Uniform(0.0, 0.5), act=Categorical(["relu", "gelu"]))


def objective(params, report):
    return bowl(params) + (0.05 if params["act"] == "relu" else 0.0)


def _png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        assert im.size[0] > 100 and im.size[1] > 100
        return im.size


@pytest.fixture(scope="module")
def results():
    random = run_search(objective, SPACE, sampler="random", n_trials=16, log=None)
    grid = run_search(objective, SPACE, sampler="grid", grid_points=4, n_trials=16, log=None)
    return random, grid


def test_report_writes_every_plot_and_returns_the_border_warnings(results, tmp_path):
    random, grid = results
    report = search_report(random, tmp_path, compare=grid)
    assert set(report.paths) == {"history", "best_so_far", "slices", "importance", "compare", "summary", "html"}
    page = report.paths["html"].read_text()
    assert page.count("data:image/png;base64,") == 5 and "<b>Best:</b>" in page
    assert page.count("<tr><td>") == len(random.trials)  # every trial listed
    for key in ("history", "best_so_far", "slices", "importance", "compare"):
        _png(report.paths[key])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in report.paths.values())  # no temp files
    assert report.warnings == border_warnings(SPACE, random.best_params)
    # The optimum (lr = 1e-3) is on this space's upper border, so the report carries the warning.
    assert any("best lr=" in w and "upper border" in w for w in report.warnings)
    summary = json.loads(report.paths["summary"].read_text())
    assert summary["best_value"] == random.best_value and summary["versions"]["optuna"] == optuna.__version__


def test_best_so_far_is_monotone_and_ends_at_the_best(results):
    for result in results:
        curve = best_so_far(result)
        assert all(b <= a for a, b in zip(curve, curve[1:])) and curve[-1] == result.best_value


def test_report_skips_importance_with_one_parameter_or_few_trials(tmp_path):
    one = run_search(lambda p, r: bowl(p), SearchSpace(lr=LogUniform(1e-6, 1e-1)), n_trials=12, log=None)
    report = search_report(one, tmp_path / "one")
    assert "importance" not in report.paths
    assert report.skipped["importance"] == "importance needs >= 2 parameters, the space has 1"
    few = run_search(objective, SPACE, n_trials=4, log=None)
    assert "completed trials, got 4" in search_report(few, tmp_path / "few").skipped["importance"]


def test_report_from_a_stored_study_rebuilds_the_space(tmp_path):
    run_search(objective, SPACE, n_trials=12, storage=tmp_path / "journal", log=None)
    from regularkit.search import open_storage

    study = optuna.load_study(study_name="search", storage=open_storage(tmp_path / "journal"))
    report = search_report(study, tmp_path / "report")
    assert _png(report.paths["slices"])[0] > _png(report.paths["history"])[0]  # one panel per numeric param
    assert json.loads(report.paths["summary"].read_text())["space"] == SPACE.to_dict()
    assert all(math.isfinite(v) for v in best_so_far(run_search(objective, SPACE, n_trials=3, log=None)))
