"""Border warnings: "careful with best values on border", measured in log space for log ranges."""
import math

import pytest

from regularkit.errors import RegularkitError
from regularkit.search import Categorical, Int, LogUniform, SearchSpace, Uniform, border_warnings, run_search

SPACE = SearchSpace(lr=LogUniform(1e-6, 1e-3), dropout=Uniform(0.0, 0.5), layers=Int(1, 10),
                    act=Categorical(["relu", "gelu"]))


def test_message_names_value_side_and_range():
    assert border_warnings(SPACE, {"lr": 9.7e-4, "dropout": 0.25, "layers": 5, "act": "relu"}) == [
        "careful: best lr=9.7e-04 is at the upper border of [1e-06, 1e-03]; widen the range"]


@pytest.mark.parametrize("params, expected", [
    ({"lr": 1.1e-6}, ["careful: best lr=1.1e-06 is at the lower border of [1e-06, 1e-03]; widen the range"]),
    # 1e-4 is 10% of the way in linear units but 2/3 of the way in decades: silent.
    ({"lr": 1e-4}, []),
    # 3e-6 is 0.2% of the way in linear units (a linear check would warn) but 16% in decades.
    ({"lr": 3e-6}, []),
    ({"dropout": 0.49}, ["careful: best dropout=0.49 is at the upper border of [0, 0.5]; widen the range"]),
    ({"dropout": 0.03}, ["careful: best dropout=0.03 is at the lower border of [0, 0.5]; widen the range"]),
    ({"dropout": 0.1}, []),
    ({"layers": 10}, ["careful: best layers=10 is at the upper border of [1, 10]; widen the range"]),
    ({"layers": 5}, []),
    ({"act": "relu"}, []),  # categorical choices have no border
])
def test_border_table(params, expected):
    assert border_warnings(SPACE, params) == expected


def test_edge_fraction_widens_the_border_zone():
    assert border_warnings(SPACE, {"dropout": 0.1}, edge_fraction=0.25) != []
    assert border_warnings(SPACE, {"dropout": 0.1}, edge_fraction=0.15) == []


@pytest.mark.parametrize("edge", [0.0, 0.5, -0.1, "x"])
def test_bad_edge_fraction_is_named(edge):
    with pytest.raises(RegularkitError, match=rf"edge_fraction must be .*got {edge!r}"):
        border_warnings(SPACE, {"lr": 1e-4}, edge_fraction=edge)


def optimum_at(center):
    def objective(params, report):
        return (math.log10(params["lr"]) - math.log10(center)) ** 2
    return objective


def test_search_with_optimum_outside_range_warns():
    lines = []
    result = run_search(optimum_at(1e-2), SearchSpace(lr=LogUniform(1e-6, 1e-3)), n_trials=40, log=lines.append)
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("careful: best lr=") and "upper border of [1e-06, 1e-03]" in result.warnings[0]
    assert lines[-1] == result.warnings[0]  # printed after the trial lines


def test_search_with_optimum_inside_range_is_silent():
    result = run_search(optimum_at(10 ** -4.5), SearchSpace(lr=LogUniform(1e-6, 1e-3)), n_trials=40, log=None)
    assert result.warnings == []
    assert abs(math.log10(result.best_params["lr"]) + 4.5) < 0.3
