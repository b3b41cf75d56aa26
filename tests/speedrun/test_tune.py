"""speedrun --tune: the space, validation-only trials, the defaults first, resuming, the chosen config's seeds."""
import math
from pathlib import Path

import optuna
import pytest

from regularkit.cli import main
from regularkit.config import from_dict, load_toml
from regularkit.errors import RegularkitError
from regularkit.search.discipline import TestSplitGuard, guarded
from regularkit.search.space import Int
from regularkit.search.storage import open_storage
from regularkit.speedrun import tune as T
from regularkit.speedrun.config import SpeedrunConfig
from regularkit.speedrun.train import train_seed
from regularkit.speedrun.tune import space_for, tune_speedrun, tuned_speedrun


def test_space_follows_the_techniques_and_the_length():
    assert list(space_for(SpeedrunConfig())) == ["label_smoothing", "weight_decay", "ema_decay", "translate"]
    space = space_for(SpeedrunConfig(epochs=35))
    assert space["epochs"] == Int(18, 35)                      # ceil(35 / 2) .. 35: never longer than asked
    assert list(space_for(SpeedrunConfig(without=("smoothing", "ema")))) == ["weight_decay", "translate"]
    # every default lies inside its range, so the defaults can be the first trial
    cfg = SpeedrunConfig(epochs=35)
    for name, dist in space.items():
        assert dist.low <= getattr(cfg, name) <= dist.high, name


def test_a_trial_of_the_guarded_splits_would_fail_if_it_measured_the_test(tiny_cfg, splits):
    # refused before any test number exists (evaluate will not take the guard for a tensor)
    with pytest.raises(RegularkitError, match="TestSplitGuard|touched the test split"):
        train_seed(tiny_cfg, guarded(splits), 0)
    result = train_seed(tiny_cfg, guarded(splits), 0, measure_test=False)
    assert math.isnan(result.test_accuracy) and 0.0 <= result.val_accuracy <= 1.0


def test_search_trains_the_defaults_first_on_guarded_splits_and_resumes(tiny_cfg, splits, monkeypatch):
    seen = []
    real = T.run_one

    def spy(cfg, seed, **kw):
        seen.append((cfg, seed, kw["splits"], kw["measure_test"]))
        return real(cfg, seed, **kw)

    monkeypatch.setattr(T, "run_one", spy)
    tuned, search = tune_speedrun(tiny_cfg, 3, splits=splits, log=None)
    assert len(seen) == 3
    first = seen[0][0]
    assert (first.label_smoothing, first.weight_decay, first.ema_decay, first.translate, first.epochs) == (
        tiny_cfg.label_smoothing, tiny_cfg.weight_decay, tiny_cfg.ema_decay, tiny_cfg.translate, tiny_cfg.epochs)
    assert all(seed == T.TUNE_SEED and isinstance(s.x_test, TestSplitGuard) and not measure
               for _, seed, s, measure in seen)
    # the chosen values are the best finished trial's, and tuned.toml repeats them
    study = optuna.load_study(study_name=search["study"],
                              storage=open_storage(str(Path(tiny_cfg.out) / "tune.journal")))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(done, key=lambda t: t.value)
    assert search["chosen"] == best.params and search["val_error"] == best.value
    assert search["finished"] + search["pruned"] == 3
    assert all(getattr(tuned, k) == v for k, v in best.params.items())
    # a rerun of the same search trains nothing more
    seen.clear()
    again, search2 = tune_speedrun(tiny_cfg, 3, splits=splits, log=None)
    assert seen == [] and again == tuned and search2["chosen"] == search["chosen"]


def test_tuned_run_measures_the_test_once_per_seed_of_the_chosen_config(tiny_cfg, splits, capsys):
    cfg = SpeedrunConfig(**{**tiny_cfg.__dict__, "seeds": 2})
    record = tuned_speedrun(cfg, 2, splits=splits)
    assert [r["seed"] for r in record["results"]] == [0, 1]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in record["results"])
    chosen = record["search"]["chosen"]
    assert all(record["config"][k] == v for k, v in chosen.items())
    saved = from_dict(SpeedrunConfig, load_toml(str(Path(cfg.out) / "tuned.toml")), where="t")
    assert saved == from_dict(SpeedrunConfig, record["config"], where="record")   # --config repeats the run
    assert record["config"]["seeds"] == 2 and record["config"]["precision"] == "fp32"
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("search: 2 trials of seed 0 on validation over label_smoothing, "
                                          "weight_decay, ema_decay, translate, epochs")
    assert "chosen on validation: " in err and "tuned.toml" in err
    assert "trial 1  epoch  1/" in err and "trial 2  epoch  1/" in err           # a line per epoch of each trial


def test_cli_refuses_a_bad_trial_count_in_one_line(tmp_path, capsys):
    assert main(["speedrun", "fashion-mnist", "--tune", "0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--tune" in err and "0" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("epochs, kind, warmup", [(35, optuna.pruners.MedianPruner, 17), (None, optuna.pruners.NopPruner, None)])
def test_pruning_after_half_the_fixed_epochs_and_never_under_a_budget(tiny_cfg, splits, monkeypatch, epochs, kind,
                                                                     warmup):
    seen = {}

    def fake_search(objective, space, **kw):
        seen.update(kw)
        raise RuntimeError("stop")

    monkeypatch.setattr(T, "run_search", fake_search)
    cfg = SpeedrunConfig(**{**tiny_cfg.__dict__, "epochs": epochs, "budget": None if epochs else 30.0})
    with pytest.raises(RuntimeError, match="stop"):
        tune_speedrun(cfg, 3, splits=splits, log=None)
    assert type(seen["pruner"]) is kind
    if warmup is not None:
        assert seen["pruner"]._n_warmup_steps == warmup and seen["pruner"]._n_startup_trials == 3
    assert seen["enqueue"] == [{n: getattr(cfg, n) for n in space_for(cfg)}]     # the defaults go first
