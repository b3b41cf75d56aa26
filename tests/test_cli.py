"""The command line: one-line errors naming the value, exit code 2, nothing already written lost."""
import gzip
import struct
import subprocess
import sys

import numpy as np
import pytest

from regularkit.cli import main

FAST = ["--seeds", "1", "--epochs", "2", "--train-size", "60", "--no-progress"]


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_npz(path, **over):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((40, 6), dtype=np.float32), "y_train": np.arange(40) % 3,
              "x_test": rng.random((12, 6), dtype=np.float32), "y_test": np.arange(12) % 3}
    arrays.update(over)
    np.savez(path, **arrays)
    return path


def write_bad_recipe(path, body):
    path.write_text(f"[recipes.bad]\n{body}\n")
    return path


@pytest.fixture
def no_system_fmnist(tmp_path, monkeypatch):
    import regularkit.data.datasets as ds
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("REGULARKIT_DATA", str(tmp_path / "empty"))


def _bad_cases(tmp):
    idx_dir = tmp / "fm"
    idx_dir.mkdir()
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for n in names:  # headers promise 10 images of 28x28 but the payload is cut short
        with gzip.open(idx_dir / n, "wb") as f:
            f.write(struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 10, 28, 28) + b"\0" * 100)
    return {
        "unknown recipe": (["--recipes", "baseline,l7"], "unknown recipe 'l7'"),
        "unknown dataset": (["--data", "cifar-1000"], "unknown dataset 'cifar-1000'"),
        "missing npz": (["--data", str(tmp / "nope.npz")], "nope.npz"),
        "missing fashion-mnist": (["--data", "fashion-mnist", "--data-dir", str(tmp / "void")],
                                  "does not hold Fashion-MNIST: missing"),
        "truncated idx": (["--data", "fashion-mnist", "--data-dir", str(idx_dir)], "train-images-idx3-ubyte.gz"),
        "labels out of range": (["--data", str(write_npz(tmp / "lab.npz", y_test=np.full(12, 7),
                                                          num_classes=np.array(3)))], "label 7"),
        "negative label": (["--data", str(write_npz(tmp / "neg.npz", y_train=np.arange(40) % 3 - 1))], "label -1"),
        "nan in data": (["--data", str(write_npz(tmp / "nan.npz", x_train=np.full((40, 6), np.nan, np.float32)))],
                        "x_train holds 240 non-finite values"),
        "negative weight decay": (["--recipes", "bad", "--recipe-file",
                                   str(write_bad_recipe(tmp / "wd.toml", '"optim.weight_decay" = -1.0'))],
                                  "weight_decay must be >= 0, got -1.0"),
        "dropout out of range": (["--recipes", "bad", "--recipe-file",
                                  str(write_bad_recipe(tmp / "do.toml", '"model.dropout" = 1.5'))],
                                 r"dropout must be in [0, 1), got 1.5"),
        "bad epochs": (["--epochs", "0"], "epochs must be >= 1, got 0"),
    }


@pytest.mark.parametrize("case", ["unknown recipe", "unknown dataset", "missing npz", "missing fashion-mnist",
                                  "truncated idx", "labels out of range", "negative label", "nan in data",
                                  "negative weight decay", "dropout out of range", "bad epochs"])
def test_bad_input_is_one_line_exit_2_and_keeps_results(case, tmp_path, capsys, no_system_fmnist):
    out = tmp_path / "study"
    code, _, _ = run(["study", "--recipes", "baseline", "--out", str(out), *FAST], capsys)
    assert code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    argv, expected = _bad_cases(tmp_path)[case]
    code, stdout, stderr = run(["study", "--out", str(out), *FAST, *argv], capsys)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("regularkit: error: ")
    assert expected in lines[0]
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing written before the error is lost or changed


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["study", "--seeds", "three"])
    assert exc.value.code == 2


def test_recipes_lists_the_registry(capsys):
    code, out, _ = run(["recipes"], capsys)
    assert code == 0 and "max-norm" in out and "* baseline" in out


def test_python_dash_m_and_exit_code_in_a_real_process(tmp_path):
    p = subprocess.run([sys.executable, "-m", "regularkit", "study", "--recipes", "nope", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip() == ("regularkit: error: unknown recipe 'nope'; choose from "
                                + ", ".join(__import__("regularkit.study.recipes", fromlist=["x"]).RECIPES))


@pytest.mark.slow
def test_demo_transfer_quick(tmp_path, capsys):
    from regularkit.data.datasets import SYSTEM_DATA_DIR
    if not (SYSTEM_DATA_DIR / "fashion-mnist").exists():
        pytest.skip(f"Fashion-MNIST not installed at {SYSTEM_DATA_DIR}/fashion-mnist (apt-get install dataset-fashion-mnist)")
    code, out, _ = run(["demo", "transfer", "--quick", "--out", str(tmp_path)], capsys)
    assert code == 0
    assert (tmp_path / "transfer.png").exists() and (tmp_path / "transfer.json").exists()
    assert "linear_top" in out


def test_demo_bias_variance_writes_its_plots(tmp_path, capsys):
    code, out, _ = run(["demo", "bias-variance", "--out", str(tmp_path)], capsys)
    assert code == 0 and (tmp_path / "bias_variance_error.png").exists()


@pytest.mark.parametrize("text, expected", [("a,b", ("a", "b")), (" a , b ", ("a", "b")), ("", ()), (" ", ()),
                                            ("256", ("256",))])
def test_comma_lists_are_split_and_stripped(text, expected):
    from regularkit.cli.args import _csv
    assert _csv(text) == expected


@pytest.mark.parametrize("text, item", [("256,,256", 2), (",8", 1), ("baseline,", 2), ("a, ,b", 2)])
def test_an_empty_item_in_a_comma_list_is_refused_naming_the_value(text, item):
    """``--widths 256,,256`` used to build a 2-layer model from a 3-item typo without a word (issue 23)."""
    import argparse

    from regularkit.cli.args import _csv, _ints
    for parse in (_csv, _ints):
        with pytest.raises(argparse.ArgumentTypeError, match=rf"^expected comma-separated values without empty items, "
                                                             rf"got '{text}' \(item {item} is empty\)$"):
            parse(text)


def test_a_data_warning_is_one_line_and_the_study_goes_on(tmp_path, capsys):
    rows = ["a,b,y"] + [f"{i / 10},{(i * 7) % 5},{i % 2}" for i in range(40)]
    rows[7] = "0.6o,1,0"
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run(["study", "--data", str(tmp_path / "t.csv"), "--target", "y", "--recipes", "baseline",
                          "--epochs", "1", "--seeds", "1", "--no-progress", "--out", str(tmp_path / "o")], capsys)
    assert code == 0 and "results in" in out
    assert err == (f"regularkit: warning: {tmp_path / 't.csv'}: column 'a' is read as categorical (one-hot, one "
                   "feature per distinct value) because 1 of 40 values are not numbers, the first in row 8: '0.6o'; "
                   "fix the cell if the column is numeric\n")


def test_an_unfinished_study_ends_with_its_runs_the_reason_and_the_rerun_command(monkeypatch, capsys):
    from types import SimpleNamespace

    from regularkit import cli
    from regularkit.study.run import ledger, worker
    monkeypatch.setattr(ledger, "open_study", lambda out, name, storage: ("ledger", out, name, storage))
    seen = {}
    monkeypatch.setattr(worker, "unfinished_runs", lambda plan, study: seen.setdefault("study", study) and {
        "dropout seed 1": "regularkit-study-1 (pid 42) was killed by signal 9 (SIGKILL)"})
    lost = ["regularkit-study-1 (pid 42) was killed by signal 9 (SIGKILL)"]
    monkeypatch.setattr(worker, "lost_workers", lambda study: lost)
    plan = SimpleNamespace(jobs={"a": 1, "b": 2, "c": 3})
    cfg = SimpleNamespace(study_name="s", storage=None, workers=2)
    result = SimpleNamespace(plan=plan, records=[{}, {}], out_dir="o")
    argv = ["study", "--fresh", "--out", "my runs", "--workers", "2"]
    assert cli._unfinished(result, cfg, argv) == cli.INCOMPLETE_EXIT == 75
    assert seen["study"] == ("ledger", "o", "s", None)
    assert capsys.readouterr().err == (
        "regularkit: 1 of 3 runs did not finish (dropout seed 1: regularkit-study-1 (pid 42) was killed by signal 9 "
        "(SIGKILL)); train them with: regularkit study --out 'my runs' --workers 2\n")  # --fresh would move them aside
    # complete although a worker died (the others trained its run): exit 0, and the last line says so
    assert cli._unfinished(SimpleNamespace(plan=plan, records=[{}] * 3, out_dir="o"), cfg, argv) == 0
    assert capsys.readouterr().err == (
        "regularkit: note: 1 study worker(s) died by a signal (regularkit-study-1 (pid 42) was killed by signal 9 "
        "(SIGKILL)); the others trained their runs, so the table is complete\n")
    # the rest still running in another command, no worker of ours lost: exit 0, nothing said
    monkeypatch.setattr(worker, "unfinished_runs", lambda plan, study: {})
    lost.clear()
    assert cli._unfinished(result, cfg, argv) == 0 and capsys.readouterr().err == ""
    # one worker, complete: the ledger is not even opened again
    monkeypatch.setattr(ledger, "open_study", lambda *a: pytest.fail("the ledger was read again"))
    one = SimpleNamespace(study_name="s", storage=None, workers=1)
    assert cli._unfinished(SimpleNamespace(plan=plan, records=[{}] * 3, out_dir="o"), one, argv) == 0
