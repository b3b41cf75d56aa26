"""The command line of ``tools/mutate.py``: arguments, the temporary copy of the package, the runs, clean-up."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import mutation
from mutation.pytest_side import SITECUSTOMIZE
from mutation.runner import Runner, package_of
from mutation.session import base_job, coverage_run, list_mutants, machine, mutate_module, print_report


def _terminated(signum, frame):
    raise KeyboardInterrupt  # SIGTERM like Ctrl-C: the finally blocks stop the child and delete the copy


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=mutation.__doc__.split("\n")[0], epilog=mutation.__doc__,
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
