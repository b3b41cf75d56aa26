"""Every class of bad command line: one line naming the value, exit code 2, and nothing in --out changed.

The table below is the issue's list made concrete (numbers, choices, sizes, data files, folders,
storages, config / recipe / space files with wrong types, searches, demos); each row is a command
line and a regular expression the one-line message must match.  The study folder given with
``--out`` already holds a file before each command, and must hold exactly it afterwards.
"""
import gzip
import struct

import numpy as np
import pytest

from regularkit.cli import main

STUDY = ["study", "--epochs", "1", "--seeds", "1", "--train-size", "40", "--no-progress"]


def npz(path, **over):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((40, 6), dtype=np.float32), "y_train": np.arange(40) % 3,
              "x_test": rng.random((12, 6), dtype=np.float32), "y_test": np.arange(12) % 3}
    arrays.update(over)
    np.savez(path, **arrays)
    return str(path)


def text(path, body, mode="w"):
    if mode == "wb":
        path.write_bytes(body)
    else:
        path.write_text(body)
    return str(path)


def recipe(tmp, name, body):
    return ["--recipe-file", text(tmp / f"{name}.toml", f"[recipes.bad]\n{body}\n"), "--recipes", "bad"]


def cases(tmp):
    """id -> (argv, message regex)."""
    (tmp / "folder").mkdir()
    (tmp / "afile").write_text("x")
    idx = tmp / "fm"
    idx.mkdir()
    for n in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
              "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(idx / n, "wb") as f:  # the header promises 10 images, the payload is cut short
            f.write(struct.pack(">HBB", 0, 8, 3) + struct.pack(">III", 10, 28, 28) + b"\0" * 100)
    table = {}
    # --- whole numbers: argparse refuses non-integers, the config refuses the range
    for flag, field, minimum in (("--epochs", "epochs", 1), ("--seeds", "seeds", 1), ("--batch-size", "batch_size", 1),
                                 ("--workers", "workers", 1), ("--threads", "threads", 1), ("--tune", "tune", 0),
                                 ("--train-size", "train_size", 2)):
        table[f"{flag} below"] = ([flag, str(minimum - 1)], rf"{field} must be >= {minimum}, got {minimum - 1}")
        table[f"{flag} negative"] = ([flag, "-5"], rf"{field} must be >= {minimum}, got -5")
        table[f"{flag} text"] = ([flag, "many"], rf"argument {flag}: invalid int value: 'many'")
        table[f"{flag} float"] = ([flag, "1.5"], rf"argument {flag}: invalid int value: '1.5'")
    # --- real numbers
    for flag, field in (("--lr", "lr"), ("--val-fraction", "val_fraction"), ("--test-fraction", "test_fraction")):
        table[f"{flag} text"] = ([flag, "fast"], rf"argument {flag}: invalid float value: 'fast'")
        table[f"{flag} nan"] = ([flag, "nan"], rf"{field} must be finite, got nan")
        table[f"{flag} inf"] = ([flag, "inf"], rf"{field} must be finite, got inf")
        table[f"{flag} zero"] = ([flag, "0"], rf"{field} must be (> 0|in \(0.0, 1.0\)), got 0")
        table[f"{flag} negative"] = ([flag, "-0.1"], rf"{field} must be (> 0|in \(0.0, 1.0\)), got -0.1")
    table["--val-fraction one"] = (["--val-fraction", "1"], r"val_fraction must be in \(0.0, 1.0\), got 1")
    # --- choices
    for flag, bad in (("--optimizer", "adam"), ("--schedule", "linear"), ("--device", "tpu"), ("--precision", "fp8"),
                      ("--layout", "tables")):
        table[f"{flag} {bad}"] = ([flag, bad], rf"argument {flag}: invalid choice: '{bad}'")
    table["--device cuda without cuda"] = (["--device", "cuda"], r"device 'cuda' asked for, but torch sees no CUDA")
    table["--device mps without mps"] = (["--device", "mps"], r"device 'mps' asked for")
    table["--model a space"] = (["--model", "a b:c"], r"cannot import module 'a b'")
    for bad in ("mlp2", "transformer", "x:", ":build"):
        table[f"--model {bad}"] = (["--model", bad], rf"model must be one of mlp, cnn, resnet, or MODULE:FUNCTION")
    table["--model missing module"] = (["--model", "no_such_module_9:build"], r"cannot import module 'no_such_module_9'")
    table["--model missing file"] = (["--model", "nope/model.py:build"], r"model factory file not found")
    table["--model missing function"] = (["--model", f"{text(tmp / 'm.py', 'x = 1')}:build"], r"has no function 'build'")
    table["--model not callable"] = (["--model", f"{tmp / 'm.py'}:x"], r"must be callable build\(input_shape, num_classes\)")
    table["--model syntax error"] = (["--model", f"{text(tmp / 'bad.py', 'def build(:')}:build"], r"SyntaxError")
    table["--model cnn on vectors"] = (["--model", "cnn", "--data", npz(tmp / "v.npz")], r"--model cnn needs images")
    table["--model resnet on vectors"] = (["--model", "resnet", "--data", npz(tmp / "v2.npz")], r"--model resnet needs images")
    # --- sizes
    for flag in ("--widths", "--channels"):
        table[f"{flag} empty"] = ([flag, ""], rf"{flag[2:]} must be a non-empty list of integers, got \(\)")
        table[f"{flag} zero"] = ([flag, "0"], rf"{flag[2:]} must be >= 1, got 0")
        table[f"{flag} negative"] = ([flag, "64,-1"], rf"{flag[2:]} must be >= 1, got -1")
        table[f"{flag} text"] = ([flag, "wide"], rf"expected comma-separated integers, got 'wide'")
        table[f"{flag} absurd"] = ([flag, "100000000"], rf"{flag[2:]} must be at most 1000000, got 100000000")
    table["--widths too big to fit"] = (["--widths", "900000,900000"], r"builds a model of .* parameters .* GiB")
    table["--image-size zero"] = (["--image-size", "0"], r"image_size must be >= 1, got 0")
    table["--image-size three numbers"] = (["--image-size", "8,8,8"], r"image_size must be one number or H,W")
    # --- recipes
    table["--recipes empty"] = (["--recipes", ""], r"recipes must name at least one recipe")
    table["--recipes twice"] = (["--recipes", "baseline,l2,baseline"], r"recipes names 'baseline' more than once")
    table["--recipes unknown"] = (["--recipes", "baseline,l7"], r"unknown recipe 'l7'")
    table["--recipes case"] = (["--recipes", "Baseline"], r"unknown recipe 'Baseline'")
    table["image recipe on vectors"] = (["--recipes", "baseline,cutout", "--data", npz(tmp / "v3.npz")],
                                        r"recipe 'cutout' cannot run here: it augments images")
    # --- data files
    table["missing npz"] = (["--data", str(tmp / "nope.npz")], r"nope.npz")
    table[".npy file"] = (["--data", text(tmp / "x.npy", b"\x93NUMPY", "wb")], r"\.npy is not a format we read")
    table["text named npz"] = (["--data", text(tmp / "t.npz", "not a zip")], r"cannot read .*t.npz as a .npz archive")
    table["empty folder"] = (["--data", str(tmp / "folder")], r"folder")
    table["unknown name"] = (["--data", "cifar-1000"], r"unknown dataset 'cifar-1000'")
    table["npz missing arrays"] = (["--data", npz(tmp / "m.npz", x_test=None) if False else
                                    text(tmp / "m2.npz", b"", "wb")], r"m2.npz")
    table["npz label out of range"] = (["--data", npz(tmp / "l.npz", y_test=np.full(12, 7), num_classes=np.array(3))],
                                       r"label 7")
    table["npz negative label"] = (["--data", npz(tmp / "n.npz", y_train=np.arange(40) % 3 - 1)], r"label -1")
    table["npz float labels"] = (["--data", npz(tmp / "f.npz", y_train=(np.arange(40) % 3).astype(float))],
                                 r"y_train")
    table["npz nan"] = (["--data", npz(tmp / "nan.npz", x_train=np.full((40, 6), np.nan, np.float32))],
                        r"x_train holds 240 non-finite values")
    table["npz one class"] = (["--data", npz(tmp / "one.npz", y_train=np.zeros(40, int), y_test=np.zeros(12, int))],
                              r"class")
    table["npz test label unseen"] = (["--data", npz(tmp / "u.npz", y_train=np.arange(40) % 2, y_test=np.arange(12) % 3)],
                                      r"y_test holds label 2, which y_train never has")
    table["npz shapes differ"] = (["--data", npz(tmp / "s.npz", x_test=np.zeros((12, 5), np.float32))], r"shape")
    table["csv without target"] = (["--data", text(tmp / "t.csv", "a,y\n1,0\n2,1\n")], r"target")
    table["csv missing target"] = (["--data", str(tmp / "t.csv"), "--target", "label"], r"'label'")
    table["--target on npz"] = (["--data", npz(tmp / "v4.npz"), "--target", "y"], r"target does not apply")
    table["--image-size on digits"] = (["--image-size", "8"], r"image_size does not apply")
    table["--layout on digits"] = (["--layout", "vectors"], r"layout does not apply")
    table["--data-dir without the files"] = (["--data", "fashion-mnist", "--data-dir", str(tmp / "folder")],
                                             r"does not hold Fashion-MNIST: missing")
    table["truncated idx"] = (["--data", "fashion-mnist", "--data-dir", str(idx)], r"train-images-idx3-ubyte.gz")
    # --- folders and storages
    table["--out an existing file"] = (["--out", str(tmp / "afile")], r"is an existing file, not a folder")
    table["--out below a file"] = (["--out", str(tmp / "afile" / "sub")], r"is below .*afile.*, which is a file")
    table["--out empty"] = (["--out", ""], r"out must name a folder, got ''")
    table["--storage unknown scheme"] = (["--storage", "mongodb://x/y"], r"unknown database scheme 'mongodb'")
    table["--storage malformed"] = (["--storage", "postgresql+psycopg2://:::@/"], r"storage")
    table["--storage unreachable"] = (["--storage", "postgresql+psycopg2://u:pw@127.0.0.1:1/db"],
                                      r"storage 'postgresql\+psycopg2://u:\*\*\*@127.0.0.1:1/db' is unreachable")
    table["--storage below a file"] = (["--storage", str(tmp / "afile" / "j.journal")], r"which is a file")
    # --- config files: a study.toml with strict types
    table["--config missing"] = (["--config", str(tmp / "none.toml")], r"TOML file not found")
    table["--config folder"] = (["--config", str(tmp / "folder")], r"is a folder, not a TOML file")
    table["--config not utf-8"] = (["--config", text(tmp / "l1.toml", b"epochs = 3 # \xff\xfe", "wb")],
                                   r"is not UTF-8 text")
    table["--config bad toml"] = (["--config", text(tmp / "b.toml", "epochs = = 3")], r"invalid TOML")
    table["--config unknown key"] = (["--config", text(tmp / "k.toml", "epoch = 3")], r"unknown field 'epoch'")
    table["--config quoted number"] = (["--config", text(tmp / "q.toml", 'epochs = "3"')],
                                       r"epochs must be an integer, got '3'")
    table["--config quoted float"] = (["--config", text(tmp / "qf.toml", 'lr = "0.1"')], r"lr must be a number, got '0.1'")
    table["--config quoted boolean"] = (["--config", text(tmp / "qb.toml", 'combine = "false"')],
                                        r"combine must be true or false, got 'false'")
    table["--config boolean number"] = (["--config", text(tmp / "bn.toml", "epochs = true")],
                                        r"epochs must be an integer, got True")
    table["--config widths string"] = (["--config", text(tmp / "w.toml", 'widths = "64"')], r"widths must be")
    table["--config recipes string"] = (["--config", text(tmp / "r.toml", 'recipes = "baseline"')], r"recipes")
    # --- recipe files: types are strict, names are checked
    table["--recipe-file folder"] = (["--recipe-file", str(tmp / "folder"), "--recipes", "baseline"], r"is a folder")
    table["--recipe-file no recipes"] = (["--recipe-file", text(tmp / "e.toml", "x = 1"), "--recipes", "baseline"],
                                         r"has no \[recipes.NAME\] tables")
    table["--recipe-file extra table"] = (["--recipe-file", text(tmp / "et.toml", "[recipes.a]\n[other]\nx = 1"),
                                           "--recipes", "a"], r"holds 'other' beside \[recipes.NAME\] tables")
    table["--recipe-file bad name"] = (["--recipe-file", text(tmp / "bn2.toml", '[recipes."a/b"]'), "--recipes",
                                        "baseline"], r"recipe name 'a/b' .* must be")
    table["recipe unknown field"] = (recipe(tmp, "uf", '"reg.l3" = 0.1'), r"unknown field 'l3'")
    table["recipe quoted boolean"] = (recipe(tmp, "qb2", '"augment.hflip" = "false"'),
                                      r"hflip must be true or false, got 'false'")
    table["recipe quoted number"] = (recipe(tmp, "qn", '"reg.l2" = "0.01"'), r"l2 must be a number, got '0.01'")
    table["recipe negative weight decay"] = (recipe(tmp, "wd", '"optim.weight_decay" = -1.0'),
                                             r"weight_decay must be >= 0, got -1.0")
    table["recipe dropout out of range"] = (recipe(tmp, "do", '"model.dropout" = 1.5'), r"dropout must be in \[0, 1\)")
    table["recipe list for a number"] = (recipe(tmp, "ln", '"reg.l2" = [0.1]'), r"l2 must be a number")
    table["recipe description number"] = (recipe(tmp, "dn", "description = 3"), r"description must be text")
    table["recipe early stopping on test"] = (recipe(tmp, "es", '"reg.early_stopping" = {monitor = "test_loss"}'),
                                              r"test")
    table["recipe strength not a table"] = (recipe(tmp, "st", 'strength = 3'), r"strength must be a table")
    table["recipe strength bad range"] = (recipe(tmp, "sr", 'strength = {field = "reg.l2", log_uniform = [1, 0.1]}'),
                                          r"low < high")
    table["recipe batch size float"] = (recipe(tmp, "bs", '"optim.batch_size" = 32.0'),
                                        r"batch_size must be an integer, got 32.0")
    table["recipe unknown activation"] = (recipe(tmp, "ua", '"model.activation" = "swish2"'),
                                          r"model.activation must be one of")
    table["recipe snapshot cycles above epochs"] = (recipe(tmp, "sc", '"reg.snapshot_cycles" = 5'),
                                                    r"needs 5 cosine cycles and the study trains 1 epochs")
    return table


def search_cases(tmp):
    space = text(tmp / "search_s.toml", '[space]\n"optim.lr" = {log_uniform = [1e-3, 1e-1]}\n')
    return {
        "search without trials": (["--space", space], r"--trials is required without --stages"),
        "search trials zero": (["--space", space, "--trials", "0"], r"--trials must be >= 1, got 0"),
        "search workers zero": (["--space", space, "--trials", "2", "--workers", "0"], r"workers must be >= 1, got 0"),
        "search bad stages": (["--space", space, "--stages", "3-2"], r"expected TRIALS:EPOCHS"),
        "search zero stage": (["--space", space, "--stages", "0:2"], r"--stages needs TRIALS:EPOCHS of at least 1:1"),
        "search space missing": (["--space", str(tmp / "search_none.toml"), "--trials", "2"], r"TOML file not found"),
        "search space folder": (["--space", str(tmp / "folder"), "--trials", "2"], r"is a folder"),
        "search space no table": (["--space", text(tmp / "search_n.toml", "x = 1"), "--trials", "2"], r"no \[space\] table"),
        "search space extra": (["--space", text(tmp / "search_x.toml", '[space]\nlr = {uniform = [0, 1]}\n[more]\n'),
                                "--trials", "2"], r"holds 'more' beside the \[space\] table"),
        "search space invalid for recipe": (["--space", text(tmp / "search_d.toml", '[space]\n"model.dropout" = {uniform = '
                                                             '[0.0, 1.5]}\n'), "--recipe", "dropout", "--trials", "2"],
                                            r"space.model.dropout = 1.5 does not make a valid recipe 'dropout'"),
        "search space unknown field": (["--space", text(tmp / "search_u.toml", '[space]\n"reg.l3" = {uniform = [0, 1]}\n'),
                                       "--trials", "2"], r"unknown field 'l3'"),
        "search space quoted bounds": (["--space", text(tmp / "search_q.toml", '[space]\n"reg.l2" = {uniform = ["0", "1"]}\n'),
                                        "--trials", "2"], r"must be a number, got '0'"),
        "search space low above high": (["--space", text(tmp / "search_lh.toml", '[space]\n"reg.l2" = {uniform = [1, 0]}\n'),
                                         "--trials", "2"], r"low < high"),
        "search unknown recipe": (["--space", space, "--recipe", "l7", "--trials", "2"], r"unknown recipe 'l7'"),
        "search sampler": (["--space", space, "--trials", "2", "--sampler", "cmaes"], r"invalid choice: 'cmaes'"),
        "search storage": (["--space", space, "--trials", "2", "--storage", "mongodb://x"], r"unknown database scheme"),
    }



def _table(tmp):
    return {**{k: (STUDY + argv, m) for k, (argv, m) in cases(tmp).items()},
            **{k: (["search", "--epochs", "1", "--train-size", "40"] + argv, m) for k, (argv, m) in search_cases(tmp).items()},
            "demo option": (["demo", "bias-variance", "--quick"], r"demo 'bias-variance' takes no --quick"),
            "demo unknown": (["demo", "colour"], r"invalid choice: 'colour'"),
            "unknown command": (["studdy"], r"invalid choice: 'studdy'"),
            "unknown flag": (["study", "--epoch", "3"], r"unrecognized arguments: --epoch"),
            "data download unknown": (["data", "download", "mnist"], r"invalid choice: 'mnist'")}


def _ids():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        return sorted(_table(Path(tmp)))


IDS = _ids()


def test_the_table_has_the_issues_classes_and_size():
    assert len(IDS) >= 130


@pytest.mark.parametrize("case", IDS)
def test_bad_command_line(case, tmp_path, capsys):
    argv, pattern = _table(tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("results the user already has")
    if "--out" not in argv and argv[0] in ("study", "search"):
        argv = [*argv, "--out", str(out)]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors: the same one line, then exit 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert err.startswith("regularkit: error: ") and err.count("\n") == 1, err
    import re
    assert re.search(pattern, err), err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "results the user already has"
