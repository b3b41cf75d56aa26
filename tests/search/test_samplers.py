"""Sampler and pruner registries: names to Optuna objects; TPE's random start fits a short search."""
import optuna
import pytest
from search_objectives import bowl

from regularkit.errors import RegularkitError
from regularkit.search import LogUniform, SearchSpace, Uniform, run_search
from regularkit.search.samplers import check_sampler_args, check_seed, make_pruner, make_sampler, startup_trials

SPACE = SearchSpace(lr=LogUniform(1e-6, 1e-1), dropout=Uniform(0.0, 0.5))


@pytest.mark.parametrize("total, expected", [(None, 10), (3, 2), (8, 2), (9, 3), (24, 8), (30, 10), (300, 10)])
def test_tpe_starts_randomly_for_a_third_of_a_short_search(total, expected):
    assert startup_trials(total) == expected
    sampler = make_sampler("tpe", SPACE, seed=0, total=total)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._n_startup_trials == expected


def test_names_give_optuna_objects_and_unknown_names_are_refused():
    assert isinstance(make_sampler("random", SPACE, seed=0), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("grid", SPACE, seed=0), optuna.samplers.GridSampler)
    mine = optuna.samplers.QMCSampler(seed=0)
    assert make_sampler(mine, SPACE, seed=0) is mine  # an Optuna sampler is used as it is
    assert isinstance(make_pruner("halving"), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner(None), optuna.pruners.NopPruner)
    with pytest.raises(RegularkitError, match="sampler must be one of"):
        make_sampler("cmaes", SPACE, seed=0)


def test_enqueued_configurations_come_first_once_and_must_lie_in_the_space(tmp_path):
    seen = []

    def objective(params, report):
        seen.append(params)
        return bowl(params)

    first = {"lr": 1e-3, "dropout": 0.25}
    run_search(objective, SPACE, sampler="tpe", n_trials=3, storage=str(tmp_path / "j"), study_name="s",
               enqueue=[first], log=None)
    assert seen[0] == first and len(seen) == 3
    run_search(objective, SPACE, sampler="tpe", n_trials=5, storage=str(tmp_path / "j"), study_name="s",
               enqueue=[first], log=None)  # resumed: not enqueued again
    assert len(seen) == 5 and seen[3:].count(first) == 0
    with pytest.raises(RegularkitError, match=r"enqueued lr = 1.0 is outside \[1e-06, 0.1\]"):
        run_search(objective, SPACE, n_trials=1, enqueue=[{"lr": 1.0, "dropout": 0.0}], log=None)
    with pytest.raises(RegularkitError, match=r"must give exactly \['dropout', 'lr'\], got \{'lr': 0.001\}"):
        run_search(objective, SPACE, n_trials=1, enqueue=[{"lr": 1e-3}], log=None)


@pytest.mark.parametrize("seed, message", [(-1, r"^seed must be >= 0, got -1$"),
                                           (2**32, r"^seed must be <= 4294967295, got 4294967296$"),
                                           (1.5, r"^seed must be an integer, got 1\.5$")])
def test_a_seed_numpy_cannot_take_is_refused_before_the_storage_is_opened(tmp_path, seed, message):
    """Issue 23: ``search --seed -1`` ended in NumPy's ValueError from inside Optuna's sampler."""
    with pytest.raises(RegularkitError, match=message):
        check_sampler_args("random", SPACE, 5, seed=seed)
    with pytest.raises(RegularkitError, match=message):
        run_search(bowl, SPACE, n_trials=1, seed=seed, storage=str(tmp_path / "s.journal"))
    assert list(tmp_path.iterdir()) == []
    assert check_seed(2**32 - 1) == 2**32 - 1
    make_sampler("random", SPACE, seed=2**32 - 1)  # the largest seed is one Optuna takes
