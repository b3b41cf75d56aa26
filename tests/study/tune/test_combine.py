"""--combine: which recipes qualify (validation only), how their overrides merge, what cannot join."""
import pytest

from regularkit.errors import RegularkitError
from regularkit.metrics.paired import Interval
from regularkit.study import StudyConfig
from regularkit.study.tune.combine import COMBINED, combined_recipe, helped_on_validation, joint_space
from regularkit.study.recipes import STRENGTHS, resolve
from regularkit.train.config import EarlyStoppingConfig, RegConfig


def _iv(mean, low, high, n=3):
    return Interval(mean=mean, low=low, high=high, n=n, method="t", p_value=0.01 if low > 0 or high < 0 else 0.5)


def test_only_recipes_below_the_baseline_beyond_noise_on_validation_qualify_best_first():
    comparisons = {
        "l2": {"val_error": _iv(-0.010, -0.02, -0.001), "test_error": _iv(0.5, 0.4, 0.6)},
        "dropout": {"val_error": _iv(-0.030, -0.05, -0.010)},
        "mixup": {"val_error": _iv(-0.020, -0.04, 0.001)},       # straddles 0: noise
        "ema": {"val_error": _iv(0.020, 0.010, 0.030)},          # worse beyond noise
        "swa": {"test_error": _iv(-0.5, -0.6, -0.4)},            # test never decides
        "tta": {"val_error": _iv(-0.5, -0.6, -0.4, n=1)},        # one pair: no interval
    }
    assert helped_on_validation(comparisons) == ["dropout", "l2"]


def _recipes(names):
    base = StudyConfig().base_recipe()
    return base, {r.name: r for r in resolve(names, base)}


def test_overrides_of_every_taken_recipe_are_applied_together():
    base, recipes = _recipes(["l2", "dropout", "label-smoothing"])
    recipe, taken = combined_recipe(["dropout", "l2", "label-smoothing"], recipes, base)
    assert taken == ["dropout", "l2", "label-smoothing"] and recipe.name == COMBINED
    assert recipe.reg.l2 == recipes["l2"].reg.l2 and recipe.model.dropout == recipes["dropout"].model.dropout
    assert recipe.reg.label_smoothing == recipes["label-smoothing"].reg.label_smoothing
    assert recipe.optim == base.optim  # nothing else changed


def test_the_better_recipe_wins_a_field_both_set():
    base, recipes = _recipes(["dropout", "dropout-cookbook"])
    assert recipes["dropout"].model.dropout != recipes["dropout-cookbook"].model.dropout
    for order in (["dropout", "dropout-cookbook"], ["dropout-cookbook", "dropout"]):
        recipe, taken = combined_recipe(order, recipes, base)
        assert taken == order and recipe.model.dropout == recipes[order[0]].model.dropout
        # a field only the second sets still comes along
        assert recipe.model.input_dropout == recipes["dropout-cookbook"].model.input_dropout


def test_two_ways_of_choosing_the_final_weights_cannot_join_and_the_description_says_so():
    base, recipes = _recipes(["early-stopping", "swa", "l2"])
    recipe, taken = combined_recipe(["early-stopping", "swa", "l2"], recipes, base)
    assert taken == ["early-stopping", "l2"]
    assert recipe.reg.swa_start is None and recipe.reg.early_stopping is not None
    assert "left out" in recipe.description and "swa" in recipe.description


@pytest.mark.parametrize("fields", [
    dict(early_stopping=EarlyStoppingConfig(), swa_start=0.75),
    dict(ema_decay=0.99, swa_start=0.75),
    dict(ema_decay=0.99, snapshot_cycles=3),
    dict(early_stopping=EarlyStoppingConfig(), ema_decay=0.99),
])
def test_a_recipe_may_choose_its_final_weights_one_way_only(fields):
    with pytest.raises(RegularkitError, match=r"each choose the final weights .* use one of them, got 2"):
        RegConfig(**fields)


def test_joint_space_has_one_range_per_field_and_keeps_the_couplings():
    space, strengths = joint_space(["l2", "dropout", "dropout-classic", "elastic-net"], None)
    assert set(space) == {STRENGTHS["l2"].field, STRENGTHS["dropout"].field, STRENGTHS["elastic-net"].field}
    assert STRENGTHS["elastic-net"] in strengths  # l2 follows l1 in the combined search too
    assert joint_space(["init-he", "seed-ensemble"], None) is None  # architecture swaps have no strength
