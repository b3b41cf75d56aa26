"""--vectorize-seeds: a recipe's seeds trained together give each seed run_recipe's record, the same numbers;
what cannot train together is named; the worker claims a recipe's seeds together and tells each run."""
import optuna
import pytest
import torch

from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig
from regularkit.study.run.execute import run_recipe
from regularkit.study.plan import make_plan
from regularkit.study.run.vectorize import sequential_reason, stacking, train_seeds

TINY = dict(seeds=3, epochs=3, train_size=60, batch_size=16, widths=(24, 16), threads=1)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def without_timings(record):
    out = {k: v for k, v in record.items() if k not in ("seconds", "test_probs")}
    out["history"] = [{k: v for k, v in e.items() if k != "train_seconds"} for e in record["history"]]
    return out


@pytest.mark.parametrize("recipe", ["dropout", "early-stopping", "ema", "batchnorm", "activity-l1", "max-norm",
                                    "dropconnect"])
def test_each_seeds_record_is_run_recipes_record_bit_for_bit(recipe):
    plan = make_plan(StudyConfig(recipes=(recipe,), **TINY))
    r, splits = plan.recipes[0], plan.data.splits
    together = train_seeds(r, splits, [0, 1, 2])
    for seed, got in zip((0, 1, 2), together):
        alone = run_recipe(r, splits, seed)
        assert set(got) == set(alone)  # the same fields
        assert without_timings(got) == without_timings(alone)  # and the same numbers, not close ones
        assert torch.equal(got["test_probs"], alone["test_probs"])
    assert together[0]["final"] != together[1]["final"]  # each seed its own run


def test_a_seeds_numbers_do_not_depend_on_the_others_in_its_group():
    plan = make_plan(StudyConfig(recipes=("dropout",), **TINY))
    r, splits = plan.recipes[0], plan.data.splits
    three, one = train_seeds(r, splits, [0, 1, 2]), train_seeds(r, splits, [1])
    assert without_timings(three[1]) == without_timings(one[0])


@pytest.mark.parametrize("recipe, why", [
    ("sam", "its training step (SAM) is its own"), ("rdrop", "its training step (RDrop) is its own"),
    ("swa", "builds a final model per seed"), ("snapshot-ensemble", "builds a final model per seed")])
def test_what_trains_one_seed_at_a_time_is_named(recipe, why):
    plan = make_plan(StudyConfig(recipes=(recipe,), **{**TINY, "epochs": 5}))
    assert why in sequential_reason(plan.recipes[0], plan.data.splits, seeds=3)
    with pytest.raises(RegularkitError, match=f"recipe '{recipe}' cannot train its seeds together"):
        train_seeds(plan.recipes[0], plan.data.splits, [0, 1])


def test_the_plans_sentence_says_which_recipes_train_together_and_why_the_others_do_not():
    plan = make_plan(StudyConfig(recipes=("baseline", "sam", "batchnorm"), **TINY))
    flags, said = stacking(plan.recipes, plan.data.splits, enabled=True, seeds=3)
    assert flags == {"baseline": True, "sam": False, "batchnorm": True}
    assert said == ("seeds trained together per recipe: baseline, batchnorm; one at a time: sam (its training step "
                    "(SAM) is its own)")
    assert stacking(plan.recipes, plan.data.splits, enabled=False, seeds=3) == (
        dict.fromkeys(flags, False), "seeds: one at a time (--no-vectorize-seeds)")
    r = plan.recipes[0]
    assert sequential_reason(r, plan.data.splits, seeds=1) == "one seed"
    assert sequential_reason(r, plan.data.splits, seeds=3, precision="fp16") == "fp16 scales each seed's loss " \
                                                                                "(GradScaler)"


def ledger_of(tmp_path, **kw):
    from regularkit.study.run import ledger
    from regularkit.study.run.artifacts import open_store
    cfg = StudyConfig(out=str(tmp_path / "s"), **{**TINY, "epochs": 2, **kw})
    plan = make_plan(cfg)
    study = ledger.open_study(tmp_path / "s", cfg.study_name)
    ledger.enqueue_missing(study, {k: {"recipe": j.recipe.name, "seed": j.seed} for k, j in plan.jobs.items()})
    return plan, study, open_store(tmp_path / "s", None, None)


@pytest.mark.parametrize("vectorize", [True, False])
def test_the_worker_claims_a_recipes_seeds_together_and_tells_each_run_its_sequential_record(tmp_path, monkeypatch,
                                                                                          vectorize):
    from regularkit.study.run import ledger, worker
    plan, study, store = ledger_of(tmp_path, recipes=("baseline", "sam"), vectorize_seeds=vectorize)
    groups, real = [], worker.train_seeds
    monkeypatch.setattr(worker, "train_seeds", lambda recipe, splits, seeds, **kw: groups.append(
        (recipe.name, list(seeds))) or real(recipe, splits, seeds, **kw))
    done = []
    assert worker.train_claimed(plan, study, store, on_done=lambda job, record: done.append(job.seed)) == 6
    assert groups == ([("baseline", [0, 1, 2])] if vectorize else [])  # sam's seeds train one at a time
    records = ledger.completed(study, plan.keys)
    assert set(records) == plan.keys and sorted(done) == [0, 0, 1, 1, 2, 2]
    for key, job in plan.jobs.items():
        if job.recipe.name == "baseline" and job.seed == 1:
            alone = run_recipe(job.recipe, plan.data.splits, 1)
            assert without_timings(records[key]) == {**without_timings(alone), "key": key,
                                                     "probs_artifact": records[key]["probs_artifact"]}


def test_a_group_that_fails_leaves_every_one_of_its_runs_failed_to_be_redone(tmp_path, monkeypatch):
    from regularkit.study.run import ledger, worker
    plan, study, store = ledger_of(tmp_path, recipes=("baseline",), vectorize_seeds=True)

    def boom(*a, **kw):
        raise RuntimeError("boom")

    monkeypatch.setattr(worker, "train_seeds", boom)
    with pytest.raises(RuntimeError, match="boom"):
        worker.train_claimed(plan, study, store)
    assert [t.state for t in study.get_trials()] == [optuna.trial.TrialState.FAIL] * 3
    assert ledger.enqueue_missing(study, {k: {} for k in plan.keys}) == 3
