"""study/statistics.py: each recipe against the baseline, paired by seed; a TTA recipe by its TTA error."""
import numpy as np
import pytest
from scipy import stats

from regularkit.study.statistics import compare_to_baseline
from regularkit.study.summary import summarize


def record(recipe, seed, test, *, tta=None, diverged=None):
    extra = {"ece": 0.02}
    if tta is not None:
        extra["tta_test_error"] = tta
    return {"recipe": recipe, "seed": seed, "diverged": diverged, "extra": extra, "history": [],
            "final": {"train_error": 0.05, "val_error": test - 0.01, "test_error": test, "gap": test - 0.05}}


BASE = [0.137, 0.136, 0.137]
PLAIN = [0.145, 0.143, 0.146]
TTA = [0.141, 0.140, 0.141]


def hand_t(a, b):
    d = np.array(a) - np.array(b)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


def test_a_tta_recipe_is_compared_by_its_tta_error_the_others_by_their_test_error():
    records = ([record("baseline", k, e) for k, e in enumerate(BASE)]
               + [record("flip-crop", k, e) for k, e in enumerate(PLAIN)]
               + [record("tta", k, e, tta=t) for k, (e, t) in enumerate(zip(PLAIN, TTA))])
    summaries = summarize(records, ["baseline", "flip-crop", "tta"])
    assert [s.with_tta for s in summaries] == [False, False, True]
    out = compare_to_baseline(summaries, records)
    for name, errors in (("flip-crop", PLAIN), ("tta", TTA)):
        iv = out[name]["test_error"]
        assert (iv.mean, iv.low, iv.high) == pytest.approx(hand_t(errors, BASE), abs=1e-12)
    # the gap is the model's, without TTA, for both
    assert out["tta"]["gap"].mean == pytest.approx(out["flip-crop"]["gap"].mean)
    summaries[2].deltas = out["tta"]
    assert summaries[2].row()["delta_test_error_with_tta"] is True


def test_a_recipe_with_a_diverged_run_is_not_compared_and_no_baseline_means_no_comparison():
    diverged = {"epoch": 1, "step": 3, "value": float("nan")}
    records = ([record("baseline", k, e) for k, e in enumerate(BASE)]
               + [record("l2", 0, 0.13), record("l2", 1, 0.13), record("l2", 2, 0.9, diverged=diverged)]
               + [record("l1", k, e) for k, e in enumerate(PLAIN)])
    summaries = summarize(records, ["baseline", "l2", "l1"])
    out = compare_to_baseline(summaries, records)
    assert "l2" not in out and out["l1"]["test_error"].n == 3  # never a difference computed from a diverged run
    assert compare_to_baseline(summaries[1:], records[3:]) == {}
