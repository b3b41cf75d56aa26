"""Search spaces: log-uniform covers decades evenly, TOML round-trips, bad input is named."""
import collections
import math

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regularkit.errors import RegularkitError
from regularkit.search import Categorical, Int, LogUniform, SearchSpace, Uniform, run_search


def test_log_uniform_gives_each_decade_its_share():
    # The slide's reg = 10**uniform(-5, 5): 2000 random-sampler draws, ten decades, 10% +- 3% each.
    space = SearchSpace(reg=LogUniform(1e-5, 1e5))
    result = run_search(lambda params, report: 0.0, space, sampler="random", n_trials=2000, seed=0, log=None)
    decades = collections.Counter(math.floor(math.log10(t.params["reg"])) for t in result.trials)
    assert sorted(decades) == list(range(-5, 5))
    for decade, count in decades.items():
        assert abs(count / 2000 - 0.10) <= 0.03, (decade, count)


def test_uniform_is_not_log_spaced():
    # Reference contrast: a plain Uniform over [0, 1e5] puts ~90% of draws in the top decade.
    space = SearchSpace(x=Uniform(0.0, 1e5))
    result = run_search(lambda params, report: 0.0, space, n_trials=500, log=None)
    top = sum(t.params["x"] >= 1e4 for t in result.trials) / 500
    assert 0.85 <= top <= 0.95


def test_suggest_returns_values_of_each_kind():
    space = SearchSpace(lr=LogUniform(1e-4, 1e-1), batch_size=Int(32, 256, log=True),
                        widths=Categorical([[256, 256], [512]]), act=Categorical(["relu", "gelu"]))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        params = space.suggest(study.ask())
        assert 1e-4 <= params["lr"] <= 1e-1
        assert isinstance(params["batch_size"], int) and 32 <= params["batch_size"] <= 256
        assert params["widths"] in {(256, 256), (512,)}  # lists come back as the choices, not labels
        assert params["act"] in {"relu", "gelu"}


def test_grid_points_are_log_spaced_for_log_ranges():
    assert LogUniform(1e-4, 1e-1).grid(4) == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1], rel=1e-12)
    assert LogUniform(1e-4, 1e-1).grid(4)[0] == 1e-4 and LogUniform(1e-4, 1e-1).grid(4)[-1] == 1e-1
    assert Uniform(0.0, 0.5).grid(3) == [0.0, 0.25, 0.5]
    assert Int(1, 3).grid(10) == [1, 2, 3]              # no duplicate integers
    assert Int(1, 1000, log=True).grid(4) == [1, 10, 100, 1000]
    assert Categorical([[1, 2], [3]]).grid(99) == ["[1, 2]", "[3]"]


TOML = """
[space]
lr = {log_uniform = [1e-4, 1e-1]}
dropout = {uniform = [0.0, 0.5]}
batch_size = {int = [32, 256], log = true}
widths = {categorical = [[256, 256], [512]]}
augment.mixup_alpha = {uniform = [0.0, 1.0]}
"""


def test_from_toml_reads_every_kind_and_dotted_names(tmp_path):
    expected = SearchSpace({"lr": LogUniform(1e-4, 1e-1), "dropout": Uniform(0.0, 0.5),
                            "batch_size": Int(32, 256, log=True), "widths": Categorical([[256, 256], [512]]),
                            "augment.mixup_alpha": Uniform(0.0, 1.0)})
    assert SearchSpace.from_toml(TOML) == expected
    path = tmp_path / "space.toml"
    path.write_text(TOML)
    assert SearchSpace.from_toml(path) == expected
    assert SearchSpace.from_toml(str(path)) == expected
    # The written form is one inline table per line and reads back equal.
    text = expected.to_toml()
    assert 'lr = {log_uniform = [0.0001, 0.1]}' in text and '"augment.mixup_alpha" = {uniform' in text
    assert SearchSpace.from_toml(text) == expected


_bounds = st.tuples(st.floats(-1e6, 1e6), st.floats(1e-3, 1e6)).map(lambda t: (t[0], t[0] + t[1]))
_dists = st.one_of(
    _bounds.map(lambda b: Uniform(*b)),
    st.tuples(st.floats(-8, 8), st.floats(0.01, 8)).map(lambda t: LogUniform(10 ** t[0], 10 ** (t[0] + t[1]))),
    st.tuples(st.integers(1, 1000), st.integers(1, 1000), st.booleans()).map(
        lambda t: Int(t[0], t[0] + t[1], log=t[2])),
    st.lists(st.one_of(st.integers(-5, 5), st.text("abc", min_size=1, max_size=3),
                       st.lists(st.integers(1, 512), min_size=1, max_size=3)),
             min_size=1, max_size=4, unique_by=repr).map(Categorical),
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,5}(\.[a-z][a-z0-9_]{0,5})?", fullmatch=True), _dists,
                       min_size=1, max_size=5))
def test_toml_round_trip_property(params):
    space = SearchSpace(params)
    assert SearchSpace.from_toml(space.to_toml()) == space
    assert SearchSpace.from_dict(space.to_dict()) == space


@pytest.mark.parametrize("make, match", [
    (lambda: LogUniform(0.0, 1.0), r"LogUniform low must be > 0, got 0.0"),
    (lambda: LogUniform(1e-1, 1e-4), r"LogUniform needs low < high, got low=0.1, high=0.0001"),
    (lambda: Uniform(1.0, 1.0), r"Uniform needs low < high, got low=1.0, high=1.0"),
    (lambda: Uniform(0.0, float("inf")), r"Uniform high must be finite, got inf"),
    (lambda: Int(0, 10, log=True), r"Int low must be >= 1, got 0"),
    (lambda: Int(1.5, 10), r"Int low must be an integer, got 1.5"),
    (lambda: Categorical([]), r"Categorical needs at least one choice, got \[\]"),
    (lambda: Categorical(["a", "a"]), r"Categorical choices must be distinct, got \['a', 'a'\]"),
    (lambda: Categorical("ab"), r"Categorical choices must be a list, got 'ab'"),
    (lambda: SearchSpace({"2lr": Uniform(0, 1)}), r"dotted identifiers .*got '2lr'"),
    (lambda: SearchSpace({"lr": (0, 1)}), r"space\['lr'\] must be Uniform, LogUniform, Int or Categorical, got \(0, 1\)"),
    (lambda: SearchSpace({}), r"at least one parameter"),
])
def test_bad_distributions_are_named(make, match):
    with pytest.raises(RegularkitError, match=match):
        make()


@pytest.mark.parametrize("text, match", [
    ("[space]\nlr = {log_uniform = [0, 1]}", r"space.lr: LogUniform low must be > 0, got 0$"),
    ("[space]\nlr = {loguniform = [1, 2]}", r"space.lr needs one of uniform, log_uniform, int, categorical, "
                                              r"got keys \['loguniform'\]"),
    ("[space]\nlr = {uniform = [1, 2], int = [1, 2]}", r"exactly one of .*got keys \['int', 'uniform'\]"),
    ("[space]\nlr = {uniform = [1, 2, 3]}", r"space.lr: uniform takes \[low, high\], got \[1, 2, 3\]"),
    ("[space]\nlr = 0.1", r"space.lr must be a table like .*got 0.1"),
    ("[other]\nlr = {uniform = [1, 2]}", r"no \[space\] table in TOML text; found tables \['other'\]"),
    ("[space\nlr = 1", r"invalid TOML in search space text"),
])
def test_bad_toml_is_named(text, match):
    with pytest.raises(RegularkitError, match=match):
        SearchSpace.from_toml(text)


def test_missing_toml_file_is_named(tmp_path):
    with pytest.raises(RegularkitError, match=r"TOML file not found: .*nope.toml"):
        SearchSpace.from_toml(tmp_path / "nope.toml")


def test_grid_points_must_name_space_parameters():
    with pytest.raises(RegularkitError, match=r"grid_points names 'wd', which is not in the space \['lr'\]"):
        SearchSpace(lr=Uniform(0, 1)).grid({"wd": 3})
    with pytest.raises(RegularkitError, match=r"grid_points\['lr'\] must be >= 2, got 1"):
        SearchSpace(lr=Uniform(0, 1)).grid(1)
