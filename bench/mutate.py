"""Mutation testing of one module against its tests: how many small bugs would the tests notice?

    python bench/mutate.py --module src/regularkit/augment/erase.py --tests tests/augment/test_erase.py
                           [--tests more paths ...] [--max N --seed S] [--json out.json] [--list]

Each *mutant* is the module with one small change (the operators of mutmut and
cosmic-ray, written here with the standard library's :mod:`ast` only):

* comparisons ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``;
* arithmetic ``+`` <-> ``-``, ``*`` <-> ``/`` (also ``+=`` / ``-=``, ``*=`` / ``/=``);
* ``and`` <-> ``or``; ``True`` <-> ``False``;
* a number ``c`` -> ``c + 1``, ``0`` and ``-c``;
* a statement inside a function replaced by ``pass``; ``return x`` -> ``return None``.

Docstrings, annotations, f-strings and lines marked ``# pragma: no mutate`` are
left alone.  A mutant is *killed* when a test fails (or the module no longer
imports), *timed out* when the tests run past the per-mutant limit (counted as
detected, as mutmut does), *survived* when every test passes, and *not covered*
when no test executes its line (a survivor that need not be run).  The score is
(killed + timed out) / mutants.

How it runs.  The real source is never written: the package is copied to a
temporary folder that goes first on ``sys.path`` / ``PYTHONPATH`` (so spawned
worker processes and ``python -m`` subprocesses of the tests import the mutant
too), each mutant is written into the copy, and the copy is deleted at the end,
Ctrl-C and SIGTERM included.  A first run of the tests on the unmutated copy
must pass; it also records which test executes which line of the module (in the
pytest process and in its subprocesses), and each mutant then runs only the
tests that execute its line -- fastest first, ``pytest -x`` -- or every given
test when the mutated line runs at import time (module and class level,
defaults).  ``--all-tests`` turns the selection off; ``--run-uncovered`` runs
every test for the mutants no test was seen to execute (``sys.settrace`` does not
see code that torch.compile's dynamo traces symbolically, for one) instead of
reporting them not covered.

``--runner fork`` (the default where ``os.fork`` exists) imports the
third-party libraries the tests use (torch, numpy, ...) once, then forks one
child per mutant that imports the package from the copy and calls
``pytest.main``: it saves the ~2 s of ``import torch`` per mutant.
``--runner subprocess`` starts ``python -m pytest`` per mutant instead.  Both
run ``pytest -x -q -p no:cacheprovider`` with Hypothesis derandomized and
without its example database (each mutant sees the same examples, and no
mutant's failures are stored), one torch thread (``OMP_NUM_THREADS=1``).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PRAGMA = "# pragma: no mutate"
REPO = Path(__file__).resolve().parent.parent
COMPARE_FLIP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                ast.NotEq: ast.Eq}
BINOP_FLIP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
OP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
           ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.And: "and", ast.Or: "or"}
REMOVABLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Raise, ast.Assert, ast.Delete, ast.Break,
             ast.Continue)
EXIT_NOT_THE_COPY = 77  # the guard plugin's exit code: the package was not imported from the copy


# --------------------------------------------------------------------------- mutants
@dataclass
class Mutant:
    line: int
    col: int
    kind: str
    description: str
    start: int                # byte offsets of the replaced span in the source
    end: int
    replacement: bytes
    lines: tuple[int, int]    # the lines whose execution means the mutant ran (its statement)
    import_time: bool         # runs when the module is imported (module/class level, defaults, decorators)
    id: int = 0
    status: str = ""
    seconds: float = 0.0
    tests_run: int = 0

    def apply(self, source: bytes) -> bytes:
        return source[:self.start] + self.replacement + source[self.end:]


def _blank_comments(gap: bytes) -> bytes:
    return re.sub(rb"#[^\n]*", lambda m: b" " * len(m.group()), gap)


class _Finder(ast.NodeVisitor):
    """Walks a module, noting for every node whether it runs at import time and its enclosing statement."""

    def __init__(self, source: bytes):
        self.source = source
        self.starts = [0]
        for line in source.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.lines = source.decode("utf-8").splitlines()
        self.mutants: list[Mutant] = []
        self.in_function = False
        self.stmt: ast.stmt | None = None
        self.docstrings: set[int] = set()

    # -- positions
    def offset(self, lineno: int, col: int) -> int:
        return self.starts[lineno - 1] + col

    def span(self, node) -> tuple[int, int]:
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def operator_at(self, left, right, text: str) -> int | None:
        """Byte offset of the operator ``text`` between two operands (parentheses, spaces and comments skipped)."""
        a, b = self.offset(left.end_lineno, left.end_col_offset), self.offset(right.lineno, right.col_offset)
        gap = _blank_comments(self.source[a:b])
        i = 0
        while i < len(gap) and gap[i:i + 1] in (b" ", b"\t", b"\n", b"\r", b"(", b")", b"\\"):
            i += 1
        tok = text.encode()
        if gap[i:i + len(tok)] != tok or gap[i + len(tok):i + len(tok) + 1] in (b"=", b"<", b">", b"*", b"/"):
            return None
        return a + i

    # -- bookkeeping
    def add(self, node, kind: str, description: str, start: int, end: int, replacement: str) -> None:
        first, last = node.lineno, node.end_lineno
        if any(PRAGMA in self.lines[i - 1] for i in range(first, last + 1)):
            return
        stmt = self.stmt or node
        simple = not hasattr(stmt, "body")
        lines = (min(stmt.lineno, first), max(last, stmt.end_lineno if simple else last))
        self.mutants.append(Mutant(first, node.col_offset, kind, description, start, end, replacement.encode(),
                                   lines, import_time=not self.in_function))

    def visit_body_owner(self, node) -> None:
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            self.docstrings.add(id(body[0]))

    def visit_Module(self, node):
        self.visit_body_owner(node)
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        self.visit_body_owner(node)
        self._stmt(node, lambda: self.generic_visit_except(node, ("body",)), body=node.body, function=False)

    def visit_FunctionDef(self, node):
        self.visit_body_owner(node)
        # decorators and defaults run where the def is; annotations never (``from __future__ import annotations``)
        self._stmt(node, lambda: [self.visit(d) for d in node.decorator_list] + [self.visit_arguments(node.args)],
                   body=node.body, function=True)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_arguments(self, node):
        for d in node.defaults + [d for d in node.kw_defaults if d is not None]:
            self.visit(d)

    def visit_Lambda(self, node):
        self.visit_arguments(node.args)
        outer, self.in_function = self.in_function, True
        self.visit(node.body)
        self.in_function = outer

    def generic_visit_except(self, node, skip):
        for name, value in ast.iter_fields(node):
            if name in skip:
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    self.visit(child)

    def _stmt(self, node, header, *, body, function: bool):
        outer_stmt, outer_fn = self.stmt, self.in_function
        self.stmt = node
        header()
        self.in_function = outer_fn or function
        for child in body:
            self.visit(child)
        self.stmt, self.in_function = outer_stmt, outer_fn

    def visit(self, node):
        if isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                ast.ClassDef)):
            outer = self.stmt
            self.stmt = node
            self.statement(node)
            super().visit(node)
            self.stmt = outer
            return None
        return super().visit(node)

    # -- skipped subtrees
    def visit_JoinedStr(self, node):  # f-string positions are unreliable before Python 3.12
        return None

    def visit_AnnAssign(self, node):
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    # -- operators
    def statement(self, node) -> None:
        if not self.in_function or id(node) in self.docstrings or not isinstance(node, REMOVABLE):
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):  # `...`, a bare string: no effect
            return
        if isinstance(node, ast.AnnAssign) and node.value is None:
            return
        start, end = self.span(node)
        text = self.lines[node.lineno - 1].strip()
        self.add(node, "remove", f"remove `{text[:70]}`", start, end, "pass")

    def visit_Return(self, node):
        if self.in_function and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            start, end = self.span(node.value)
            self.add(node.value, "return", "`return x` -> `return None`", start, end, "None")
        self.generic_visit(node)

    def visit_Compare(self, node):
        for i, op in enumerate(node.ops):
            new = COMPARE_FLIP.get(type(op))
            if new is None:
                continue
            left = node.left if i == 0 else node.comparators[i - 1]
            at = self.operator_at(left, node.comparators[i], OP_TEXT[type(op)])
            if at is not None:
                old_t, new_t = OP_TEXT[type(op)], OP_TEXT[new]
                self.add(node, "compare", f"`{old_t}` -> `{new_t}`", at, at + len(old_t), new_t)
        self.generic_visit(node)

    def visit_BinOp(self, node):
        new = BINOP_FLIP.get(type(node.op))
        stringish = any(isinstance(v, (ast.JoinedStr, ast.Tuple, ast.List)) or (
            isinstance(v, ast.Constant) and isinstance(v.value, (str, bytes))) for v in (node.left, node.right))
        if new is not None and not stringish:
            old_t, new_t = OP_TEXT[type(node.op)], OP_TEXT[new]
            at = self.operator_at(node.left, node.right, old_t)
            if at is not None:
                self.add(node, "arith", f"`{old_t}` -> `{new_t}`", at, at + len(old_t), new_t)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        new = BINOP_FLIP.get(type(node.op))
        if new is not None:
            old_t, new_t = OP_TEXT[type(node.op)] + "=", OP_TEXT[new] + "="
            at = self.operator_at(node.target, node.value, old_t)
            if at is not None:
                self.add(node, "arith", f"`{old_t}` -> `{new_t}`", at, at + len(old_t), new_t)
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        old_t = OP_TEXT[type(node.op)]
        new_t = "or" if old_t == "and" else "and"
        ats = [self.operator_at(a, b, old_t) for a, b in zip(node.values, node.values[1:])]
        if ats and None not in ats:
            # one mutant flips every operator of the chain: a composite replacement of the whole node
            start, end = self.span(node)
            text = bytearray(self.source[start:end])
            for at in reversed(ats):
                text[at - start:at - start + len(old_t)] = new_t.encode()
            self.add(node, "boolean", f"`{old_t}` -> `{new_t}`", start, end, text.decode())
        self.generic_visit(node)

    def visit_Constant(self, node):
        value = node.value
        start, end = self.span(node)
        if isinstance(value, bool):
            self.add(node, "bool", f"{value} -> {not value}", start, end, str(not value))
        elif isinstance(value, (int, float)):
            news = [value + 1] + ([0 if isinstance(value, int) else 0.0, -value] if value != 0 else [])
            for new in news:
                self.add(node, "number", f"{value!r} -> {new!r}", start, end, f"({new!r})" if new < 0 else repr(new))


def find_mutants(source: bytes, path: str = "<module>") -> tuple[list[Mutant], int]:
    """Every mutant of ``source``, in source order, and how many were dropped for not compiling."""
    finder = _Finder(source)
    finder.visit(ast.parse(source, path))
    seen, out, invalid = {source}, [], 0
    for m in sorted(finder.mutants, key=lambda m: (m.start, m.kind, m.description)):
        mutated = m.apply(source)
        if mutated in seen:
            continue
        seen.add(mutated)
        try:
            compile(mutated, path, "exec", dont_inherit=True)
        except SyntaxError:
            invalid += 1
            continue
        out.append(m)
    for i, m in enumerate(out, 1):
        m.id = i
    return out, invalid


# --------------------------------------------------------------------------- the pytest side (runs in the child)
SITECUSTOMIZE = '''\
"""Written by bench/mutate.py: line coverage of the mutated module in the tests' subprocesses."""
import atexit, json, os, sys, threading
_out = os.environ.get("MUTATE_COV_DIR")
if _out:
    _targets = set(json.loads(os.environ["MUTATE_COV_TARGETS"]))
    _lines = {}
    def _local(frame, event, arg):
        if event == "line":
            _lines[frame.f_code.co_filename].add(frame.f_lineno)
        return _local
    def _global(frame, event, arg):
        if frame.f_code.co_filename in _targets:
            _lines.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
            return _local
        return None
    sys.settrace(_global)
    threading.settrace(_global)
    @atexit.register
    def _dump():
        sys.settrace(None)
        with open(os.path.join(_out, "sub-%d.json" % os.getpid()), "w") as f:
            json.dump({"test": os.environ.get("MUTATE_COV_TEST", ""),
                       "lines": {k: sorted(v) for k, v in _lines.items()}}, f)
'''


class Plugin:
    """Loaded into the tests' pytest: the copy guard, the test selection and (first run) the coverage tracer."""

    def __init__(self, job: dict):
        self.job = job
        self.outside: dict[str, set[int]] = {}
        self.per_test: dict[str, dict[str, set[int]]] = {}
        self.durations: dict[str, float] = {}
        self.failed: list[str] = []
        self.current = self.outside
        self.targets = set(job.get("coverage_targets", ()))

    # -- tracer
    def _local(self, frame, event, arg):
        if event == "line":
            self.current.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
        return self._local

    def _global(self, frame, event, arg):
        if frame.f_code.co_filename in self.targets:
            self.current.setdefault(frame.f_code.co_filename, set()).add(frame.f_lineno)
            return self._local
        return None

    def pytest_configure(self, config):
        try:
            from hypothesis import settings
            settings.register_profile("regularkit-mutate", database=None, derandomize=True, deadline=None,
                                      print_blob=False)
            settings.load_profile("regularkit-mutate")
        except ImportError:
            pass
        if self.targets:
            import threading
            os.environ["MUTATE_COV_DIR"] = self.job["coverage_dir"]
            os.environ["MUTATE_COV_TARGETS"] = json.dumps(sorted(self.targets))
            sys.settrace(self._global)
            threading.settrace(self._global)

    def pytest_collection_modifyitems(self, session, config, items):
        select = self.job.get("select")
        if not select:
            return
        order = {nodeid: i for i, nodeid in enumerate(select)}
        kept = sorted((it for it in items if it.nodeid in order), key=lambda it: order[it.nodeid])
        dropped = [it for it in items if it.nodeid not in order]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept

    def pytest_collection_finish(self, session):
        import pytest
        module = sys.modules.get(self.job["package"])
        where = os.path.realpath(getattr(module, "__file__", "") or "")
        if module is None or not where.startswith(self.job["copy_root"] + os.sep):
            pytest.exit(f"mutate: {self.job['package']} was imported from {where or 'nowhere'}, not from the copy "
                        f"in {self.job['copy_root']}", returncode=EXIT_NOT_THE_COPY)

    def pytest_runtest_logstart(self, nodeid, location):
        self.current = self.per_test.setdefault(nodeid, {})
        os.environ["MUTATE_COV_TEST"] = nodeid

    def pytest_runtest_logfinish(self, nodeid, location):
        self.current = self.outside

    def pytest_runtest_logreport(self, report):
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed.append(report.nodeid)

    def pytest_sessionfinish(self, session, exitstatus):
        if self.job.get("durations"):
            Path(self.job["cwd_out"]).joinpath("durations.json").write_text(json.dumps(self.durations))
        if not self.targets:
            return
        sys.settrace(None)
        cov_dir = Path(self.job["coverage_dir"])
        for sub in cov_dir.glob("sub-*.json"):  # the subprocesses' lines, filed under the test that started them
            data = json.loads(sub.read_text())
            into = self.per_test.setdefault(data["test"], {}) if data["test"] else self.outside
            for path, lines in data["lines"].items():
                into.setdefault(path, set()).update(lines)
        modules = [name for name, m in list(sys.modules.items())
                   if "site-packages" in (getattr(m, "__file__", None) or "")]
        result = {"outside": {k: sorted(v) for k, v in self.outside.items()},
                  "tests": {t: {k: sorted(v) for k, v in d.items()} for t, d in self.per_test.items()},
                  "durations": self.durations, "failed": self.failed, "modules": modules}
        (cov_dir / "coverage.json").write_text(json.dumps(result))


def child_main(job: dict) -> int:
    """Run pytest for one job (in a forked child or a fresh interpreter); returns pytest's exit code."""
    import pytest
    os.chdir(job["cwd"])
    for entry in reversed(job["path"]):
        sys.path.insert(0, entry)
    args = ["-x", "-q", "-p", "no:cacheprovider", *job["pytest_args"], *job["tests"]]
    return int(pytest.main(args, plugins=[Plugin(job)]))


# --------------------------------------------------------------------------- runners (the parent side)
class Runner:
    def __init__(self, kind: str, env: dict[str, str], log: Path):
        self.kind, self.env, self.log = kind, env, log
        self.pid: int | None = None
        self.proc: subprocess.Popen | None = None

    def preload(self, modules: list[str], package: str) -> int:
        """Fork runner: import the tests' third-party modules once (never the package under test)."""
        if self.kind != "fork":
            return 0
        n = 0
        with open(os.devnull, "w") as null:
            saved = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = null
            try:
                for name in modules:
                    if name == "__main__" or name.split(".")[0] in (package, "tests", "conftest", "_helpers") \
                            or name in sys.modules:
                        continue
                    try:
                        __import__(name)
                        n += 1
                    except BaseException:  # noqa: BLE001 - a module that cannot be preloaded is loaded by the child
                        pass
            finally:
                sys.stdout, sys.stderr = saved
        if package in sys.modules:
            raise SystemExit(f"mutate: preloading the tests' libraries imported {package}; use --runner subprocess")
        return n

    def run(self, job: dict, timeout: float) -> tuple[str, int | None]:
        """('ok' | 'timeout', exit code) of one pytest run."""
        return self._fork(job, timeout) if self.kind == "fork" else self._subprocess(job, timeout)

    def _fork(self, job, timeout):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 98
            try:
                os.setpgid(0, 0)
                fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.environ.update(self.env)
                sys.dont_write_bytecode = True
                code = child_main(job)
            except BaseException as exc:  # noqa: BLE001
                print(f"mutate child: {exc!r}", file=sys.stderr)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.pid = pid
        deadline = time.monotonic() + timeout
        try:
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return "ok", os.waitstatus_to_exitcode(status)
                if time.monotonic() > deadline:
                    self.stop()
                    return "timeout", None
                time.sleep(0.02)
        finally:
            self._killpg(pid)
            self.pid = None

    def _subprocess(self, job, timeout):
        job_file = self.log.with_suffix(".job.json")
        job_file.write_text(json.dumps(job))
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(job_file)],
                                         env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            try:
                return "ok", self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                return "timeout", None
            finally:
                self._killpg(self.proc.pid)
                self.proc = None

    @staticmethod
    def _killpg(pgid: int) -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        """Kill the running child and everything it started (its own process group); reap it."""
        if self.pid is not None:
            self._killpg(self.pid)
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
        if self.proc is not None:
            self._killpg(self.proc.pid)
            self.proc.wait()


# --------------------------------------------------------------------------- one module
def package_of(module: Path) -> tuple[Path, str]:
    """(the folder holding the top-level package, the package's name) of a module file."""
    top = module.parent
    while (top.parent / "__init__.py").exists():
        top = top.parent
    if not (top / "__init__.py").exists():
        raise SystemExit(f"mutate: {module} is not inside a package")
    return top.parent, top.name


def covering(cov: dict, path: str, lines: tuple[int, int]) -> list[str]:
    wanted = set(range(lines[0], lines[1] + 1))
    return [t for t, files in cov["tests"].items() if wanted & set(files.get(path, ()))]


def sample(mutants: list[Mutant], args) -> list[Mutant]:
    if args.max and len(mutants) > args.max:
        return sorted(random.Random(args.seed).sample(mutants, args.max), key=lambda m: m.id)
    return mutants


def list_mutants(module: Path, args) -> None:
    rel = module.relative_to(REPO) if module.is_relative_to(REPO) else module
    for m in sample(find_mutants(module.read_bytes(), str(module))[0], args):
        where = "import" if m.import_time else f"lines {m.lines[0]}-{m.lines[1]}"
        print(f"{rel}:{m.line}  #{m.id:<4d} {m.kind:8s} {m.description}   [{where}]")


def fmt_seconds(s: float) -> str:
    return f"{s:.0f}s" if s < 90 else f"{int(s // 60)}m{int(s % 60):02d}s"


def mutate_module(module: Path, tests: list[str], args, runner: Runner, workdir: Path, copy_src: Path,
                  package: str, cov: dict) -> dict:
    rel = module.relative_to(REPO) if module.is_relative_to(REPO) else module
    source_root, _ = package_of(module)
    target = copy_src / module.relative_to(source_root)
    original = module.read_bytes()
    mutants, invalid = find_mutants(original, str(module))
    total_found = len(mutants)
    mutants = sample(mutants, args)
    durations = cov["durations"]
    by_speed = sorted(durations, key=durations.get)
    every = [t for t in by_speed if t in cov["tests"]]
    sampled = "" if len(mutants) == total_found else f", {len(mutants)} sampled (seed {args.seed})"
    print(f"\n{rel}: {total_found} mutants ({invalid} did not compile){sampled}", flush=True)
    t0 = time.perf_counter()
    try:
        for m in mutants:
            if m.import_time or args.all_tests:
                selected = every
            else:
                chosen = set(covering(cov, str(target), m.lines))
                selected = [t for t in by_speed if t in chosen] or (every if args.run_uncovered else [])
            if not selected:
                m.status = "not covered"
                print(f"  [{m.id:4d}] {m.status:11s} {rel}:{m.line}  {m.description}", flush=True)
                continue
            timeout = args.timeout or max(30.0, 3.0 * sum(durations.get(t, 1.0) for t in selected) + 20.0)
            target.write_bytes(m.apply(original))
            job = {**base_job(args, tests, workdir, copy_src, package), "select": selected,
                   "tests": sorted({t.split("::")[0] for t in selected})}
            start = time.perf_counter()
            try:
                state, code = runner.run(job, timeout)
            finally:
                target.write_bytes(original)
            m.seconds, m.tests_run = time.perf_counter() - start, len(selected)
            if code == EXIT_NOT_THE_COPY:
                raise SystemExit(f"mutate: the tests did not import the copy; see {runner.log}")
            m.status = ("timed out" if state == "timeout" else "survived" if code == 0
                        else "error" if code in (4, 5) else "killed")
            if m.status == "error":
                shutil.copy(runner.log, workdir / f"error-{m.id}.log")
            print(f"  [{m.id:4d}] {m.status:11s} {rel}:{m.line}  {m.description}  ({m.seconds:.1f}s, "
                  f"{len(selected)} test(s))", flush=True)
    finally:
        target.write_bytes(original)
    seconds = time.perf_counter() - t0
    counts = {s: sum(m.status == s for m in mutants) for s in ("killed", "timed out", "survived", "not covered",
                                                               "error")}
    detected = counts["killed"] + counts["timed out"]
    return {"module": str(rel), "tests": tests, "mutants_found": total_found, "mutants": len(mutants),
            "did_not_compile": invalid, "sampled": len(mutants) != total_found, **counts,
            "score": detected / len(mutants) if mutants else 1.0, "seconds": seconds,
            "survivors": [asdict(m) | {"replacement": m.replacement.decode(), "location": f"{rel}:{m.line}",
                                       "code": original.decode().splitlines()[m.line - 1].strip()}
                          for m in mutants if m.status in ("survived", "not covered", "error")],
            "results": [{"id": m.id, "line": m.line, "kind": m.kind, "description": m.description,
                         "status": m.status, "seconds": round(m.seconds, 2), "tests_run": m.tests_run}
                        for m in mutants]}


def base_job(args, tests, workdir: Path, copy_src: Path, package: str) -> dict:
    return {"cwd": str(REPO), "cwd_out": str(workdir), "path": [str(copy_src)], "package": package,
            "copy_root": str(copy_src), "pytest_args": args.pytest_args, "tests": tests}


def coverage_run(modules: list[Path], tests: list[str], args, runner: Runner, workdir: Path, copy_src: Path,
                 package: str) -> dict:
    """The tests on the unmutated copy: they must pass; which test runs which line, and how long each takes."""
    cov_dir = workdir / "coverage"
    cov_dir.mkdir()
    source_root, _ = package_of(modules[0].resolve())
    targets = [str(copy_src / m.resolve().relative_to(source_root)) for m in modules]
    job = {**base_job(args, tests, workdir, copy_src, package), "coverage_targets": targets,
           "coverage_dir": str(cov_dir)}
    print(f"baseline: {' '.join(tests)} on the unmutated copy (with line coverage) ...", flush=True)
    t0 = time.perf_counter()
    state, code = runner.run(job, args.baseline_timeout)
    elapsed = time.perf_counter() - t0
    log = runner.log.read_text(errors="replace")
    if state == "timeout" or code != 0 or not (cov_dir / "coverage.json").exists():
        tail = "\n".join(log.splitlines()[-40:])
        raise SystemExit(f"mutate: the tests must pass before mutating (state {state}, exit {code}):\n{tail}")
    cov = json.loads((cov_dir / "coverage.json").read_text())
    print(f"baseline: {len(cov['durations'])} tests passed in {fmt_seconds(elapsed)}", flush=True)
    return cov


def machine() -> dict:
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch_version}


def print_report(reports: list[dict]) -> None:
    print("\n| module | mutants | killed | timed out | survived | not covered | score | time |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in reports:
        sampled = f" (sample of {r['mutants_found']})" if r["sampled"] else ""
        print(f"| `{r['module']}` | {r['mutants']}{sampled} | {r['killed']} | {r['timed out']} | {r['survived']} | "
              f"{r['not covered']} | {100 * r['score']:.1f}% | {fmt_seconds(r['seconds'])} |")
    for r in reports:
        if r["survivors"]:
            print(f"\nsurvivors in {r['module']}:")
            for s in r["survivors"]:
                print(f"  {s['location']:45s} {s['status']:11s} {s['description']}    | {s['code'][:80]}")


def _terminated(signum, frame):
    raise KeyboardInterrupt  # SIGTERM like Ctrl-C: the finally blocks stop the child and delete the copy


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", action="append", required=True, type=Path,
                    help="the module to mutate (repeat for several, each against the same tests)")
    ap.add_argument("--tests", nargs="+", required=True, help="test files or folders run against each mutant")
    ap.add_argument("--max", type=int, default=0, help="mutate a random sample of N mutants per module")
    ap.add_argument("--seed", type=int, default=0, help="seed of the --max sample")
    ap.add_argument("--json", type=Path, help="write the results (every mutant's status) here")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="seconds per mutant (default: 3 x the selected tests' baseline time + 20 s, at least 30 s)")
    ap.add_argument("--baseline-timeout", type=float, default=1800.0, help="seconds for the unmutated run")
    ap.add_argument("--runner", choices=("fork", "subprocess"), default="fork" if hasattr(os, "fork") else "subprocess")
    ap.add_argument("--all-tests", action="store_true", help="run every given test for every mutant (no selection)")
    ap.add_argument("--run-uncovered", action="store_true",
                    help="run every given test for mutants no test was seen to execute (code the tracer cannot "
                         "see, e.g. under torch.compile's tracing), instead of calling them not covered")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--pytest-args", nargs=argparse.REMAINDER, default=[], help="passed on to pytest (last option)")
    args = ap.parse_args(argv)

    modules = [m.resolve() for m in args.module]
    for m in modules:
        if not m.is_file():
            ap.error(f"no such module: {m}")
    roots = {package_of(m) for m in modules}
    if len(roots) != 1:
        ap.error("all --module files must belong to one package")
    (source_root, package), = roots
    if args.list:
        for m in modules:
            list_mutants(m, args)
        return 0

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    previous = signal.signal(signal.SIGTERM, _terminated)
    workdir = Path(os.path.realpath(tempfile.mkdtemp(prefix="regularkit-mutate-")))
    runner = None
    try:
        copy_src = workdir / "src"
        shutil.copytree(source_root / package, copy_src / package, ignore=shutil.ignore_patterns("__pycache__"))
        site = workdir / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        path = os.pathsep.join([str(copy_src), str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env = {"PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        runner = Runner(args.runner, env, workdir / "pytest.log")
        t0 = time.perf_counter()
        cov = coverage_run(modules, args.tests, args, runner, workdir, copy_src, package)
        if args.runner == "fork":
            n = runner.preload(cov["modules"], package)
            # the same tests again from the preloaded parent: they must still pass, and without the tracer
            # their durations are the ones the mutants' timeouts and test order go by
            state, code = runner.run({**base_job(args, args.tests, workdir, copy_src, package), "durations": True},
                                     args.baseline_timeout)
            if state != "ok" or code != 0:
                tail = "\n".join(runner.log.read_text(errors="replace").splitlines()[-40:])
                raise SystemExit(f"mutate: after preloading {n} modules the unmutated tests fail "
                                 f"({state}, exit {code}); use --runner subprocess:\n{tail}")
            cov["durations"] = json.loads((workdir / "durations.json").read_text())
            print(f"fork runner: preloaded {n} modules; the unmutated tests pass from the preloaded parent",
                  flush=True)
        reports = [mutate_module(m, args.tests, args, runner, workdir, copy_src, package, cov) for m in modules]
        print_report(reports)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
                                             "machine": machine(), "runner": args.runner,
                                             "seconds": time.perf_counter() - t0, "modules": reports}, indent=1))
        return 0
    except KeyboardInterrupt:
        print("\nmutate: interrupted; the source was never modified (mutants live in a temporary copy)",
              file=sys.stderr)
        return 130
    finally:
        if runner is not None:
            runner.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(child_main(json.loads(Path(sys.argv[2]).read_text())))
    sys.exit(main())
