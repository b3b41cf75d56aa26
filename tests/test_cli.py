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
