"""Fuzzed command lines and fuzzed TOML files (issue 14): whatever the user types, the CLI ends with 0 or 2.

Hypothesis builds command lines from every flag of ``study`` and ``search`` with values drawn from
pools that mix valid, borderline and wrong values (empty strings, NaN, text for numbers, paths that
do not exist, files of the wrong kind), plus arbitrary tokens; and recipe / space / config files
from random fields and values of every TOML type.  The contract:

* the exit code is 0 (it ran) or 2 (refused); no exception escapes ``main`` (a traceback);
* refused: exactly one line on stderr, starting ``regularkit: error:``, and the ``--out``
  folder holds exactly what it held before (validation happens before anything is written);
* ran: the folder holds the study's ``results.csv``, ``report.html`` and ``study.toml``.

Runs are kept short by the value pools (at most 3 epochs, 40 training examples, one worker), and
the examples are derandomized so CI sees the same ones every time.
"""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regularkit.cli import main

FAST = ["--epochs", "1", "--seeds", "1", "--train-size", "40", "--no-progress"]
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

NUMBERS = ["0", "1", "2", "3", "-1", "1.5", "0.5", "1e-3", "nan", "inf", "-inf", "", "abc", "1,2", "0x10", "١"]
FRACTIONS = ["0.2", "0.5", "0", "1", "-0.1", "nan", "x", ""]


def _files(tmp: Path) -> dict[str, str]:
    """Data and other files a user might point a flag at (good, broken and of the wrong kind)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((60, 5), dtype=np.float32), np.arange(60) % 3
    np.savez(tmp / "good.npz", x_train=x[:48], y_train=y[:48], x_test=x[48:], y_test=y[48:])
    np.savez(tmp / "nan.npz", x_train=np.full((48, 5), np.nan, np.float32), y_train=y[:48], x_test=x[48:],
             y_test=y[48:])
    (tmp / "good.csv").write_text("a,b,label\n" + "".join(f"{i % 7},{i % 5},{i % 2}\n" for i in range(60)))
    (tmp / "text.csv").write_text("a,label\nx,y\n")
    (tmp / "empty.npz").write_bytes(b"")
    (tmp / "folder").mkdir(exist_ok=True)
    (tmp / "binary.toml").write_bytes(b"\xff\xfe\x00")
    return {k: str(tmp / k) for k in ("good.npz", "nan.npz", "good.csv", "text.csv", "empty.npz", "folder",
                                      "binary.toml")} | {"missing": str(tmp / "missing.npz")}


def _pools(files: dict[str, str]) -> dict[str, list[str]]:
    paths = list(files.values())
    return {
        "--data": ["digits", "wine", "breast-cancer", "nope", "", *paths],
        "--data-dir": [files["folder"], files["missing"], files["good.csv"]],
        "--image-size": ["8", "0", "-3", "x"],
        "--target": ["label", "a", "nope", ""],
        "--layout": ["vectors", "images", "sequences", "table"],
        "--test-fraction": FRACTIONS,
        "--test-data": paths,
        "--model": ["mlp", "cnn", "resnet", "linear", "python:math:sqrt", "python:nope:build", "python:", ""],
        "--widths": ["16", "16,8", "0", "-1", "a", "", "16,,8"],
        "--channels": ["4", "4,8", "0", "x", ""],
        "--epochs": ["1", "2", "3", "0", "-1", "x", "1.5", ""],
        "--batch-size": ["1", "16", "0", "x"],
        "--lr": NUMBERS,
        "--optimizer": ["sgd", "adamw", "adam"],
        "--schedule": ["constant", "step", "cosine", "linear"],
        "--train-size": ["40", "2", "1", "0", "100000", "x"],
        "--val-fraction": FRACTIONS,
        "--storage": ["sqlite:///:memory:", "mongodb://x", "journal", "", files["folder"]],
        "--study-name": ["a", "", "x" * 300],
        "--device": ["cpu", "auto", "cuda", "tpu", "mps"],
        "--precision": ["fp32", "bf16", "fp16", "fp8"],
        "--threads": ["1", "0", "x"],
        "--recipes": ["baseline", "baseline,l2", "l2,l2", "nope", "", ",", "baseline,dropout,ema"],
        "--seeds": ["1", "2", "0", "x"],
        "--tune": ["0", "1", "-1", "x"],
        "--workers": ["1", "0", "-2", "x"],
        "--artifacts": [files["folder"], files["good.csv"], ""],
        "--config": [files["binary.toml"], files["missing"], files["good.csv"]],
        "--recipe-file": [files["binary.toml"], files["missing"], files["folder"]],
    }


SWITCHES = ["--combine", "--fresh", "--no-progress", "-h"]


@st.composite
def command_lines(draw, pools):
    tokens: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["flag", "flag", "flag", "switch", "token"]))
        if kind == "flag":
            flag = draw(st.sampled_from(sorted(pools)))
            tokens += [flag, draw(st.sampled_from(pools[flag]))]
        elif kind == "switch":
            tokens.append(draw(st.sampled_from(SWITCHES)))
        else:
            tokens.append(draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)))
    return tokens


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(argv: list[str], out: Path, capsys, *, study: bool = True) -> int:
    out.mkdir(exist_ok=True)
    (out / "keep.txt").write_text("results the user already has")
    before = _snapshot(out)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse (and -h) exit through SystemExit; the code is what counts
        code = exc.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out, captured.err
    assert code in (0, 2), (argv, code, captured.err)
    if code == 2:
        assert captured.err.startswith("regularkit: error: ") and captured.err.count("\n") == 1, captured.err
        assert _snapshot(out) == before, argv  # nothing written, nothing changed
    elif study and "-h" not in argv:
        assert {"results.csv", "report.html", "study.toml"} <= {p.name for p in out.iterdir()}, argv
    return code


SEEN: dict[str, set[int]] = {"argv": set(), "recipe": set(), "space": set()}


@FUZZ
@given(data=st.data())
def test_fuzzed_study_command_lines_end_in_0_or_2(data, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tokens = data.draw(command_lines(_pools(_files(tmp))))
        SEEN["argv"].add(_run(["study", *FAST, *tokens, "--out", str(tmp / "out")], tmp / "out", capsys))


# --------------------------------------------------------------------------- fuzzed TOML files
FIELDS = ["reg.l2", "reg.l1", "reg.label_smoothing", "reg.input_noise", "reg.ema_decay", "reg.swa_start",
          "reg.early_stopping.patience", "model.dropout", "model.widths", "model.kind", "model.activation",
          "optim.lr", "optim.batch_size", "optim.epochs", "augment.hflip", "augment.mixup_alpha", "reg.nope",
          "nope", "description", "strength"]
TOML_VALUES = st.one_of(
    st.sampled_from([0, 1, 2, 3, -1]),
    st.sampled_from([0.0, 0.1, 0.5, 0.99, 1.5, -0.1, 1e-3, math.nan, math.inf]),
    st.sampled_from(["0.1", "false", "", "relu", "mlp", "x"]),
    st.booleans(),
    st.lists(st.sampled_from([0, 1, 8, 16, -1]), max_size=3),
    st.just({"a": 1}),
)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if math.isinf(value) else repr(value))
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"


def _table(fields_values) -> str:
    return "\n".join(f'"{k}" = {_toml(v)}' if "." in k else f"{k} = {_toml(v)}" for k, v in fields_values)


@FUZZ
@given(name=st.sampled_from(["mine", "l2", "baseline", "bad name", ""]),
       body=st.lists(st.tuples(st.sampled_from(FIELDS), TOML_VALUES), max_size=4, unique_by=lambda kv: kv[0]),
       header=st.sampled_from(["recipes", "recipe", "space"]), garbage=st.sampled_from(["", "x = ", "[[a]]"]))
def test_fuzzed_recipe_files_end_in_0_or_2(name, body, header, garbage, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        file = tmp / "recipes.toml"
        file.write_text(f'[{header}."{name}"]\n{_table(body)}\n{garbage}\n')
        argv = ["study", *FAST, "--recipe-file", str(file), "--recipes", f"baseline,{name}", "--out", str(tmp / "o")]
        SEEN["recipe"].add(_run(argv, tmp / "o", capsys))


VALID_RANGES = st.sampled_from([{"uniform": [0.0, 0.5]}, {"log_uniform": [1e-4, 1e-1]}, {"int": [1, 3]},
                                {"categorical": [0.0, 0.1]}])
DISTRIBUTIONS = st.one_of(
    VALID_RANGES,
    VALID_RANGES,
    st.builds(lambda kind, lo, hi: {kind: [lo, hi]}, st.sampled_from(["uniform", "log_uniform", "int", "normal"]),
              TOML_VALUES, TOML_VALUES),
    st.builds(lambda values: {"categorical": values}, st.lists(TOML_VALUES, max_size=3)),
    st.builds(lambda lo, hi, log: {"int": [lo, hi], "log": log}, st.integers(-2, 4), st.integers(-2, 4), TOML_VALUES),
    TOML_VALUES,
)


@FUZZ
@given(body=st.lists(st.tuples(st.sampled_from(FIELDS), DISTRIBUTIONS), min_size=1, max_size=2,
                     unique_by=lambda kv: kv[0]),
       header=st.sampled_from(["space", "space", "recipes"]))
def test_fuzzed_search_spaces_end_in_0_or_2(body, header, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        file = tmp / "space.toml"
        file.write_text(f"[{header}]\n{_table(body)}\n")
        argv = ["search", "--space", str(file), "--trials", "1", "--epochs", "1", "--train-size", "40",
                "--out", str(tmp / "o")]
        code = _run(argv, tmp / "o", capsys, study=False)
        SEEN["space"].add(code)


def test_the_fuzzers_reach_both_outcomes():
    """A fuzzer that only ever hits the first check tests nothing: each must both run and refuse.

    Runs after the three above (pytest keeps file order) and looks at those that ran.
    """
    ran = {name: codes for name, codes in SEEN.items() if codes}  # those selected in this session
    assert all(codes == {0, 2} for codes in ran.values()), ran
