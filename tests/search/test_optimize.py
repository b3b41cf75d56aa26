"""run_search: samplers, seeds, grid coverage, pruning through report(), log lines, resuming."""
import math
import re

import pytest
from search_objectives import bowl

from regularkit.errors import RegularkitError
from regularkit.search import Categorical, Int, LogUniform, SearchSpace, Uniform, run_search

SPACE = SearchSpace(lr=LogUniform(1e-6, 1e-1), dropout=Uniform(0.0, 0.5))


def objective(params, report):
    return bowl(params)


def test_log_lines_follow_the_cs231n_format():
    lines = []
    run_search(objective, SearchSpace(lr=LogUniform(1e-6, 1e-3), reg=LogUniform(1e-5, 1e5)),
               n_trials=3, log=lines.append, metric="val_err")
    pattern = r"val_err: \d+\.\d{6}, lr: \d\.\d{6}e-0\d, reg: \d\.\d{6}e[+-]\d\d, \(\d / 3\)"
    assert [re.fullmatch(pattern, line) is not None for line in lines[:3]] == [True] * 3, lines
    assert [int(re.search(r"\((\d) / 3\)", line).group(1)) for line in lines[:3]] == [1, 2, 3]


@pytest.mark.parametrize("sampler", ["random", "tpe", "grid"])
def test_same_seed_same_trials_different_seed_different(sampler):
    def params_of(seed):
        result = run_search(objective, SPACE, sampler=sampler, n_trials=12, seed=seed, grid_points=4, log=None)
        return [t.params for t in result.trials]

    assert params_of(0) == params_of(0)
    assert params_of(0) != params_of(1)


def test_grid_search_visits_every_log_spaced_point_once():
    space = SearchSpace(lr=LogUniform(1e-4, 1e-1), act=Categorical(["relu", "gelu"]))
    result = run_search(objective, space, sampler="grid", grid_points={"lr": 4}, log=None)
    seen = sorted((t.params["lr"], t.params["act"]) for t in result.trials)
    expected = sorted((lr, act) for lr in [1e-4, 1e-3, 1e-2, 1e-1] for act in ["relu", "gelu"])
    assert len(result.trials) == 8  # n_trials defaults to the grid size
    assert [a for _, a in seen] == [a for _, a in expected]
    assert [lr for lr, _ in seen] == pytest.approx([lr for lr, _ in expected], rel=1e-12)


def test_grid_refuses_more_trials_than_points():
    with pytest.raises(RegularkitError, match=r"n_trials=9 is more than the 8 points of the grid"):
        run_search(objective, SearchSpace(lr=LogUniform(1e-4, 1e-1), act=Categorical(["a", "b"])),
                   sampler="grid", grid_points=4, n_trials=9, log=None)


class Curve:
    """Reports an error curve step by step and remembers how far each trial got."""

    def __init__(self):
        self.steps = []

    def __call__(self, params, report):
        final = bowl(params)
        for step in range(8):
            value = final + 1.0 / (step + 1)
            if report(step, value):
                self.steps.append(step + 1)
                return value
        self.steps.append(8)
        return final


def test_report_true_stops_the_objective_and_prunes_the_trial():
    curve = Curve()
    result = run_search(curve, SearchSpace(lr=LogUniform(1e-6, 1e-1)), n_trials=30, pruner="halving", log=None)
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    assert pruned and complete
    # The objective ran fewer steps exactly for the pruned trials; Optuna kept the last reported value.
    assert sorted(curve.steps).count(8) == len(complete)
    for t in pruned:
        assert len(t.intermediate) < 8 and t.value == t.intermediate[max(t.intermediate)]
    assert result.best_value == min(t.value for t in complete)


def test_hyperband_pruner_is_accepted():
    result = run_search(Curve(), SearchSpace(lr=LogUniform(1e-6, 1e-1)), n_trials=12, pruner="hyperband", log=None)
    assert len(result.trials) == 12


def test_fixed_params_reach_the_objective_and_must_not_overlap():
    seen = []
    run_search(lambda p, r: seen.append(p) or 0.0, SPACE, n_trials=2, fixed={"epochs": 5}, log=None)
    assert [p["epochs"] for p in seen] == [5, 5] and all("lr" in p for p in seen)
    with pytest.raises(RegularkitError, match=r"fixed parameter 'lr' is also in the search space"):
        run_search(objective, SPACE, n_trials=2, fixed={"lr": 0.1}, log=None)


def test_maximize_picks_the_largest_value():
    result = run_search(lambda p, r: -bowl(p), SPACE, n_trials=15, direction="maximize", log=None)
    assert result.best_value == max(t.value for t in result.trials)


def test_nan_objective_fails_the_trial_and_the_search_goes_on():
    lines = []
    result = run_search(lambda p, r: math.nan if p["lr"] > 1e-3 else bowl(p), SPACE, n_trials=10, log=lines.append)
    assert {t.state for t in result.trials} == {"FAIL", "COMPLETE"}
    assert any("val_err: nan (failed)" in line for line in lines)
    assert math.isfinite(result.best_value)


def test_resume_runs_only_the_missing_trials(tmp_path):
    calls = []
    tracked = lambda p, r: calls.append(p) or bowl(p)  # noqa: E731
    run_search(tracked, SPACE, n_trials=4, storage=tmp_path / "journal", log=None)
    result = run_search(tracked, SPACE, n_trials=6, storage=tmp_path / "journal", log=None)
    assert len(calls) == 6 and len(result.trials) == 6
    assert result.storage == str(tmp_path / "journal" / "journal.log")


def test_resume_with_another_space_is_refused(tmp_path):
    run_search(objective, SPACE, n_trials=2, storage=tmp_path / "s.log", log=None)
    with pytest.raises(RegularkitError, match=r"study 'search' exists with a different space"):
        run_search(objective, SPACE.replace(dropout=Uniform(0.0, 0.9)), n_trials=2, storage=tmp_path / "s.log",
                   log=None)
    with pytest.raises(RegularkitError, match=r"exists with direction 'minimize', got direction='maximize'"):
        run_search(objective, SPACE, n_trials=2, storage=tmp_path / "s.log", direction="maximize", log=None)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_trials=None), r"n_trials is required with sampler='random', got None"),
    (dict(n_trials=0), r"n_trials must be >= 1, got 0"),
    (dict(n_trials=3, sampler="bayes"), r"sampler must be one of 'random', 'tpe', 'grid'; got 'bayes'"),
    (dict(n_trials=3, pruner="median"), r"pruner must be one of None, 'hyperband', 'halving'; got 'median'"),
    (dict(n_trials=3, direction="down"), r"direction must be one of 'minimize', 'maximize'; got 'down'"),
    (dict(n_trials=3, workers=0), r"workers must be >= 1, got 0"),
    (dict(n_trials=3, workers=2), r"workers=2 needs a picklable objective .*lambda"),
    (dict(n_trials=3, edge_fraction=0.7), r"edge_fraction must be in \(0.0, 0.5\), got 0.7"),
])
def test_bad_arguments_are_named(kwargs, match):
    calls = []
    with pytest.raises(RegularkitError, match=match):
        run_search(lambda p, r: calls.append(p) or 0.0, SPACE, log=None, **kwargs)
    assert calls == []  # refused before the first trial


def test_report_step_must_be_an_integer():
    with pytest.raises(RegularkitError, match=r"report step must be an integer, got 'one'"):
        run_search(lambda p, r: r("one", 0.5), SearchSpace(n=Int(1, 3)), n_trials=1, log=None)
