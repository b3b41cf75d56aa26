"""The verdict: over- or under-fitting, what helps beyond noise, one recommendation chosen on validation."""
from regularkit.metrics.paired import Interval
from regularkit.study import StudyConfig
from regularkit.study.pipeline import run_study
from regularkit.study.results.summary import RecipeSummary
from regularkit.study.results.verdict import make_verdict


def summary(name, train, val, test):
    return RecipeSummary(recipe=name, description="", seeds=[0, 1, 2],
                         stats={"train_error": (train, 0.0), "val_error": (val, 0.0), "test_error": (test, 0.0),
                                "gap": (test - train, 0.0)})


def iv(mean, low, high):
    """A 95% interval over 3 seeds whose p-value agrees with it (below 0.05 exactly when 0 is outside)."""
    return Interval(mean, low, high, 3, "t", p_value=0.01 if low > 0 or high < 0 else 0.5, sd=0.01)


def test_overfitting_baseline_one_recipe_helps_one_hurts():
    summaries = [summary("baseline", 0.0, 0.10, 0.09), summary("good", 0.01, 0.06, 0.05),
                 summary("bad", 0.0, 0.14, 0.13), summary("noise", 0.0, 0.095, 0.088)]
    comparisons = {"good": {"test_error": iv(-0.04, -0.05, -0.03), "val_error": iv(-0.04, -0.06, -0.02)},
                   "bad": {"test_error": iv(0.04, 0.02, 0.06), "val_error": iv(0.04, 0.03, 0.05)},
                   "noise": {"test_error": iv(-0.002, -0.02, 0.016), "val_error": iv(-0.005, -0.03, 0.02)}}
    v = make_verdict(summaries, comparisons, chance_error=0.9, seeds=3)
    assert v.fit == "over-fits" and v.helped == ["good"] and v.hurt == ["bad"] and v.recommended == "good"
    assert "good lowers test error by 4.00 points (95% CI 3.00 to 5.00)" in v.text
    assert "bad raises test error by 4.00 points (95% CI 2.00 to 6.00)" in v.text
    assert "noise cannot be told apart from the baseline with 3 seeds" in v.text


def test_underfitting_baseline_and_nothing_better_keeps_the_baseline():
    summaries = [summary("baseline", 0.6, 0.62, 0.61), summary("l2", 0.65, 0.66, 0.66)]
    comparisons = {"l2": {"test_error": iv(0.05, -0.01, 0.11), "val_error": iv(0.04, -0.02, 0.1)}}
    v = make_verdict(summaries, comparisons, chance_error=0.9, seeds=3)
    assert v.fit == "under-fits" and v.recommended == "baseline" and "keep the baseline" in v.text
    assert "more capacity, more epochs or a better learning rate" in v.text


def test_a_synthetic_study_where_one_recipe_is_clearly_better(tmp_path):
    """The baseline learns with a learning rate 100 times too small; "good" fixes it: the verdict names it."""
    recipes = tmp_path / "r.toml"
    recipes.write_text('[recipes.good]\ndescription = "a working learning rate"\n"optim.lr" = 0.1\n'
                       '[recipes.same]\ndescription = "the baseline again"\n')
    cfg = StudyConfig(recipes=("baseline", "good", "same"), recipe_file=str(recipes), lr=0.001, epochs=4,
                      seeds=3, train_size=200, out=str(tmp_path / "o"))
    result = run_study(cfg, progress=False)
    v = result.verdict
    assert v.recommended == "good" and v.helped == ["good"] and "same" not in v.helped + v.hurt
    assert "Recommendation: good" in (tmp_path / "o" / "report.html").read_text()


def test_a_recommendation_chosen_on_validation_says_when_its_test_difference_is_within_noise():
    summaries = [summary("baseline", 0.08, 0.125, 0.137), summary("erasing", 0.08, 0.123, 0.134),
                 summary("sure", 0.08, 0.124, 0.13)]
    comparisons = {"erasing": {"test_error": iv(-0.0026, -0.0067, 0.0015), "val_error": iv(-0.002, -0.003, -0.001)},
                   "sure": {"test_error": iv(-0.007, -0.009, -0.005), "val_error": iv(-0.001, -0.004, 0.002)}}
    v = make_verdict(summaries, comparisons, chance_error=0.9, seeds=3)
    assert v.recommended == "erasing"  # beyond noise on validation, the choice; test only checks it
    assert v.lines[-1] == ("Recommendation: erasing, the lowest validation error; on test it lowers the error by "
                           "0.26 points (95% CI -0.15 to 0.67), within seed noise.")
    comparisons["erasing"]["test_error"] = iv(-0.0026, -0.004, -0.001)
    assert make_verdict(summaries, comparisons, chance_error=0.9, seeds=3).lines[-1].endswith("(95% CI 0.10 to 0.40).")


def test_a_tta_recipe_is_judged_by_its_error_with_tta_and_says_so():
    summaries = [summary("baseline", 0.08, 0.125, 0.137), summary("tta", 0.11, 0.135, 0.144)]
    summaries[1].stats["tta_test_error"] = (0.1407, 0.0)
    comparisons = {"tta": {"test_error": iv(0.0039, 0.002, 0.006), "val_error": iv(0.01, 0.008, 0.012)}}
    v = make_verdict(summaries, comparisons, chance_error=0.9, seeds=3)
    assert v.hurt == ["tta"] and "tta raises test error (with TTA) by 0.39 points (95% CI 0.20 to 0.60)." in v.text


def test_without_a_baseline_the_verdict_says_why_and_ranks_by_validation():
    summaries = [summary("dropout", 0.0, 0.08, 0.07), summary("l2", 0.0, 0.06, 0.07)]
    v = make_verdict(summaries, {}, chance_error=0.9, seeds=3)
    assert v.fit == "unknown" and v.recommended == "l2" and v.within_noise
    assert v.lines[0].startswith("There is no baseline run") and "By validation error: l2 6.00%, dropout 8.00%." in v.text


def test_a_diverged_baseline_is_named_and_nothing_is_compared():
    summaries = [summary("baseline", 0.0, 0.1, 0.1), summary("l2", 0.0, 0.06, 0.07)]
    summaries[0].diverged = [{"seed": 0, "epoch": 1, "step": 2, "value": float("nan")}]
    v = make_verdict(summaries, {}, chance_error=0.9, seeds=3)
    assert "The baseline diverged (1 of 3 seeds)" in v.text and v.recommended == "l2"
    summaries[1].diverged = [{"seed": 0, "epoch": 1, "step": 2, "value": float("nan")}]
    v = make_verdict(summaries, {}, chance_error=0.9, seeds=3)
    assert v.recommended is None and "nothing to recommend" in v.text and "l2 diverged" in v.text


def test_undecided_recipes_get_the_seeds_that_would_settle_them():
    summaries = [summary("baseline", 0.0, 0.10, 0.09), summary("l2", 0.0, 0.095, 0.085),
                 summary("flat", 0.0, 0.10, 0.09)]
    comparisons = {"l2": {"test_error": Interval(-0.005, -0.012, 0.002, 3, "t", sd=0.003, p_value=0.09),
                          "val_error": iv(-0.005, -0.01, 0.001)},
                   "flat": {"test_error": Interval(0.0001, -0.02, 0.02, 3, "t", sd=0.01, p_value=0.98),
                            "val_error": iv(0.0, -0.01, 0.01)}}
    v = make_verdict(summaries, comparisons, chance_error=0.9, seeds=3)
    assert v.seeds_needed["flat"] is None and 3 < v.seeds_needed["l2"] < 20
    assert (f"l2, flat cannot be told apart from the baseline with 3 seeds; if the observed differences are real, "
            f"these numbers of seeds would show them (80% power): l2 {v.seeds_needed['l2']}; flat shows no "
            "detectable difference.") in v.text
    assert "Intervals are adjusted for the 2 recipes compared (each at 97.5%)" in v.text


def test_a_zero_test_difference_is_worded_as_unchanged_and_a_worse_calibration_is_flagged():
    summaries = [summary("baseline", 0.0, 0.10, 0.09), summary("smooth", 0.0, 0.08, 0.09)]
    comparisons = {"smooth": {"test_error": Interval(0.0, -0.01, 0.01, 3, "t", sd=0.004, p_value=1.0),
                              "val_error": iv(-0.02, -0.03, -0.01), "ece": iv(0.077, 0.05, 0.1)}}
    v = make_verdict(summaries, comparisons, chance_error=0.9, seeds=3)
    assert "on test it leaves the error unchanged on average (95% CI -1.00 to 1.00)" in v.text
    assert "raises the error by 0.00" not in v.text
    assert v.calibration_worse and "smooth worsens calibration, its ECE is higher by 7.70 points" in v.text
    assert v.recommended == "smooth" and not v.within_noise
