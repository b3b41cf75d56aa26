"""study/results/fit.py: the baseline's fit from its errors and curves, on constructed histories and the issue's cases."""
import pytest

from regularkit.study.results.fit import diagnose_fit, still_falling, turned_up
from regularkit.study.results.summary import RecipeSummary


def base(train, test, *, train_curve=(), val_curve=()):
    return RecipeSummary("baseline", "", [0, 1, 2],
                         stats={"train_error": (train, 0.0), "test_error": (test, 0.0), "gap": (test - train, 0.0)},
                         curves={"train_error": list(train_curve), "val_error": list(val_curve)})


def test_the_readme_default_over_fits():
    fit = diagnose_fit(base(0.0, 0.0667, train_curve=[0.3, 0.05] + [0.0] * 98), chance=0.9)
    assert fit.call == "over-fits"
    assert fit.sentence == ("The baseline over-fits: 0.00% training error against 6.67% test error, a gap of "
                            "6.67 points, so there is room for regularization.")


@pytest.mark.parametrize("train, test, curve", [
    (0.1942, 0.2010, [0.32, 0.25, 0.215, 0.1942]),   # Fashion-MNIST CNN 8-16, 4 epochs (issue 24)
    (0.225, 0.238, [0.40, 0.30, 0.26, 0.24, 0.23, 0.226, 0.225, 0.225]),   # an image set, flat at 22.5 %
    (0.301, 0.312, [0.5] + [0.301] * 11),            # an image set, flat at 30.1 %
])
def test_high_training_error_with_a_small_gap_under_fits(train, test, curve):
    fit = diagnose_fit(base(train, test, train_curve=curve), chance=0.9)
    assert fit.call == "under-fits" and "more capacity, more epochs" in fit.sentence


def test_a_large_gap_with_a_high_training_error_is_both_and_says_regularization_closes_the_gap():
    # the CSV case of issue 24: a 12-point gap was called "under-fits ... not what this model needs first"
    fit = diagnose_fit(base(0.31, 0.43, train_curve=[0.5, 0.35, 0.31, 0.31]), chance=0.6)
    assert fit.call == "under- and over-fits" and "regularization can close the gap" in fit.sentence


def test_still_falling_and_turned_up_on_constructed_curves():
    assert still_falling([0.5, 0.4, 0.3, 0.2])               # 10 points over the last quarter
    assert not still_falling([0.5, 0.2, 0.1, 0.1])           # flat at the end
    assert not still_falling([0.05, 0.02, 0.008, 0.005])     # below 1 %: nothing left to fit
    assert not still_falling([0.2, 0.2])                     # too short to tell
    assert turned_up([0.3, 0.1, 0.08, 0.09, 0.11, 0.12])     # minimum 8 %, ends at 12 %
    assert not turned_up([0.3, 0.1, 0.08, 0.08, 0.081, 0.082])  # within 0.5 points
    assert not turned_up([0.3, 0.2, 0.1, 0.05])


def test_a_val_curve_turning_up_over_fits_even_with_a_small_final_gap():
    fit = diagnose_fit(base(0.02, 0.035, train_curve=[0.1, 0.05, 0.02, 0.02],
                            val_curve=[0.2, 0.05, 0.03, 0.03, 0.04, 0.045, 0.05, 0.05]), chance=0.9)
    assert fit.call == "over-fits" and "validation error rose" in fit.sentence


def test_a_well_fitted_baseline_generalizes():
    fit = diagnose_fit(base(0.02, 0.03, train_curve=[0.1, 0.03, 0.02, 0.02]), chance=0.9)
    assert fit.call == "fits" and "generalizes well already" in fit.sentence


def test_a_negative_gap_is_not_called_twice_the_gap():
    """Test error below training error (a small, easy test set): the reason says so, not 'twice -2.85 points'."""
    fit = diagnose_fit(base(0.2368, 0.2083, train_curve=[0.4] + [0.2368] * 7), chance=0.66)
    assert fit.call == "under-fits"
    assert "its training error 23.68% is as high as its test error (a gap of -2.85 points)" in fit.sentence
    assert "twice" not in fit.sentence
    positive = diagnose_fit(base(0.2368, 0.2500, train_curve=[0.4] + [0.2368] * 7), chance=0.66)
    assert "is more than twice the gap of 1.32 points" in positive.sentence
