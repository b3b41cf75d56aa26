"""README.md, run: every command of its code blocks and inline code, and its Python and TOML blocks.

Every shell command in README.md (a line of a ``sh`` block, or inline code starting with ``regularkit``,
``make`` or ``python``) has a case in :data:`CASES` saying how it runs here; a README command without a
case fails, and so does a case whose command left the README.  How each runs:

* every ``regularkit study`` command is *planned* with its own arguments, as the CLI would: the real
  parser (a flag that no longer exists exits 2), :func:`regularkit.cli.study_config`, then
  :func:`regularkit.study.plan.make_plan`, which resolves the recipes (a removed name is refused), loads
  and splits the data, builds and probes the model and decides which recipes apply, and trains
  nothing.  An example must draw no applicability warning and leave no recipe out: flips on digits
  (whose classes a flip changes) fail here.
* ``run`` cases then run the command through :func:`regularkit.cli.main` with the README's arguments
  followed by the overrides listed in the case (argparse keeps the last value), each with its reason:
  fewer seeds, epochs and examples, a results folder in ``tmp_path``.
* the files the README's commands name (``my_data.npz``, ``photos/``, ``patients.csv``,
  ``my_models.py``, ``my_package``) are written small in ``tmp_path``, the working directory; the
  TOML blocks are written under the name of their first-line comment (``# space.toml``); Fashion-MNIST
  is a small fake in ``$REGULARKIT_DATA`` (random pixels, the real files' format), so the suite needs
  neither the real data nor a network.

The Python blocks are executed (with the shrinking replacements listed in :data:`PYTHON_SHRINK`); the
TOML blocks must read as a search space and a recipe file.  The names in the README's tables, its flags
and its links to docs/ are checked in tests/test_readme_tables.py.
"""
from __future__ import annotations

import hashlib
import importlib
import re
import runpy
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from _helpers.readme import BLOCKS, PROSE, ROOT

from regularkit.cli import main, study_config
from regularkit.cli.args import build_parser
from regularkit.data.datasets import FASHION_MNIST_FILES
from regularkit.data.idx import write_idx
from regularkit.errors import RegularkitError
from regularkit.search import SearchSpace
from regularkit.study.plan import make_plan
from regularkit.study.recipes import RECIPES, load_recipe_file

#: Appended to every run of a ``regularkit study`` command: its results folder in tmp_path, no bar.
QUIET = ["--no-progress"]
#: The overrides that shrink a study to seconds: 2 seeds keep the paired statistics and the verdict.
SMALL_STUDY = ["--seeds", "2", "--epochs", "2"]


@dataclass(frozen=True)
class Case:
    """How one README command runs here.

    ``mode``: ``plan`` (a study command planned, nothing trained), ``run`` (planned if a study, then run
    with ``overrides`` appended), ``makefile`` (the Makefile target checked, not run: ``why``).
    ``plan_overrides``: appended for the plan as well (only what this machine cannot do as written).
    ``skips``: the default recipes the study leaves out here, with a note in its table (none elsewhere).
    """

    mode: str
    why: str
    overrides: tuple[str, ...] = ()
    plan_overrides: tuple[str, ...] = ()
    skips: tuple[str, ...] = ()


def _no_cuda() -> tuple[str, ...]:
    return () if torch.cuda.is_available() else ("--device", "cpu")


CASES: dict[str, Case] = {
    "make study": Case("run", "the default study with 2 seeds of 2 epochs (the README's numbers come from the full "
                              "run; here the command must work)", (*SMALL_STUDY,)),
    "make test": Case("makefile", "it is this test suite; the Makefile's test target must run pytest"),
    'make study ARGS="--seeds 5"': Case("plan", "5 seeds of the default study: the plan checks the flag"),
    'make study ARGS="--data fashion-mnist --epochs 20"': Case("plan", "20 epochs on Fashion-MNIST: planned"),
    'make study ARGS="--tune 8"': Case("plan", "the tuning itself is tested in tests/study/tune/test_tuning.py"),
    "regularkit study": Case("plan", "the default study (run above through `make study`)"),
    "regularkit study --help": Case("run", "prints the options and exits 0"),
    "regularkit study --data fashion-mnist --model mlp --recipes baseline,l2,dropout,early-stopping --seeds 3 "
    "--epochs 20 --out runs/fmnist": Case("plan", "an MLP study of Fashion-MNIST; the recipes train in the "
                                                  "default study's run"),
    "regularkit study --data fashion-mnist --model cnn --channels 16,32 --train-size 2000 --epochs 10 "
    "--recipes baseline,flip-crop,tta": Case(
        "run", "the flip example: each recipe trains (flips and crops, TTA) on 100 images for one epoch, "
               "validated on 128",
        ("--seeds", "1", "--epochs", "1", "--train-size", "100", "--val-fraction", "0.02")),
    "regularkit study --recipe-file my_recipes.toml --recipes baseline,my-l2": Case(
        "run", "the README's recipe file trains", (*SMALL_STUDY,)),
    "regularkit recipes": Case("run", "lists the recipes (checked against the README's tables)"),
    "regularkit study --data my_data.npz": Case("run", "the default recipes on a small .npz of vectors",
                                                (*SMALL_STUDY,)),
    "regularkit study --data photos/ --image-size 32,32 --model cnn": Case(
        "plan", "an image folder of 24 PNGs of three sizes, resized; the CNN trains in the flip example"),
    "regularkit study --data patients.csv --target diagnosis": Case(
        "plan", "a CSV of 60 rows with a category column; tables train in tests/data and tests/study"),
    "regularkit study --model my_models.py:build": Case("run", "a user's factory with its own nn.Dropout",
                                                        (*SMALL_STUDY,)),
    "regularkit study --model my_package.models:build": Case("plan", "the same factory, imported by module name"),
    "regularkit study --device cuda --precision bf16 --workers 2": Case(
        "plan", "on a machine without CUDA planned on the CPU (bf16 and two workers as written); the workers are "
                "tested in tests/study/run/test_worker.py", plan_overrides=_no_cuda()),
    "regularkit study --data fashion-mnist --model cnn --train-size 5000 --epochs 8 --tune 4 --recipes baseline,"
    "dropblock,randaugment,trivialaugment,augmix,sam,rdrop,distill": Case(
        "plan", "each of these recipes is assembled in tests/recipe/test_conformance.py; distill trains in "
                "tests/study/run/test_teacher.py; the study itself is docs/results.md section 8 (42 min); the "
                "stand-in Fashion-MNIST here holds 3,200 training images, so 2,000 of them",
        plan_overrides=("--train-size", "2000")),
    "python bench/diabetes_csv.py diabetes.csv": Case("run", "writes the CSV the next command reads"),
    "regularkit study --data diabetes.csv --target target --seeds 5 --tune 8": Case(
        "plan", "a regression study with tuning (tests/study/test_regression_study.py trains one)",
        skips=("label-smoothing",)),  # the default list: smoothing a numeric target means nothing, said in the table
    "regularkit speedrun fashion-mnist --seeds 3": Case(
        "run", "one epoch of one seed on 256 images (10 minutes per seed as written)",
        ("--seeds", "1", "--epochs", "1", "--train-size", "256", "--val-size", "128", "--test-size", "128",
         "--batch-size", "32", "--threads", "1", "--no-progress")),
    "regularkit speedrun fashion-mnist --tune 4 --epochs 35 --seeds 3": Case(
        "run", "2 trials of 1 epoch, then one seed, on 256 images (tests/speedrun/test_tune.py tests the search)",
        ("--tune", "2", "--seeds", "1", "--epochs", "1", "--train-size", "256", "--val-size", "128",
         "--test-size", "128", "--batch-size", "32", "--threads", "1", "--no-progress")),
    "regularkit search --space space.toml --recipe dropout --trials 40 --final-test": Case(
        "run", "2 trials of 1 epoch instead of 40 of the default epochs", ("--trials", "2", "--epochs", "1")),
    "regularkit search --space space.toml --stages 30:5,20:20 --workers 2": Case(
        "run", "two stages of 2 and 1 trials of 1 epoch, in this process (workers spawn Python processes; "
               "tests/search tests them)", ("--stages", "2:1,1:1", "--workers", "1")),
    "regularkit data download fashion-mnist": Case(
        "run", "no network in tests: the fake files served from a file:// mirror, their checksums patched in"),
    "regularkit demo bias-variance": Case("run", "the demo names in its comment must be the demos there are"),
}

#: Replacements that shrink a Python block (each must be found in the block): old -> new, and why.
PYTHON_SHRINK = {"epochs=60": ("epochs=2", "two epochs instead of sixty")}


# --------------------------------------------------------------------------- extraction

def readme_commands() -> list[str]:
    """The README's shell commands, each normalized to its tokens joined by spaces (quotes kept)."""
    found: list[str] = []
    for lang, body in BLOCKS:
        if lang != "sh":
            continue
        for line in body.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            if tokens:
                found.append(_normal(tokens))
    for span in re.findall(r"`((?:regularkit|make|python) [^`]*|make study)`", PROSE):
        found.append(_normal(shlex.split(span)))
    return list(dict.fromkeys(found))


def _normal(tokens: list[str]) -> str:
    """Tokens joined by spaces; ``ARGS=...`` quoted back as the README writes it."""
    return " ".join(f'ARGS="{t[5:]}"' if t.startswith("ARGS=") else t for t in tokens)


def _make_recipe(target: str) -> str:
    """The command line of a Makefile target (its first recipe line)."""
    text = (ROOT / "Makefile").read_text()
    m = re.search(rf"^{re.escape(target)}:.*\n\t(.+)$", text, re.M)
    assert m, f"Makefile has no target {target!r}"
    return m.group(1)


def argv_of(command: str) -> list[str]:
    """The ``regularkit`` arguments a README command runs (``make study ARGS=...`` through the Makefile)."""
    tokens = shlex.split(command)
    if tokens[0] == "make":
        recipe = _make_recipe(tokens[1])
        assert recipe == "$(VENV)/bin/regularkit study $(ARGS)", recipe
        args = [t[5:] for t in tokens[2:] if t.startswith("ARGS=")]
        return ["study", *shlex.split(args[0] if args else "")]
    assert tokens[0] == "regularkit", command
    return tokens[1:]


def test_every_readme_command_has_a_case_and_every_case_a_readme_command():
    commands = readme_commands()
    assert len(commands) >= 20  # the extraction finds the README's commands at all
    assert sorted(set(commands) - set(CASES)) == [], "README commands without a case in CASES"
    assert sorted(set(CASES) - set(commands)) == [], "cases whose command is no longer in the README"


# --------------------------------------------------------------------------- the files the commands name

FACTORY = '''
import math
from torch import nn


def build(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 32), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(32, num_classes))
'''


def _write_fake_fashion(folder: Path, n_train: int, n_test: int) -> dict[str, str]:
    """The four Fashion-MNIST IDX files with random pixels; their MD5s by file name."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    arrays = [rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), (np.arange(n_train) % 10).astype(np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), (np.arange(n_test) % 10).astype(np.uint8)]
    for name, array in zip(FASHION_MNIST_FILES, arrays):
        write_idx(folder / name, array, gzip=True)
    return {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in FASHION_MNIST_FILES}


@pytest.fixture(scope="module")
def fake_fashion(tmp_path_factory):
    """A fake Fashion-MNIST of 3,200 training images: enough for the flip example's ``--train-size 2000``
    once validation is carved off."""
    folder = tmp_path_factory.mktemp("fashion") / "fashion-mnist"
    return folder, _write_fake_fashion(folder, n_train=3200, n_test=100)


@pytest.fixture
def readme_dir(tmp_path, monkeypatch, fake_fashion):
    """``tmp_path`` as the working directory, holding every file the README's commands name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGULARKIT_DATA", str(fake_fashion[0]))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "my_data.npz", x_train=rng.random((90, 8), dtype=np.float32), y_train=np.arange(90) % 3,
             x_test=rng.random((30, 8), dtype=np.float32), y_test=np.arange(30) % 3)
    for name in ("cat", "dog", "owl"):
        (tmp_path / "photos" / name).mkdir(parents=True)
        for i in range(8):
            size = (20 + 4 * (i % 3), 24)
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / name / f"{i}.png")
    rows = ["age,smoker,pressure,diagnosis"] + [
        f"{30 + i},{'yes' if i % 2 else 'no'},{100 + (i * 7) % 40},{('flu', 'cold', 'none')[i % 3]}" for i in range(60)]
    (tmp_path / "patients.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "my_models.py").write_text(FACTORY)
    (tmp_path / "my_package").mkdir()
    (tmp_path / "my_package" / "__init__.py").write_text("")
    (tmp_path / "my_package" / "models.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_package", raising=False)
    monkeypatch.delitem(sys.modules, "my_package.models", raising=False)
    for name, text in toml_blocks().items():
        (tmp_path / name).write_text(text)
    return tmp_path


def toml_blocks() -> dict[str, str]:
    """The README's TOML blocks by the file name of their first line (``# space.toml``)."""
    out = {}
    for lang, body in BLOCKS:
        if lang == "toml":
            m = re.match(r"# (\S+\.toml)\n", body)
            assert m, f"a README TOML block must start with '# <file>.toml', got {body.splitlines()[0]!r}"
            out[m.group(1)] = body
    return out


def test_the_toml_blocks_are_a_search_space_and_a_recipe_file(tmp_path):
    blocks = toml_blocks()
    assert set(blocks) == {"space.toml", "my_recipes.toml"}
    for name, text in blocks.items():
        (tmp_path / name).write_text(text)
    space = SearchSpace.from_toml(tmp_path / "space.toml")
    assert set(space) == {"optim.lr", "reg.l2", "model.dropout"}
    recipes = load_recipe_file(tmp_path / "my_recipes.toml")
    assert list(recipes) == ["my-l2"] and recipes["my-l2"][1] == {"reg.l2": 3e-4}


# --------------------------------------------------------------------------- the commands

def _plan(argv: list[str]):
    args = build_parser().parse_args(argv)
    assert args.command == "study"
    return make_plan(study_config(args))


def _params():
    """The cases, a run that trains marked slow (they stay in the default run)."""
    for command, case in CASES.items():
        slow = case.mode == "run" and case.overrides
        yield pytest.param(command, marks=[pytest.mark.slow] if slow else [], id=command[:90])


@pytest.mark.parametrize("command", list(_params()))
def test_readme_command(command, readme_dir, fake_fashion, capsys, monkeypatch):
    case = CASES[command]
    if case.mode == "makefile":
        assert _make_recipe(shlex.split(command)[1]) == "$(PY) -m pytest $(ARGS)"
        return
    if command.startswith("python "):
        script, *args = shlex.split(command)[1:]
        monkeypatch.setattr(sys, "argv", [script, *args])
        runpy.run_path(str(ROOT / script), run_name="__main__")
        assert (readme_dir / args[0]).read_text().startswith("age,sex,bmi,bp,")
        return
    argv = argv_of(command)
    if argv[0] == "study" and "--help" not in argv:
        if "diabetes.csv" in argv:  # the README writes it with the command before
            monkeypatch.setattr(sys, "argv", ["bench/diabetes_csv.py", "diabetes.csv"])
            runpy.run_path(str(ROOT / "bench" / "diabetes_csv.py"), run_name="__main__")
        plan = _plan([*argv, *case.plan_overrides])
        assert plan.jobs and sorted(plan.skipped) == sorted(case.skips), plan.skipped
        assert not any(plan.warnings.values()), f"{command}: {plan.warnings}"
        if case.mode == "plan":
            return
        argv = [*argv, *case.overrides, *QUIET, "--out", str(readme_dir / "out")]
    else:
        argv = [*argv, *case.overrides, *_extra(argv, readme_dir, fake_fashion, monkeypatch)]
    capsys.readouterr()
    if "--help" in argv:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert "usage: regularkit study" in out
        return
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    _check_output(argv, out, readme_dir)


def _extra(argv: list[str], root: Path, fake_fashion, monkeypatch) -> list[str]:
    """Where the non-study commands write (tmp_path), and the download's mirror."""
    if argv[0] == "search":
        return ["--out", str(root / "search")]
    if argv[0] == "speedrun":
        return ["--out", str(root / "speedrun")]
    if argv[0] == "demo":
        return ["--out", str(root / "demos")]
    if argv[0] == "data":
        dl = importlib.import_module("regularkit.data.download")
        folder, md5 = fake_fashion
        monkeypatch.setitem(dl.DOWNLOADS, "fashion-mnist", md5)
        return ["--base-url", folder.as_uri(), "--dest", str(root / "downloaded")]
    return []


def _check_output(argv: list[str], out: str, root: Path) -> None:
    """What each command must leave behind: the files it promises."""
    command = argv[0]
    if command == "study":
        assert (root / "out" / "results.csv").is_file() and (root / "out" / "report.html").is_file()
        assert "Verdict." in out
    elif command == "search":
        assert (root / "search" / "summary.json").is_file()
        assert ("--final-test" not in argv) or "test error of the chosen configuration" in out
    elif command == "speedrun":
        assert list((root / "speedrun").glob("*.json"))
        assert ("--tune" not in argv) or (root / "speedrun" / "tuned.toml").is_file()
    elif command == "data":
        assert sorted(p.name for p in (root / "downloaded").iterdir()) == sorted(FASHION_MNIST_FILES)
    elif command == "demo":
        assert [p for p in (root / "demos").iterdir() if p.suffix == ".png"]
    elif command == "recipes":
        assert all(name in out for name in RECIPES)


def test_a_wrong_command_fails_the_way_these_tests_see_it(readme_dir, capsys):
    """The checks above can fail: a removed flag exits 2, a removed recipe is refused, flips on digits warn."""
    with pytest.raises(SystemExit):
        _plan(["study", "--epoch", "3"])
    with pytest.raises(RegularkitError, match="unknown recipe 'flip-crops'"):
        _plan(["study", "--recipes", "baseline,flip-crops"])
    plan = _plan(["study", "--model", "cnn", "--recipes", "baseline,flip-crop"])
    assert any(plan.warnings.values())  # flips change digits' classes: not an example


# --------------------------------------------------------------------------- Python blocks

@pytest.mark.slow
def test_the_python_blocks_run(readme_dir):
    blocks = [body for lang, body in BLOCKS if lang == "python"]
    assert blocks
    for body in blocks:
        for old, (new, _why) in PYTHON_SHRINK.items():
            assert old in body, f"PYTHON_SHRINK's {old!r} is no longer in the README's Python block"
            body = body.replace(old, new)
        namespace: dict = {}
        exec(compile(body, "README.md", "exec"), namespace)
        history = namespace["history"]
        assert len(history.epochs) == 2
        assert {"train_error", "val_error", "test_error"} <= set(history.epochs[-1])
        assert isinstance(namespace["model"], nn.Module)
