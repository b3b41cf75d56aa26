"""``regularkit speedrun``: bad input is one line and exit 2 before any work; a smoke run writes its files."""
from pathlib import Path

import pytest

from regularkit.cli import main

DATA = Path("/usr/share/datasets/fashion-mnist")


BAD = [
    (["--without", "dropout"], "without: unknown technique 'dropout'"),
    (["--epochs", "0"], "epochs must be >= 1, got 0"),
    (["--seeds", "0"], "seeds must be >= 1, got 0"),
    (["--epochs", "3", "--budget", "60"], "not allowed with argument"),
    (["--epochs", "three"], "invalid int value: 'three'"),
    (["--precision", "fp16"], "invalid choice: 'fp16'"),
    (["--lr", "-1"], "lr must be > 0"),
    (["--epoch", "3"], "unrecognized arguments: --epoch 3"),
    (["--config", "missing.toml"], "TOML file not found"),
    (["--widths", "64,x"], "expected comma-separated integers, got '64,x'"),
    (["--widths", "0,64"], "widths"),
]


def exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:      # argparse's own errors leave through Parser.error
        return exc.code


@pytest.mark.parametrize("argv, message", BAD)
def test_bad_options_are_one_line_and_exit_2(capsys, argv, message):
    assert exit_code(["speedrun", "fashion-mnist", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("regularkit: error: ") and message in err and "\n" not in err


def test_unknown_dataset_and_out_being_a_file(capsys, tmp_path):
    assert exit_code(["speedrun", "cifar10"]) == 2
    assert "invalid choice: 'cifar10'" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert exit_code(["speedrun", "fashion-mnist", "--out", str(blocker)]) == 2
    assert capsys.readouterr().err.strip() == f"regularkit: error: --out {str(blocker)!r} is a file, not a folder"


@pytest.mark.skipif(not DATA.is_dir(), reason="Fashion-MNIST not installed")
def test_smoke_run_on_a_subset_writes_results(capsys, tmp_path):
    argv = ["speedrun", "fashion-mnist", "--data-dir", str(DATA), "--epochs", "1", "--train-size", "512",
            "--val-size", "256", "--test-size", "256", "--batch-size", "32", "--threads", "1",
            "--without", "tta", "--widths", "8,16", "--out", str(tmp_path)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "seed 0  epoch  1/1" in captured.err and "ETA" in captured.err
    assert "speedrun fashion-mnist, without tta, 1 seed: " in captured.err and "; 1 thread: asked for; 1 epoch" \
        in captured.err
    assert "test acc %" in captured.out
    assert {p.name for p in tmp_path.iterdir()} == {"without-tta.json", "without-tta.toml", "without-tta-curve.png"}
    assert "widths = [\n    8,\n    16,\n]" in (tmp_path / "without-tta.toml").read_text()   # --widths reached the run
