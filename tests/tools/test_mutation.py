"""tools/mutation (``make mutate``): the operators on a worked example, and the command's arguments.

The mutants of a two-line function are listed by hand from docs/mutation.md's operators; the
command is run with ``--list`` (no tests run, nothing copied), as ``make mutate`` runs it.
"""
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))

from mutation.mutants import find_mutants  # noqa: E402
from mutation.runner import package_of  # noqa: E402

SOURCE = b"""LIMIT = 3


def f(a, b):
    x = a < b + 1  # pragma: no mutate
    return a < b + 1 and True
"""


def test_every_operator_of_the_doc_on_a_worked_example():
    mutants, invalid = find_mutants(SOURCE)
    got = {m.apply(SOURCE).decode().splitlines()[5].strip() for m in mutants if m.line == 6}
    assert got == {"return a < b + 1 or True", "return None", "return a <= b + 1 and True",
                   "return a < b - 1 and True", "return a < b + (-1) and True", "return a < b + 0 and True",
                   "return a < b + 2 and True", "return a < b + 1 and False"}
    assert invalid == 0
    assert not [m for m in mutants if m.line == 5]  # the pragma line is left alone
    limit = [m for m in mutants if m.line == 1]
    assert {m.apply(SOURCE).decode().splitlines()[0] for m in limit} == {"LIMIT = 4", "LIMIT = 0", "LIMIT = (-3)"}
    assert all(m.import_time for m in limit) and not any(m.import_time for m in mutants if m.line == 6)
    assert [m.id for m in mutants] == list(range(1, len(mutants) + 1))


def test_package_of_finds_the_top_level_package(tmp_path):
    src = Path(__file__).resolve().parents[2] / "src"
    assert package_of(src / "regularkit" / "augment" / "erase.py") == (src, "regularkit")
    (tmp_path / "loose.py").write_text("x = 1\n")
    with pytest.raises(SystemExit, match="is not inside a package"):
        package_of(tmp_path / "loose.py")


def test_the_command_lists_a_modules_mutants_as_make_mutate_runs_it():
    root = TOOLS.parent
    out = subprocess.run([sys.executable, str(TOOLS / "mutate.py"), "--module", "src/regularkit/_util/fmt.py",
                          "--tests", "tests/_util", "--list", "--max", "2", "--seed", "1"], cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert len(rows) == 2 and all(r.startswith("src/regularkit/_util/fmt.py:") for r in rows)
    assert "mutate: " not in out.stderr
    assert "$(PY) tools/mutate.py $(ARGS)" in (root / "Makefile").read_text()  # make mutate runs this command
