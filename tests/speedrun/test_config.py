"""SpeedrunConfig: strict types, normalised ablations, TOML and JSON round trips, options over a file."""
import json

import pytest

from regularkit.config import from_dict, from_toml, to_dict, to_toml
from regularkit.errors import RegularkitError
from regularkit.speedrun.config import TECHNIQUES, UNREGULARIZED, SpeedrunConfig, expand_without, from_options


@pytest.mark.parametrize("cfg", [SpeedrunConfig(), SpeedrunConfig(without=("ema", "tta"), budget=300.0, seeds=3),
                                 SpeedrunConfig(widths=(8, 16), data_dir="/tmp/x", train_size=512)])
def test_round_trips_through_toml_and_json(cfg):
    assert from_toml(SpeedrunConfig, to_toml(cfg)) == cfg
    assert from_dict(SpeedrunConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_without_is_normalised_and_unregularized_expands():
    assert SpeedrunConfig(without=("tta", "ema", "tta")).without == ("ema", "tta")
    cfg = SpeedrunConfig(without=("unregularized",))
    assert cfg.without == UNREGULARIZED and "bn" not in cfg.without and cfg.label() == "unregularized"
    assert SpeedrunConfig().label() == "full" and SpeedrunConfig(without=("ema",)).label() == "without ema"
    assert expand_without(list(TECHNIQUES)[::-1]) == tuple(TECHNIQUES)
    assert not SpeedrunConfig(without=("ema",)).uses("ema") and SpeedrunConfig().uses("ema")


@pytest.mark.parametrize("field, value, message", [
    ("without", ("dropout",), "unknown technique 'dropout'"),
    ("without", "ema", "without must be a list"),
    ("epochs", 0, "epochs must be >= 1, got 0"),
    ("epochs", "3", "epochs must be an integer"),
    ("lr", "0.1", "lr must be a number"),
    ("channels_last", 1, "channels_last must be true or false"),
    ("precision", "fp16", "precision must be one of"),
    ("data", "cifar10", "data must be one of"),
    ("widths", (), "widths must be a non-empty list"),
    ("patch", 9, "patch must be at most 6"),
    ("budget", -5.0, "budget must be"),
    ("label_smoothing", 1.0, "label_smoothing"),
])
def test_bad_values_are_one_line_errors(field, value, message):
    with pytest.raises(RegularkitError, match=message):
        SpeedrunConfig(**{field: value})


def test_options_override_a_toml_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(to_toml(SpeedrunConfig(epochs=7, lr=0.5)))
    cfg = from_options({"epochs": None, "lr": 0.3, "without": ("tta",)}, config=str(path))
    assert (cfg.epochs, cfg.lr, cfg.without) == (7, 0.3, ("tta",))
    with pytest.raises(RegularkitError, match="unknown field 'epoch'"):
        from_options({"epoch": 3})
    with pytest.raises(RegularkitError, match="TOML file not found"):
        from_options({}, config=str(tmp_path / "missing.toml"))


def test_length_is_a_budget_of_600_s_unless_epochs_fix_it():
    cfg = SpeedrunConfig()
    assert (cfg.epochs, cfg.budget, cfg.budget_seconds(), cfg.precision) == (None, None, 600.0, "auto")
    assert SpeedrunConfig(epochs=5).budget_seconds() is None
    assert SpeedrunConfig(budget=30).budget_seconds() == 30.0
    with pytest.raises(RegularkitError, match=r"^epochs \(5\) and budget \(30 s\) exclude each other: give one "
                                              r"\(neither: the epochs that fit in 600 s\)$"):
        SpeedrunConfig(epochs=5, budget=30.0)


def test_options_choose_the_length_over_a_files_other_choice(tmp_path):
    fixed, budgeted = tmp_path / "fixed.toml", tmp_path / "budgeted.toml"
    fixed.write_text(to_toml(SpeedrunConfig(epochs=7)))
    budgeted.write_text(to_toml(SpeedrunConfig(budget=300.0)))
    assert "epochs" not in to_toml(SpeedrunConfig())          # a default run's file reruns with the budget
    assert (from_options({"budget": 120.0}, config=str(fixed)).budget_seconds()) == 120.0
    assert from_options({"epochs": 3}, config=str(budgeted)).budget_seconds() is None
    assert from_options({"epochs": None, "budget": None}, config=str(budgeted)).budget == 300.0
    assert from_options({"epochs": 3}).epochs == 3 and from_options({}).budget_seconds() == 600.0
