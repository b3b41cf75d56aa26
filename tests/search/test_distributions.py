"""``search.distributions``: the four distributions against their definitions (the lecture's log-uniform
``10**uniform(a, b)``), their grids, search units, narrowing, TOML form, and the refusals.

Draws go through a real Optuna ``RandomSampler``: a LogUniform puts the same share in each decade
(chi-square within a stated tolerance under a fixed seed), a Uniform does not.
"""
import math

import numpy as np
import optuna
import pytest

from regularkit.errors import RegularkitError
from regularkit.search.distributions import KINDS, Categorical, Int, LogUniform, Uniform

optuna.logging.set_verbosity(optuna.logging.WARNING)


def draws(dist, n=1500, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    study.optimize(lambda t: out.append(dist.suggest(t, "x")) or 0.0, n_trials=n)
    return np.array(out, dtype=object if isinstance(dist, Categorical) else float)


def test_log_uniform_gives_each_decade_the_same_share_and_uniform_does_not():
    x = draws(LogUniform(1e-4, 1e0)).astype(float)
    assert x.min() >= 1e-4 and x.max() <= 1.0
    counts = np.histogram(np.log10(x), bins=4, range=(-4, 0))[0]
    chi2 = ((counts - 375) ** 2 / 375).sum()
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001
    plain = draws(Uniform(1e-4, 1e0)).astype(float)
    assert np.mean(plain < 1e-1) < 0.15  # a uniform range puts ~10 % below 0.1, not the 75 % above


def test_int_draws_every_value_of_its_closed_range():
    x = draws(Int(2, 5), n=300).astype(int)
    assert set(x) == {2, 3, 4, 5}


@pytest.mark.parametrize("dist, n, grid", [
    (Uniform(0.0, 1.0), 5, [0.0, 0.25, 0.5, 0.75, 1.0]),
    (LogUniform(1e-3, 1e1), 5, [1e-3, 1e-2, 1e-1, 1e0, 1e1]),
    (Int(1, 3), 5, [1, 2, 3]),                      # repeats collapse
    (Int(1, 1000, log=True), 4, [1, 10, 100, 1000]),
    (Categorical([[256, 256], "wide", None]), 2, ["[256, 256]", "wide", None]),  # every choice, as stored
])
def test_grids(dist, n, grid):
    got = dist.grid(n)
    assert got == pytest.approx(grid, rel=1e-12) if isinstance(dist, LogUniform) else got == grid
    if isinstance(dist, LogUniform):
        assert got[0] == dist.low and got[-1] == dist.high  # end points exact, not 10**log10(x)


def test_search_units_are_log10_for_log_ranges():
    d = LogUniform(1e-5, 1e5)
    assert d.transform(1e-3) == pytest.approx(-3.0) and d.inverse(-3.0) == pytest.approx(1e-3)
    assert d.position(1.0) == pytest.approx(0.5) and Uniform(0, 10).position(2.5) == 0.25


def test_narrowing_clips_and_integers_round_outward_without_collapsing():
    assert LogUniform(1e-4, 1e-1).between(1e-5, 1e-2) == LogUniform(1e-4, 1e-2)
    assert Int(1, 10).between(2.3, 6.2) == Int(2, 7)
    assert Int(1, 10).between(4.0, 4.0) == Int(4, 5)
    assert Int(1, 10).between(10.0, 10.0) == Int(9, 10)  # at the top: the neighbour below


def test_toml_round_trip_through_the_kinds_registry():
    for d in (Uniform(0.1, 0.9), LogUniform(1e-4, 1e-1), Int(1, 64, log=True), Int(0, 3),
              Categorical([[256, 256], [128], "x"])):
        (key, value), *rest = d.to_toml().items()
        kwargs = {"log": True} if rest else {}
        again = KINDS[key](*value, **kwargs) if key != "categorical" else KINDS[key](value)
        assert again == d
    c = Categorical([[256, 256], "x"])
    assert c.decode("[256, 256]") == (256, 256) and c.labels == ["[256, 256]", "x"]


@pytest.mark.parametrize("build, message", [
    (lambda: Uniform(1.0, 1.0), r"Uniform needs low < high, got low=1.0, high=1.0"),
    (lambda: LogUniform(0.0, 1.0), r"LogUniform low must be > 0, got 0.0"),
    (lambda: Int(0, 8, log=True), r"Int low must be >= 1, got 0"),
    (lambda: Int(1, 8, log="yes"), r"Int log must be true or false, got 'yes'"),
    (lambda: Categorical("abc"), r"Categorical choices must be a list, got 'abc'"),
    (lambda: Categorical([]), r"Categorical needs at least one choice, got \[\]"),
    (lambda: Categorical([1, 1]), r"Categorical choices must be distinct, got \[1, 1\]"),
])
def test_refusals_name_the_value(build, message):
    with pytest.raises(RegularkitError, match=message):
        build()


def test_a_float_range_is_not_an_int_range():
    with pytest.raises(RegularkitError, match=r"Int low must be an integer, got 1.5"):
        Int(1.5, 3)
    assert math.isclose(Uniform(0, 1).high, 1.0)
