"""study/results/statistics.py: each recipe against the baseline, paired by seed; a TTA recipe by its TTA error."""
import numpy as np
import pytest
from scipy import stats

from regularkit.study.results.statistics import compare_to_baseline
from regularkit.study.results.summary import summarize


def record(recipe, seed, test, *, tta=None, diverged=None):
    extra = {"ece": 0.02}
    if tta is not None:
        extra["tta_test_error"] = tta
    return {"recipe": recipe, "seed": seed, "diverged": diverged, "extra": extra, "history": [],
            "final": {"train_error": 0.05, "val_error": test - 0.01, "test_error": test, "gap": test - 0.05}}


BASE = [0.137, 0.136, 0.137]
PLAIN = [0.145, 0.143, 0.146]
TTA = [0.141, 0.140, 0.141]


def hand_t(a, b, confidence=0.95):
    d = np.array(a) - np.array(b)
    half = stats.t.ppf((1 + confidence) / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


def test_a_tta_recipe_is_compared_by_its_tta_error_the_others_by_their_test_error():
    records = ([record("baseline", k, e) for k, e in enumerate(BASE)]
               + [record("flip-crop", k, e) for k, e in enumerate(PLAIN)]
               + [record("tta", k, e, tta=t) for k, (e, t) in enumerate(zip(PLAIN, TTA))])
    summaries = summarize(records, ["baseline", "flip-crop", "tta"])
    assert [s.with_tta for s in summaries] == [False, False, True]
    out = compare_to_baseline(summaries, records)
    for name, errors in (("flip-crop", PLAIN), ("tta", TTA)):
        iv = out[name]["test_error"]  # two recipes compared: each at 1 - 0.05 / 2
        assert iv.comparisons == 2 and iv.confidence == pytest.approx(0.975)
        assert (iv.mean, iv.low, iv.high) == pytest.approx(hand_t(errors, BASE, 0.975), abs=1e-12)
        raw = iv.at(0.95, 1)
        assert (raw.mean, raw.low, raw.high) == pytest.approx(hand_t(errors, BASE), abs=1e-12)
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


def test_the_verdicts_calls_are_the_adjusted_t_calls_of_the_simulation():
    """The full path (records -> compare_to_baseline -> make_verdict) calls exactly what the simulated
    rule of tests/metrics/test_paired.py calls, so its family-wise rate (<= 5 % with 8 null recipes) holds
    for the verdict."""
    from regularkit.metrics.paired import t_bounds
    from regularkit.study.results.verdict import make_verdict

    rng = np.random.default_rng(3)
    called = 0
    for _ in range(60):
        seed_effect = rng.normal(0.10, 0.01, 3)
        base = seed_effect + rng.normal(0, 0.005, 3)
        recipes = {f"r{j}": seed_effect + rng.normal(0, 0.005, 3) + (-0.02 if j == 0 else 0.0) for j in range(8)}
        records = [record("baseline", k, e) for k, e in enumerate(base)]
        records += [record(n, k, e) for n, errs in recipes.items() for k, e in enumerate(errs)]
        summaries = summarize(records, ["baseline", *recipes])
        v = make_verdict(summaries, compare_to_baseline(summaries, records), chance_error=0.9, seeds=3)
        expected = set()
        for n, errs in recipes.items():
            d = errs - base
            low, high = t_bounds(d.mean(), d.std(ddof=1), 3, 1 - 0.05 / 8)
            if low > 0 or high < 0:
                expected.add(n)
        assert set(v.helped) | set(v.hurt) == expected and v.comparisons == 8
        called += "r0" in expected
    assert called > 0  # the real effect is found sometimes: the rule is not "never claim"
