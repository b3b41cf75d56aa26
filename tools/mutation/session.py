"""One mutation session: the baseline run with line coverage, each module's mutants against the tests that
execute their line, and the report (the table docs/mutation.md shows, the survivors)."""
from __future__ import annotations

import json
import os
import platform
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from mutation.mutants import EXIT_NOT_THE_COPY, REPO, Mutant, find_mutants
from mutation.runner import Runner, covering, package_of


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
