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


# --- issue 23 (items 2-5, 7, 10): tracebacks after the checks passed, runaway sizes, damaged folders -------------
def issue23_cases(tmp):
    """id -> (argv after ``study``, message regex); every folder under the test's own must stay as it was."""
    from PIL import Image
    (tmp / "afile").write_text("x")
    (tmp / "nosuffix").write_text("a file that is no journal\n")
    images = tmp / "imgs"
    for c in ("a", "b"):
        (images / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 4), 40 * i, np.uint8)).save(images / c / f"{i}.png")
    strength = '"reg.l2" = 0.01\nstrength = {field = "%s", log_uniform = [1e-4, 1e-1]}'
    table = {
        "--out 300 characters": (["--out", str(tmp / ("a" * 300))],
                                 r"has a name of 300 bytes; the filesystem takes 255"),
        "--out in /proc": (["--out", "/proc/regularkit-x"],
                           r"out '/proc/regularkit-x' cannot be written: .* in '/proc'"),
        "--storage file without suffix": (["--storage", str(tmp / "nosuffix")],
                                          r"is an existing file that is not an Optuna journal"),
        "--storage mysql without driver": (["--storage", "mysql://u:pw@127.0.0.1:1/db"],
                                           r"storage 'mysql://u:\*\*\*@127.0.0.1:1/db' needs the database driver "
                                           r"'mysqldb', which is not installed \(pip install mysqlclient"),
        "--artifacts below a file": (["--artifacts", str(tmp / "afile" / "sub")],
                                     r"artifacts '.*afile/sub' is below '.*afile', which is a file"),
        "--artifacts a file": (["--artifacts", str(tmp / "afile")], r"artifacts '.*afile' is an existing file"),
        "--workers 1000": (["--workers", "1000"], r"workers 1000 is more than 4 per core \(\d+ on this machine's \d+ "
                                                  r"cores\)"),
        "--train-size 10**12": (["--train-size", str(10**12)],
                                r"train_size 1000000000000 is more than the 1,257 training examples of digits"),
        "--image-size 100000": (["--data", str(images), "--image-size", "100000"],
                                r"image folder '.*imgs' \(6 images of 1×100000×100000 float32, twice while loading\) "
                                r"needs 447\.0 GiB, more than 50% of the .* GiB available; pass a smaller image_size"),
        "recipe strength unknown field": (recipe(tmp, "s1", strength % "reg.nothing"),
                                          r"strength field 'reg.nothing': reg has no field 'nothing' \(fields: "),
        "recipe strength not a number": (recipe(tmp, "s2", strength % "optim.optimizer"),
                                         r"strength field 'optim.optimizer' is not a number"),
        "recipe strength below a number": (recipe(tmp, "s3", strength % "model.dropout.rate"),
                                           r"model.dropout has no field 'rate'"),
        "recipe coupled unknown field": (recipe(tmp, "s4", '"reg.l1" = 0.01\nstrength = {field = "reg.l1", '
                                                           'log_uniform = [1e-4, 1e-1], coupled = {"reg.l9" = 2.0}}'),
                                         r"strength field 'reg.l9': reg has no field 'l9'"),
    }
    for name, make in (("results.csv", "mkdir"), ("report.html", "mkdir"), ("study.toml", "mkdir"),
                       ("verdict.json", "mkdir"), ("runs", "touch")):
        folder = tmp / f"out-{name}"
        folder.mkdir()
        getattr(folder / name, make)()
        kind = "folder" if make == "mkdir" else "file"
        table[f"{name} replaced by a {kind}"] = (["--out", str(folder)], rf"holds a {kind} '{name}' where the study")
    return table


def issue23_search_cases(tmp):
    space = text(tmp / "s23.toml", '[space]\n"reg.l2" = {log_uniform = [1e-3, 1e-1]}\n')
    return {"search --seed -1": (["--space", space, "--trials", "1", "--seed", "-1"], r"seed must be >= 0, got -1"),
            "search --seed 2**32": (["--space", space, "--trials", "1", "--seed", str(2**32)],
                                    r"seed must be <= 4294967295, got 4294967296")}


def _issue23_table(tmp):
    return {**{k: (STUDY + argv, m) for k, (argv, m) in issue23_cases(tmp).items()},
            **{k: (["search", "--epochs", "1", "--train-size", "40"] + argv, m)
               for k, (argv, m) in issue23_search_cases(tmp).items()}}


def _issue23_ids():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        return sorted(_issue23_table(Path(tmp)))


def _tree(folder):
    """Every path below ``folder`` with its bytes (None for folders): what "byte-identical" compares."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", _issue23_ids())
def test_issue23_bad_command_line(case, tmp_path, capsys):
    import importlib.util
    import re
    if "mysql" in case and importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("the MySQL driver is installed here")
    argv, pattern = _issue23_table(tmp_path)[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("results the user already has")
    if "--out" not in argv:
        argv = [*argv, "--out", str(out)]
    given = argv[argv.index("--out") + 1]
    before = _tree(tmp_path) if len(given) < 200 else None
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert err.startswith("regularkit: error: ") and err.count("\n") == 1, err
    assert re.search(pattern, err), err
    if before is not None:
        assert _tree(tmp_path) == before  # nothing anywhere under the test's folder was written or moved


@pytest.mark.parametrize("url, driver, how", [
    ("postgresql+psycopg2://u:pw@127.0.0.1:1/db", "psycopg2", "pip install psycopg2-binary"),
    # SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3 (older ones: psycopg2)
    ("postgresql://u:pw@127.0.0.1:1/db", None, None),
])
def test_issue23_postgresql_without_its_driver_is_one_line(tmp_path, capsys, monkeypatch, url, driver, how):
    """psycopg2 is installed here: the missing driver is simulated (an import of it fails)."""
    import sys

    import sqlalchemy
    default = sqlalchemy.make_url(url).get_dialect().driver
    driver = driver or default
    how = how or {"psycopg": "pip install 'psycopg[binary]', or name psycopg2 in the URL: postgresql+psycopg2://",
                  "psycopg2": "pip install psycopg2-binary"}[driver]
    monkeypatch.setitem(sys.modules, driver, None)  # import <driver> -> ImportError
    out = tmp_path / "o"
    code = main([*STUDY, "--storage", url, "--out", str(out)])
    err = capsys.readouterr().err
    shown = url.replace(":pw@", ":***@")
    assert code == 2 and err == (f"regularkit: error: storage {shown!r} needs the database driver {driver!r}, which is "
                                 f"not installed ({how})\n"), err
    assert not out.exists()


@pytest.mark.slow
def test_issue23_a_torn_journal_line_is_repaired_and_the_rerun_keeps_the_finished_runs(tmp_path, capsys):
    """``truncate -s -40 OUT/ledger.journal``: a traceback before, then ``cannot open storage None`` forever."""
    import subprocess
    import sys
    out = tmp_path / "o"
    argv = [*STUDY, "--recipes", "baseline,l2", "--out", str(out)]
    # the first study in its own process: the run whose end was torn must belong to a worker that is gone
    first = subprocess.run([sys.executable, "-c", "import sys; from regularkit.cli import main; sys.exit(main())",
                            *argv], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    journal = out / "ledger.journal"
    journal.write_bytes(journal.read_bytes()[:-40])
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "2 recipes x 1 seeds: 1 runs finished, 1 to do" in captured.out  # only the torn run is redone
    warning = [line for line in captured.err.splitlines() if "torn" in line]
    assert len(warning) == 1 and f"journal {str(journal)!r}: cut a torn record at byte " in warning[0]
    assert len(list(out.glob("ledger.journal.torn-*"))) == 1
    assert main(argv) == 0  # and every later rerun is clean
    captured = capsys.readouterr()
    assert "2 runs finished, 0 to do" in captured.out and "torn" not in captured.err


# --- issue 23 (items 8, 9): model factories that pass a one-batch probe, and silent acceptances --------------
ISSUE23_FACTORIES = '''
import sys
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, n, k, how):
        super().__init__()
        self.lin, self.how = nn.Linear(n, k), how

    def forward(self, x):
        z = x.flatten(1)
        if self.how == "fixed_batch":
            return self.lin(z.reshape(2, -1)[:, : self.lin.in_features])
        out = self.lin(z)
        return out.long() if self.how == "integer" else out * float("nan") if self.how == "nan" else out


class Free(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]


def _make(how):
    return lambda shape, k: Net(int(torch.tensor(shape).prod()), k, how)


fixed_batch, integer, nan = _make("fixed_batch"), _make("integer"), _make("nan")


def no_parameters(shape, k):
    return Free()


def exits(shape, k):
    sys.exit(3)
'''


def issue23_probe_cases(tmp):
    """id -> (argv after ``study``, message regex), for items 8 and 9; run from ``tmp`` (relative paths)."""
    f = text(tmp / "factories23.py", ISSUE23_FACTORIES)
    text(tmp / "models.txt", ISSUE23_FACTORIES)
    labels = np.r_[np.arange(36) % 9, [50000] * 4]
    call = r"the model from .*factories23.py:{}\(\(1, 8, 8\), 10\)"
    return {
        "factory fixed batch": (["--model", f"{f}:fixed_batch"], call.format("fixed_batch") +
                                r" maps a batch of shape \(3, 1, 8, 8\) to \(2, 10\); expected logits of shape "
                                r"\(3, 10\); is a batch size fixed inside the model\?$"),
        "factory no parameters": (["--model", f"{f}:no_parameters"],
                                  call.format("no_parameters") + r" has no parameters; training would change nothing"),
        "factory integer logits": (["--model", f"{f}:integer"], call.format("integer") +
                                   r" returns logits of dtype torch.int64; expected floating point logits"),
        "factory nan logits": (["--model", f"{f}:nan"], call.format("nan") + r" returns 30 non-finite logit\(s\)"),
        "factory sys.exit(3)": (["--model", f"{f}:exits"], r"exits\(\(1, 8, 8\), 10\) raised SystemExit\(3\): it "
                                                           r"called sys.exit, where a factory must return a model"),
        "factory models.txt": (["--model", "models.txt:build"],
                               r"model factory file must be a Python file ending in \.py, got '.*models.txt' "
                               r"\(from 'models.txt:build'\)"),
        "npz labels with a gap": (["--data", npz(tmp / "gap.npz", y_train=labels, y_test=np.arange(12) % 9)],
                                  r"gap.npz: labels must be 0\.\.k-1, got 10 distinct labels from 0 to 50000 "
                                  r"\(label 9 has no sample\)"),
        "--data-dir with an npz": (["--data", npz(tmp / "dd.npz"), "--data-dir", str(tmp)],
                                   r"dd.npz: data_dir does not apply to an .npz file \(it is where the fashion-mnist "
                                   r"files are\), got"),
        "--data-dir with digits": (["--data-dir", str(tmp)], r"digits: data_dir does not apply to a dataset bundled"),
        "--widths empty item": (["--widths", "256,,256"], r"argument --widths: expected comma-separated values without "
                                                          r"empty items, got '256,,256' \(item 2 is empty\)"),
        "--channels empty item": (["--model", "cnn", "--channels", ",8"], r"argument --channels: .* got ',8' \(item 1 "
                                                                           r"is empty\)"),
        "--recipes empty item": (["--recipes", "baseline,,dropout"], r"argument --recipes: expected comma-separated "
                                 r"values without empty items, got 'baseline,,dropout' \(item 2 is empty\)"),
        "--recipes trailing comma": (["--recipes", "baseline,"], r"got 'baseline,' \(item 2 is empty\)"),
        "--model cnn deeper than the image": (["--model", "cnn", "--channels", "4,8,16,16"],
                                              r"a CNN with 4 conv stage\(s\) .* needs inputs of at least 16 x 16, got "
                                              r"8 x 8; give at most 3 channel stage\(s\)"),
    }


def _issue23_probe_ids():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        return sorted(issue23_probe_cases(Path(tmp))) + ["demo transfer --threads 0"]


def _files(folder):
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", _issue23_probe_ids())
def test_issue23_probe_and_silent_acceptances(case, tmp_path, capsys, monkeypatch):
    import re
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("results the user already has")
    if case == "demo transfer --threads 0":  # 0 was dropped as falsy and the default used
        argv, pattern = ["demo", "transfer", "--threads", "0", "--out", str(out)], r"threads must be >= 1, got 0"
    else:
        argv, pattern = issue23_probe_cases(tmp_path)[case]
        argv = [*STUDY, *argv, "--out", str(out)]
    before = _files(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors: the same one line, then exit 2
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert err.startswith("regularkit: error: ") and err.count("\n") == 1, err
    assert re.search(pattern, err), err
    assert _files(tmp_path) == before  # byte-identical: nothing written, moved or removed
