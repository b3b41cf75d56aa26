"""What runs inside the tests' pytest (a forked child or a fresh interpreter): the guard that the package
comes from the copy, the test selection, and on the first run the line tracer (also in subprocesses)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mutation.mutants import EXIT_NOT_THE_COPY

# --------------------------------------------------------------------------- the pytest side (runs in the child)
SITECUSTOMIZE = '''\
"""Written by tools/mutate.py: line coverage of the mutated module in the tests' subprocesses."""
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
