"""Self-distillation's teacher: the mean of the baseline seeds' stored training-set probabilities (NumPy), read
from the ledger; each row's teacher reaches the loss with its example however fit shuffles; the plan's refusals;
a study `baseline,distill` interrupted in its distill runs resumes with the teacher found on disk."""
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from optuna.trial import TrialState

from regularkit.data.splits import Splits
from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig, resolve
from regularkit.study.run import execute, ledger
from regularkit.study.run.artifacts import load_train_probs, open_store, save_outputs
from regularkit.study.run.execute import run_recipe
from regularkit.study.pipeline import run_study
from regularkit.study.plan import Job
from regularkit.study.run.teacher import (
    TaughtSplits,
    average_teacher,
    check_teacher,
    first_phase,
    keeps_train_probs,
    with_teacher,
    without_pupils,
)

N, K = 30, 4
BASE = StudyConfig(epochs=3, batch_size=8).base_recipe()
BASELINE, DISTILL, L2 = resolve(["baseline", "distill", "l2"], BASE)


@dataclass(frozen=True)
class Data:
    splits: Splits


@dataclass(frozen=True)
class Cfg:
    tune: int | None = None


@dataclass(frozen=True)
class FakePlan:
    """The fields of study.plan.Plan that the teacher reads."""
    recipes: list
    jobs: dict
    data: Data
    skipped: dict = field(default_factory=dict)
    cfg: Cfg = Cfg()


def toy_splits(n=N, k=K, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = torch.arange(n) % k
    return Splits(x, y, x[:12], y[:12], x[:12], y[:12], k, (6,), kind="vectors")


def plan_for(recipes, seeds=3, tune=None):
    jobs = {f"{r.name}/seed{s}": Job(r, s) for r in recipes for s in range(seeds)}
    return FakePlan(list(recipes), jobs, Data(toy_splits()), cfg=Cfg(tune))


def finish(study, store, key, seed, probs=None, diverged=None):
    """A finished baseline run in the ledger, its training-set probabilities in the store."""
    trial = study.ask()
    record = {"recipe": "baseline", "seed": seed, "key": key, "final": {}, "history": [], "diverged": diverged}
    if probs is not None:
        record["train_probs"] = torch.from_numpy(probs)
    save_outputs(store, trial, record)
    trial.set_user_attr("key", key)
    trial.set_user_attr("record", record)
    study.tell(trial, 0.0)


def seed_probs(seeds=3):
    rng = np.random.default_rng(7)
    return [rng.dirichlet(np.ones(K) * 0.3, size=N).astype(np.float32) for _ in range(seeds)]


def test_teacher_is_the_numpy_mean_of_the_seeds_stored_training_probabilities(tmp_path):
    study, store = ledger.open_study(tmp_path, "s"), open_store(tmp_path, None, None)
    plan = plan_for([BASELINE, DISTILL])
    probs = seed_probs()
    for s in (2, 0, 1):  # finished in any order
        finish(study, store, f"baseline/seed{s}", s, probs[s])
    taught, why = with_teacher(plan, study, store)
    assert why is None and isinstance(taught.data.splits, TaughtSplits)
    expected = (probs[0].astype(np.float64) + probs[1] + probs[2]) / 3
    np.testing.assert_allclose(taught.data.splits.teacher.numpy(), expected, rtol=1e-6)
    assert taught.data.splits.teacher_info == {"recipe": "baseline", "seeds": [0, 1, 2], "rows": N}
    guarded = dataclasses.replace(taught.data.splits, x_test=None)  # what --tune's guard does: the teacher stays
    assert guarded.teacher is taught.data.splits.teacher


def test_a_diverged_seed_is_left_out_and_an_unfinished_one_makes_the_teacher_wait(tmp_path):
    study, store = ledger.open_study(tmp_path, "s"), open_store(tmp_path, None, None)
    plan = plan_for([BASELINE, DISTILL])
    probs = seed_probs()
    finish(study, store, "baseline/seed0", 0, probs[0])
    finish(study, store, "baseline/seed1", 1, diverged={"epoch": 1, "step": 2, "value": float("nan")})
    same, why = with_teacher(plan, study, store)
    assert same is plan and why.startswith("the baseline's seed 2 did not finish")
    left = without_pupils(plan, why)
    assert [r.name for r in left.recipes] == ["baseline"] and left.skipped == {"distill": why}
    assert all(j.recipe.name == "baseline" for j in left.jobs.values())
    finish(study, store, "baseline/seed2", 2, probs[2])
    taught, why = with_teacher(plan, study, store)
    assert why is None and taught.data.splits.teacher_info["seeds"] == [0, 2]
    np.testing.assert_allclose(taught.data.splits.teacher.numpy(), (probs[0] + probs[2]) / 2, rtol=1e-6)


def test_a_baseline_trained_without_training_probabilities_says_how_to_get_them(tmp_path):
    study, store = ledger.open_study(tmp_path, "s"), open_store(tmp_path, None, None)
    plan = plan_for([BASELINE, DISTILL], seeds=1)
    finish(study, store, "baseline/seed0", 0)  # a study that had no distill when its baseline ran
    assert with_teacher(plan, study, store)[1].endswith("use --fresh or another --out")


def test_average_teacher_checks_the_rows():
    with pytest.raises(RegularkitError, match=r"have shape \(29, 4\), but this study trains on 30 rows of 4"):
        average_teacher([np.full((29, K), 0.25)], N, K)
    with pytest.raises(RegularkitError, match="no baseline seed has training-set probabilities"):
        average_teacher([], N, K)


def test_the_first_phase_and_who_keeps_training_probabilities():
    plan = plan_for([BASELINE, L2, DISTILL], seeds=2)
    assert {j.recipe.name for j in first_phase(plan).jobs.values()} == {"baseline", "l2"}
    assert {j.recipe.name for j in first_phase(plan_for([BASELINE, L2, DISTILL], tune=4)).jobs.values()} == {
        "baseline"}  # l2's runs are keyed by the strength its search will find
    assert [keeps_train_probs(plan, j) for j in plan.jobs.values()] == [True, True, False, False, False, False]
    without = plan_for([BASELINE, L2])
    assert not any(keeps_train_probs(without, j) for j in without.jobs.values())


@pytest.mark.parametrize("recipes, task, match", [
    (["distill"], "classification", r"recipe 'distill' learns from the baseline's seeds, and 'baseline' is not in "
                                    r"the study; add it: --recipes baseline,distill"),
    (["l2", "distill"], "classification", r"add it: --recipes baseline,l2,distill"),
    (["baseline", "distill"], "regression", r"recipe 'distill' distills class probabilities; this study is a "
                                            r"regression \(drop 'distill'\)"),
])
def test_the_plan_refuses_a_distillation_without_its_teacher(recipes, task, match):
    with pytest.raises(RegularkitError, match=match):
        check_teacher(resolve(recipes, BASE), task)
    check_teacher(resolve(["l2"], BASE), task)  # nothing distills: nothing to check


def test_mixing_or_smoothing_the_packed_targets_is_refused_when_the_recipe_is_built():
    """The Recipe itself refuses it (so --combine leaves such a merge out instead of training nonsense)."""
    with pytest.raises(RegularkitError, match=r"recipe 'distill' distills with reg.distill_alpha=0.5, which cannot be "
                                              r"combined with augment.mixup_alpha=0.2"):
        dataclasses.replace(DISTILL, augment=dataclasses.replace(DISTILL.augment, mixup_alpha=0.2))
    with pytest.raises(RegularkitError, match=r"combined with reg.label_smoothing=0.1"):
        dataclasses.replace(DISTILL, reg=dataclasses.replace(DISTILL.reg, label_smoothing=0.1))


def test_run_study_refuses_distill_without_baseline_before_writing(tmp_path):
    out = tmp_path / "study"
    with pytest.raises(RegularkitError, match=r"add it: --recipes baseline,distill"):
        run_study(StudyConfig(recipes=("distill",), seeds=1, epochs=1, train_size=60, out=str(out)), progress=False)
    assert not out.exists()


def _run(recipe, splits):
    return run_recipe(recipe, splits, 3, with_test=False)


def test_each_rows_teacher_reaches_the_loss_with_its_example_under_shuffling():
    """alpha = 1, T = 1, the teacher the one-hot of the true labels: the loss is KL(onehot || p) = CE, so the run
    is the baseline's, epoch by epoch, under the same seed (the same shuffles).  Teachers moved by one row
    (misaligned) train another model."""
    splits = toy_splits(n=48)
    pure = dataclasses.replace(DISTILL, reg=dataclasses.replace(DISTILL.reg, distill_alpha=1.0,
                                                               distill_temperature=1.0))
    fields = {f.name: getattr(splits, f.name) for f in dataclasses.fields(Splits)}
    onehot = F.one_hot(splits.y_train, K).float()
    base = _run(BASELINE, splits)
    taught = _run(pure, TaughtSplits(**fields, teacher=onehot, teacher_info={"seeds": [0]}))
    for a, b in zip(base["history"], taught["history"], strict=True):
        assert b["train_objective"] == pytest.approx(a["train_objective"], rel=1e-5)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
    assert taught["teacher"] == {"seeds": [0], "alpha": 1.0, "temperature": 1.0}
    shifted = _run(pure, TaughtSplits(**fields, teacher=onehot.roll(1, 0)))
    assert shifted["history"][-1]["val_loss"] != pytest.approx(base["history"][-1]["val_loss"], rel=1e-3)


def test_a_distillation_without_a_teacher_is_one_line():
    with pytest.raises(RegularkitError, match=r"recipe 'distill' distills from the baseline's seeds, and these "
                                              r"splits carry no teacher; .*--recipes baseline,distill"):
        _run(DISTILL, toy_splits())


@pytest.mark.slow
def test_a_study_interrupted_in_distill_resumes_with_the_teacher_from_disk(tmp_path, monkeypatch):
    """digits, baseline,distill, 2 seeds: Ctrl-C in the first distill run; the rerun trains no baseline
    again and distills from the mean of the two stored baseline seeds."""
    cfg = StudyConfig(recipes=("baseline", "distill"), seeds=2, epochs=2, train_size=120, batch_size=32,
                      out=str(tmp_path / "study"))

    def interrupt(splits, recipe):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "teacher_rows", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, progress=False)
    monkeypatch.undo()
    study = ledger.open_study(tmp_path / "study", cfg.study_name)
    baseline_trials = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["record"]["seed"] for t in baseline_trials) == [0, 1]
    result = run_study(cfg, progress=False)
    by = {(r["recipe"], r["seed"]): r for r in result.records}
    assert sorted(by) == [("baseline", 0), ("baseline", 1), ("distill", 0), ("distill", 1)]
    assert [by["baseline", s]["key"] for s in (0, 1)] == [t.user_attrs["key"] for t in sorted(
        baseline_trials, key=lambda t: t.user_attrs["record"]["seed"])]  # not trained again
    for s in (0, 1):
        assert by["distill", s]["teacher"] == {"recipe": "baseline", "seeds": [0, 1], "rows": 120, "alpha": 0.5,
                                               "temperature": 4.0}
    store = open_store(tmp_path / "study", None, None)
    stored = [load_train_probs(store, by["baseline", s]) for s in (0, 1)]
    assert all(p.shape == (120, 10) for p in stored)
    np.testing.assert_allclose(stored[0].sum(1), 1.0, rtol=1e-5)  # probabilities of the training rows
    assert "train_probs_artifact" not in by["distill", 0]
    assert by["distill", 0]["final"]["test_error"] != by["baseline", 0]["final"]["test_error"]
