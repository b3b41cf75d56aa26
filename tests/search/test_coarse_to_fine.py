"""Coarse -> fine: narrow_space is pure and stays in the old range, around the top-k, in log10 units."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_objectives import bowl

from regularkit.errors import RegularkitError
from regularkit.search import (
    Categorical,
    Int,
    LogUniform,
    SearchSpace,
    TrialRecord,
    Uniform,
    coarse_to_fine,
    narrow_space,
    search_report,
)


def test_lecture_example_reg_from_ten_decades_to_four():
    # cs231n: reg = 10**uniform(-5, 5), then "adjust range": 10**uniform(-4, 0).
    space = SearchSpace(reg=LogUniform(1e-5, 1e5))
    trials = [({"reg": 1e-3}, 0.47), ({"reg": 1e-1}, 0.48), ({"reg": 1e3}, 0.92), ({"reg": 1e-5}, 0.80)]
    narrowed = narrow_space(space, trials, top_k=2, margin=0.1)  # margin: 10% of 10 decades = 1 decade
    assert narrowed["reg"].low == pytest.approx(1e-4, rel=1e-12)
    assert narrowed["reg"].high == pytest.approx(1.0, rel=1e-12)


def test_narrowing_is_clipped_and_exact_at_unmoved_bounds():
    space = SearchSpace(lr=LogUniform(1e-6, 1e-3), dropout=Uniform(0.0, 0.5))
    narrowed = narrow_space(space, [({"lr": 1e-6, "dropout": 0.5}, 0.1)], top_k=1, margin=0.2)
    assert narrowed["lr"].low == 1e-6 and narrowed["dropout"].high == 0.5  # the very same floats
    assert narrowed["lr"].high == pytest.approx(10 ** (-6 + 0.6))
    assert narrowed["dropout"].low == pytest.approx(0.4)


def test_int_rounds_outward_and_categorical_keeps_its_choices():
    space = SearchSpace(layers=Int(1, 20), act=Categorical(["relu", "gelu", "tanh"]))
    trials = [({"layers": 7, "act": "gelu"}, 0.1), ({"layers": 9, "act": "gelu"}, 0.2)]
    narrowed = narrow_space(space, trials, top_k=2, margin=0.01)  # pad 0.19 -> [6.81, 9.19] -> [6, 10]
    assert narrowed["layers"] == Int(6, 10)
    assert narrowed["act"] == space["act"]
    # A single kept value never collapses the range to one point.
    assert narrow_space(SearchSpace(n=Int(1, 2)), [({"n": 2}, 0.0)], top_k=1, margin=0.01)["n"] == Int(1, 2)


def test_direction_and_record_states_decide_the_top():
    space = SearchSpace(x=Uniform(0.0, 100.0))
    records = [TrialRecord(0, {"x": 10.0}, 1.0, "COMPLETE"), TrialRecord(1, {"x": 90.0}, 0.0, "PRUNED"),
               TrialRecord(2, {"x": 50.0}, 5.0, "COMPLETE")]
    assert narrow_space(space, records, top_k=1, margin=0.01)["x"].low == pytest.approx(9.0)  # pruned ignored
    assert narrow_space(space, records, top_k=1, margin=0.01, direction="maximize")["x"].low == pytest.approx(49.0)


_log = st.tuples(st.floats(-8, 6), st.floats(0.5, 8))


@settings(max_examples=80, deadline=None)
@given(bounds=_log, lin=st.tuples(st.floats(-100, 100), st.floats(0.1, 100)),
       units=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(-5, 5)), min_size=1, max_size=30),
       top_k=st.integers(1, 10), margin=st.floats(0.001, 0.5))
def test_narrow_space_properties(bounds, lin, units, top_k, margin):
    a, width = bounds
    space = SearchSpace(lr=LogUniform(10 ** a, 10 ** (a + width)), wd=Uniform(lin[0], lin[0] + lin[1]))
    old_lr, old_wd = space["lr"], space["wd"]
    trials = [({"lr": 10 ** (a + u * width), "wd": old_wd.low + v * lin[1]}, val) for u, v, val in units]
    top = sorted(trials, key=lambda t: t[1])[:top_k]
    new = narrow_space(space, trials, top_k=top_k, margin=margin)
    for name, old in (("lr", old_lr), ("wd", old_wd)):
        assert old.low <= new[name].low < new[name].high <= old.high            # stays inside the old range
        tol = 1e-9 * (abs(old.low) + abs(old.high))  # the trial values themselves carry float round-off
        for params, _ in top:                                                   # keeps every top-k value
            assert new[name].low - tol <= params[name] <= new[name].high + tol
    # Log parameters are narrowed in log10 units: min/max exponent of the top-k +- margin * old decades.
    exps = [math.log10(p["lr"]) for p, _ in top]
    assert math.log10(new["lr"].low) == pytest.approx(max(a, min(exps) - margin * width), abs=1e-9)
    assert math.log10(new["lr"].high) == pytest.approx(min(a + width, max(exps) + margin * width), abs=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    (dict(trials=[({"x": 1.0}, math.nan)], top_k=1, margin=0.1), r"at least one completed trial .*got 1 trials"),
    (dict(trials=[({"x": 1.0}, 0.0)], top_k=0, margin=0.1), r"top_k must be >= 1, got 0"),
    (dict(trials=[({"x": 1.0}, 0.0)], top_k=1, margin=0.0), r"margin must be > 0, got 0.0"),
])
def test_narrow_space_errors_are_named(kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        narrow_space(SearchSpace(x=Uniform(0.0, 2.0)), **kwargs)


class EpochObjective:
    def __init__(self):
        self.epochs = []

    def __call__(self, params, report):
        self.epochs.append(params["epochs"])
        return bowl(params) + 1.0 / params["epochs"]


def test_coarse_to_fine_zooms_in_and_passes_stage_params(tmp_path):
    objective = EpochObjective()
    space = SearchSpace(lr=LogUniform(1e-6, 1e0), dropout=Uniform(0.0, 0.5))
    stages = [{"n_trials": 20, "epochs": 5}, {"n_trials": 10, "epochs": 20}, {"n_trials": 10, "epochs": 40}]
    result = coarse_to_fine(objective, space, stages, keep_top=0.2, margin=0.05, storage=tmp_path / "j",
                            log=None)
    assert objective.epochs == [5] * 20 + [20] * 10 + [40] * 10
    assert [s.study_name for s in result.stages] == ["search.stage1", "search.stage2", "search.stage3"]
    decades = [math.log10(s["lr"].high / s["lr"].low) for s in result.spaces]
    assert decades[0] == pytest.approx(6) and decades[0] > decades[1] > decades[2]
    for before, after, stage in zip(result.spaces, result.spaces[1:], result.stages):
        assert before["lr"].low <= after["lr"].low and after["lr"].high <= before["lr"].high
        top = sorted(stage.completed, key=lambda t: t.value)[:max(1, math.ceil(0.2 * len(stage.completed)))]
        assert all(after["lr"].low <= t.params["lr"] <= after["lr"].high for t in top)  # zoomed on the best
    assert result.best_config["epochs"] == 40 and result.best_params == result.stages[-1].best_params
    report = search_report(result, tmp_path / "report")
    assert report.paths["stages"].exists()


def test_coarse_to_fine_checks_its_arguments_before_running():
    calls = []
    with pytest.raises(RegularkitError, match=r"keep_top must be a fraction in \(0, 1\] or an integer >= 1, got 1.5"):
        coarse_to_fine(lambda p, r: calls.append(p) or 0.0, SearchSpace(x=Uniform(0, 1)), keep_top=1.5, log=None)
    with pytest.raises(RegularkitError, match=r"stage 1 must be a mapping with n_trials"):
        coarse_to_fine(lambda p, r: 0.0, SearchSpace(x=Uniform(0, 1)), [{"n_trials": 2}, {"epochs": 3}], log=None)
    assert calls == []
