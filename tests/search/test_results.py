"""``search.results``: a search's result read back from its Optuna study alone (any process can report it).

Worked example: an in-memory study with a known objective, a failed and a pruned trial; the best trial,
the fixed parameters, the border warning, JSON-able ``to_dict``, and the space rebuilt from Optuna's
distributions when the study does not carry regularkit's.
"""
import json
import math

import optuna
import pytest

from regularkit.errors import RegularkitError
from regularkit.search.distributions import Categorical, Int, LogUniform, Uniform
from regularkit.search.results import FIXED_ATTR, SAMPLER_ATTR, SPACE_ATTR, collect, result_from_study
from regularkit.search.space import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = SearchSpace({"reg.l2": LogUniform(1e-5, 1e-1), "train.lr": Uniform(0.01, 1.0), "epochs": Int(1, 9)})


def study(direction="minimize", *, attrs=True):
    s = optuna.create_study(direction=direction, sampler=optuna.samplers.RandomSampler(seed=0))
    if attrs:
        s.set_user_attr(SPACE_ATTR, SPACE.to_dict())
        s.set_user_attr(FIXED_ATTR, {"model.kind": "mlp"})
        s.set_user_attr(SAMPLER_ATTR, "random")

    def objective(trial):
        p = SPACE.suggest(trial)
        if trial.number == 2:
            raise optuna.TrialPruned()
        if trial.number == 3:
            return float("nan")  # a diverged run: never the best
        return (p["train.lr"] - 0.3) ** 2 + p["epochs"] / 100

    s.optimize(objective, n_trials=8)
    return s


def test_the_best_trial_and_its_config_are_read_from_the_study():
    s = study()
    result = result_from_study(s)
    scored = [t for t in s.trials if t.state.name == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    best = min(scored, key=lambda t: t.value)
    assert result.best_value == best.value and result.best_params == best.params
    assert result.best_config == {"model.kind": "mlp", **best.params}  # the fixed params added
    assert [t.number for t in result.trials] == list(range(8))
    assert result.trials[2].state == "PRUNED" and 2 not in [t.number for t in result.completed]
    assert 3 not in [t.number for t in result.completed]  # NaN is not a completed score
    assert (result.sampler, result.direction, result.lost) == ("random", "minimize", [])


def test_maximize_picks_the_largest_and_to_dict_is_json():
    result = result_from_study(study("maximize"))
    finite = [t.value for t in result.completed if math.isfinite(t.value)]
    assert result.best_value == max(finite)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["best_value"] == result.best_value and len(data["trials"]) == 8
    assert SearchSpace.from_dict(data["space"]) == SPACE


def test_a_best_value_near_the_edge_of_its_range_warns():
    """The best learning rate, 0.02, lies within 10 % of the range (0.01, 1.0) from its low end, not within 0.1 %."""
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    s.enqueue_trial({"reg.l2": 1e-3, "train.lr": 0.02, "epochs": 5})
    s.optimize(lambda t: SPACE.suggest(t)["train.lr"], n_trials=5)
    wide = collect(s, SPACE, sampler="random", storage=None, fixed={}, edge_fraction=0.1)
    assert wide.best_params["train.lr"] == 0.02
    assert any("train.lr" in w for w in wide.warnings)
    narrow = collect(s, SPACE, sampler="random", storage=None, fixed={}, edge_fraction=0.001)
    assert not any("train.lr" in w for w in narrow.warnings)


def test_without_regularkits_attributes_the_space_comes_from_optunas_distributions():
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    s.optimize(lambda t: t.suggest_float("a", 0.1, 1.0, log=True) + t.suggest_int("b", 1, 3)
               + (t.suggest_categorical("c", ["x", "y"]) == "x") + t.suggest_float("d", 0.0, 1.0), n_trials=4)
    result = result_from_study(s)
    assert dict(result.space) == {"a": LogUniform(0.1, 1.0), "b": Int(1, 3), "c": Categorical(["x", "y"]),
                                  "d": Uniform(0.0, 1.0)}
    assert result.sampler == "unknown" and result.fixed == {}
    with pytest.raises(RegularkitError, match=r"study 'empty' has no completed trial to read a search space from"):
        result_from_study(optuna.create_study(study_name="empty"))
