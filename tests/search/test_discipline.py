"""``search.discipline.final_test``: the test set is looked at once per study, and every look is recorded.

On an in-memory Optuna study: the best trial's configuration (plus given params) reaches ``evaluate``;
a second look is refused with a message naming the study and the first look's value; ``force=True``
looks again and is recorded as forced; a crashed evaluation still counts as a look (recorded before it).
"""
import math

import optuna
import pytest

from regularkit.errors import RegularkitError
from regularkit.search.discipline import FINAL_ATTR, final_test, final_test_record

optuna.logging.set_verbosity(optuna.logging.WARNING)


def study(name="s"):
    s = optuna.create_study(study_name=name, sampler=optuna.samplers.RandomSampler(seed=0))
    s.optimize(lambda t: (t.suggest_float("lr", 0.0, 1.0) - 0.3) ** 2, n_trials=6)
    return s


def test_the_best_configuration_is_evaluated_once_and_recorded():
    s = study()
    seen, logged = [], []
    value = final_test(s, lambda cfg: seen.append(cfg) or 0.125, log=logged.append)
    assert value == 0.125 and seen == [s.best_params]
    (look,) = final_test_record(s)
    assert look["params"] == s.best_params and look["value"] == 0.125 and look["forced"] is False
    assert look["started"] <= look["finished"]
    assert logged == [f"test: 0.125000 for {s.best_params}"]


def test_a_second_look_is_refused_unless_forced_and_a_forced_look_is_kept_in_the_history():
    s = study("twice")
    final_test(s, lambda cfg: 0.2, log=None)
    with pytest.raises(RegularkitError, match=r"final_test already ran for study 'twice' at .* \(test value "
                                              r"0\.200000\); the test set is used once"):
        final_test(s, lambda cfg: 0.1, log=None)
    logged = []
    assert final_test(s, lambda cfg: 0.1, force=True, log=logged.append) == 0.1
    assert [r["forced"] for r in final_test_record(s)] == [False, True]
    assert logged[0].endswith("(look 2, forced)")


def test_a_crashed_evaluation_counts_as_a_look():
    s = study("crash")

    def boom(cfg):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        final_test(s, boom, log=None)
    (look,) = s.user_attrs[FINAL_ATTR]
    assert look["value"] is None and "finished" not in look
    with pytest.raises(RegularkitError, match=r"\(it did not finish\)"):
        final_test(s, lambda cfg: 0.0, log=None)


def test_given_params_replace_the_best_and_a_non_finite_value_is_stored_as_none():
    s = study("params")
    got = []
    value = final_test(s, lambda cfg: got.append(cfg) or math.nan, params={"lr": 0.5, "epochs": 3}, log=None)
    assert math.isnan(value) and got == [{"lr": 0.5, "epochs": 3}]
    assert final_test_record(s)[0]["value"] is None


def test_refusals_name_what_was_given():
    with pytest.raises(RegularkitError, match=r"final_test needs a SearchResult, CoarseToFineResult or optuna "
                                              r"Study, got 3"):
        final_test(3, lambda cfg: 0.0)
    empty = optuna.create_study(study_name="empty")
    with pytest.raises(RegularkitError, match=r"study 'empty' has no completed trial"):
        final_test(empty, lambda cfg: 0.0, log=None)
