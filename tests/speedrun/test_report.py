"""Records, files, the table and the progress line; the budget's arithmetic."""
import io
import json

import pytest
from rich.console import Console

from regularkit._util.environment import cpu_model
from regularkit.speedrun.budget import EPOCH_OVERHEAD, MARGIN, epochs_for_budget, seconds_per_step
from regularkit.speedrun.config import SpeedrunConfig
from regularkit.speedrun.report import Progress, make_record, results_table, slug, write_record
from regularkit.speedrun.train import RunResult
from regularkit.train.device import cpu_capability


def result(seed, acc):
    return RunResult(seed=seed, test_accuracy=acc, val_accuracy=acc + 0.01, epochs=2, wall_seconds=10.0 + seed,
                     train_seconds=8.0, curve=[{"epoch": 1, "seconds": 5.0, "val_accuracy": 0.8},
                                               {"epoch": 2, "seconds": 9.0, "val_accuracy": 0.9}],
                     load_average=(0.5, 0.7))


def test_record_summarises_seeds_and_names_the_machine(tmp_path):
    cfg = SpeedrunConfig(seeds=2, out=str(tmp_path))
    record = make_record(cfg, [result(0, 0.9), result(1, 0.92)])
    s = record["summary"]
    assert s["test_accuracy_mean"] == pytest.approx(0.91) and s["test_accuracy_std"] == pytest.approx(0.01414, abs=1e-4)
    assert s["wall_seconds_max"] == 11.0 and record["config"]["seeds"] == 2
    assert record["environment"]["versions"]["torch"] and record["environment"]["machine"]["cpu_model"] == cpu_model()
    assert record["environment"]["machine"]["cpu_capability"] == cpu_capability()
    paths = write_record(record, tmp_path, cfg)
    assert [p.name for p in paths] == ["full.json", "full.toml", "full-curve.png"]
    assert json.loads(paths[0].read_text())["summary"] == s
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temporaries left
    text = io.StringIO()
    Console(file=text, width=120).print(results_table(record))
    assert "91.00 ± 1.41" in text.getvalue() and "load avg" in text.getvalue()


def test_slugs_name_ablations():
    assert slug(SpeedrunConfig()) == "full"
    assert slug(SpeedrunConfig(without=("unregularized",))) == "unregularized"
    assert slug(SpeedrunConfig(without=("tta", "ema"))) == "without-ema-tta"


def test_progress_line_has_the_eta_of_the_whole_command():
    out = io.StringIO()
    progress = Progress(seeds=2, stream=out)
    progress({"seed": 0, "epoch": 1, "epochs": 4, "seconds": 30.0, "val_accuracy": 0.9})
    assert out.getvalue().strip() == "seed 0  epoch  1/4  val 90.00%  0:30 elapsed  ETA 3:30"   # 90 s + 120 s


def test_budget_arithmetic(make_splits):
    cfg = SpeedrunConfig(batch_size=100, without=("tta",))
    splits = make_splits(n_train=1000, n_val=100, n_test=100)
    epoch = 10 * 0.5 * (1 + EPOCH_OVERHEAD)                # 10 steps of 0.5 s, plus fit's own work
    final = 200 * 0.005 / 3
    assert (EPOCH_OVERHEAD, MARGIN) == (0.12, 0.05)
    assert epochs_for_budget(cfg, splits, 100.0, 20.0, 0.5) == int((95 - 20 - final) // epoch) == 13
    assert epochs_for_budget(cfg, splits, 1.0, 20.0, 0.5) == 1                  # at least one epoch
    assert seconds_per_step(SpeedrunConfig(widths=(4, 8), batch_size=16, precision="fp32"), splits) > 0
