"""--tune: each recipe's strength searched on validation only, resumable, the chosen value in the table."""
import csv
import io
import re

import optuna
import pytest
from rich.console import Console

from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig
from regularkit.study.pipeline import run_study
from regularkit.study.plan import make_plan
from regularkit.study.recipes import RECIPES, STRENGTHS, resolve
from regularkit.study.tune.tuning import TestSplitGuard, TuneObjective, guarded

FAST = dict(recipes=("baseline", "l2", "dropout"), seeds=2, epochs=3, train_size=100, batch_size=32)


def test_every_strength_names_a_field_of_its_recipe_inside_its_range_or_at_its_default():
    base = StudyConfig().base_recipe()
    for name, strength in STRENGTHS.items():
        assert name in RECIPES
        value = strength.value(resolve([name], base)[0])  # the dotted path exists
        assert strength.low <= value <= strength.high, name


def test_the_search_cannot_touch_the_test_split():
    plan = make_plan(StudyConfig(**FAST))
    g = guarded(plan.data.splits)
    assert isinstance(g.x_test, TestSplitGuard) and g.x_train is plan.data.splits.x_train
    for use in (lambda: g.x_test.shape, lambda: g.y_test[0], lambda: len(g.x_test), lambda: g.test[0].to("cpu")):
        with pytest.raises(RegularkitError, match="the strength search touched the test split"):
            use()
    # a trial trains and measures on train and validation only (it would raise above otherwise)
    value = TuneObjective(plan, plan.recipes[1])({"reg.l2": 1e-3}, lambda step, v: False)
    assert 0.0 <= value <= 1.0


def test_tune_chooses_records_and_resumes(tmp_path):
    out = tmp_path / "o"
    first = run_study(StudyConfig(out=str(out), tune=3, **FAST), progress=False)
    tuned = first.plan.tuned
    assert set(tuned) == {"l2", "dropout"}  # the baseline has no strength
    for name, info in tuned.items():
        s = STRENGTHS[name]
        assert s.low <= info["value"] <= s.high and info["trials"] >= 1
    by_recipe = {r["recipe"]: r for r in first.records}
    assert by_recipe["l2"]["recipe_config"]["reg"]["l2"] == pytest.approx(tuned["l2"]["value"])
    rows = {r["recipe"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert rows["l2"]["strength_tuned"] == "True" and float(rows["l2"]["strength_value"]) == pytest.approx(
        tuned["l2"]["value"])
    assert (out / "tuning.json").is_file()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "ledger.journal")))
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    counts = {n: len(optuna.load_study(study_name=n, storage=storage).trials) for n in names if ".tune." in n}
    said = io.StringIO()
    again = run_study(StudyConfig(out=str(out), tune=3, **FAST), progress=False,
                      console=Console(file=said, width=200))
    assert "3 recipes x 2 seeds: 6 runs finished, 0 to do" in said.getvalue()  # counted with the tuned values
    for name, info in tuned.items():  # the line says how the search's trials ended, pruned ones included
        line = re.search(rf"tuned {name}: \S+ = \S+ \(val err [0-9.]+%, (\d+) trials finished, (\d+) pruned\)",
                         said.getvalue())
        assert line and (int(line[1]), int(line[2])) == (info["trials"], info["pruned"])
        assert info["trials"] + info["pruned"] == 3
    assert again.plan.tuned == tuned and again.records == first.records  # nothing searched or trained again
    assert {n: len(optuna.load_study(study_name=n, storage=storage).trials) for n in counts} == counts


def test_a_pruned_trial_of_a_recipe_whose_final_model_does_not_exist_yet_is_not_evaluated():
    # SWA starts averaging at 75% of the run; pruned at epoch 1, there is no average to evaluate.
    plan = make_plan(StudyConfig(**{**FAST, "recipes": ("baseline", "swa"), "epochs": 4}))
    value = TuneObjective(plan, plan.recipes[1])({"reg.swa_start": 0.75}, lambda step, v: True)
    assert value == float("inf")  # Optuna keeps the last reported value of a pruned trial
    finished = TuneObjective(plan, plan.recipes[1])({"reg.swa_start": 0.5}, lambda step, v: False)
    assert 0.0 <= finished <= 1.0


def test_a_coupled_strength_moves_its_partner_in_ratio():
    s = STRENGTHS["elastic-net"]
    assert s.expand({"reg.l1": 2e-4}) == {"reg.l1": 2e-4, "reg.l2": pytest.approx(1e-2)}
    assert s.expand({"model.dropout": 0.1}) == {"model.dropout": 0.1}  # not this strength's field
    base = StudyConfig().base_recipe()
    own = resolve(["elastic-net"], base)[0]
    assert own.reg.l2 == pytest.approx(50 * own.reg.l1)  # the registry's recipe is on the same line


def test_the_affine_strength_scales_the_whole_warp_in_the_recipes_ratios():
    own = resolve(["affine"], StudyConfig().base_recipe())[0].augment
    warp = STRENGTHS["affine"].expand({"augment.rotation": own.rotation})
    assert warp == pytest.approx({"augment.rotation": own.rotation, "augment.translate": own.translate,
                                  "augment.shear": own.shear, "augment.zoom": own.zoom})
    assert STRENGTHS["affine"].expand({"augment.rotation": 0.0}) == {  # the search can turn it all off
        "augment.rotation": 0.0, "augment.translate": 0.0, "augment.shear": 0.0, "augment.zoom": 0.0}


def test_a_changed_range_starts_a_new_search_and_keeps_the_old_one(tmp_path):
    recipes = tmp_path / "r.toml"
    body = '[recipes.myl2]\ndescription = "L2"\n"reg.l2" = 1e-4\nstrength = {{field = "reg.l2", log_uniform = {}}}\n'
    recipes.write_text(body.format("[1e-5, 1e-3]"))
    cfg = StudyConfig(out=str(tmp_path / "o"), tune=2, recipe_file=str(recipes),
                      **{**FAST, "recipes": ("baseline", "myl2"), "seeds": 1, "epochs": 1})
    first = run_study(cfg, progress=False).plan.tuned["myl2"]
    recipes.write_text(body.format("[1e-2, 1e-1]"))  # the user narrows the range and runs again
    second = run_study(cfg, progress=False).plan.tuned["myl2"]
    assert 1e-5 <= first["value"] <= 1e-3 and 1e-2 <= second["value"] <= 1e-1
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "o" /
                                                                                            "ledger.journal")))
    names = [s.study_name for s in optuna.get_all_study_summaries(storage) if ".tune.myl2." in s.study_name]
    assert len(names) == 2  # the first search is kept, not overwritten or resumed with the new range


def test_each_search_starts_from_the_recipes_own_strength_and_resumes_without_adding_it_again(tmp_path):
    out = tmp_path / "o"
    cfg = StudyConfig(out=str(out), tune=3, **{**FAST, "recipes": ("baseline", "elastic-net"), "seeds": 1})
    result = run_study(cfg, progress=False)
    info = result.plan.tuned["elastic-net"]
    assert info["values"]["reg.l2"] == pytest.approx(50 * info["values"]["reg.l1"])
    tuned = next(r for r in result.records if r["recipe"] == "elastic-net")["recipe_config"]["reg"]
    assert tuned["l2"] == pytest.approx(50 * tuned["l1"])
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "ledger.journal")))
    (name,) = [s.study_name for s in optuna.get_all_study_summaries(storage) if ".tune.elastic-net." in s.study_name]
    trials = optuna.load_study(study_name=name, storage=storage).trials
    own = resolve(["elastic-net"], cfg.base_recipe())[0].reg.l1
    assert trials[0].params == {"reg.l1": pytest.approx(own)} and len(trials) == 3
    run_study(cfg, progress=False)
    assert len(optuna.load_study(study_name=name, storage=storage).trials) == 3  # nothing enqueued twice


def test_the_tuning_pruner_waits_for_three_trials_and_half_the_epochs():
    from regularkit.study.tune.tuning import tune_pruner
    study = optuna.create_study(pruner=tune_pruner(10))
    for k in range(3):
        trial = study.ask()
        for epoch in range(1, 11):
            trial.report(0.1, epoch)
        study.tell(trial, 0.1)
    bad = study.ask()
    verdicts = []
    for epoch in range(1, 11):
        bad.report(0.5, epoch)  # far worse than the median at every epoch
        verdicts.append(bad.should_prune())
    assert verdicts[:4] == [False] * 4 and all(verdicts[5:])  # first judged at epoch 5 or 6 of 10
    fresh = optuna.create_study(pruner=tune_pruner(10))
    t = fresh.ask()
    t.report(0.9, 8)
    assert not t.should_prune()  # no trial finished yet: nothing to compare with


def test_the_objective_travels_to_worker_processes():
    from regularkit.search.workers import check_picklable
    from regularkit.study.tune.tuning import Expand
    plan = make_plan(StudyConfig(**{**FAST, "recipes": ("baseline", "elastic-net")}))
    objective = TuneObjective(plan, plan.recipes[1], Expand([STRENGTHS["elastic-net"]]))
    check_picklable("objective", objective, 2)  # --workers 2 pickles it (a closure cannot be)
    assert objective.expand({"reg.l1": 1e-4})["reg.l2"] == pytest.approx(5e-3)
