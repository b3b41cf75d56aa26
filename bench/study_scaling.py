"""Wall time of the same study with 1 and with 2 worker processes (``regularkit study --workers N``).

Two studies, each run as a user runs it (a fresh ``python -m regularkit study``
process writing to a fresh folder, so start-up, data loading, the ledger and the
report are all in the measured time):

* ``default``: the default study (digits, MLP, 6 recipes x 3 seeds, runs of about 1 s);
* ``fmnist``: Fashion-MNIST, MLP 256-256, 10 000 training images, 30 epochs, recipes
  baseline / l2 / dropout x 2 seeds: runs of 10-15 s.

``workers=1`` trains with all cores' threads (torch's intra-op parallelism);
``workers=2`` trains two runs at a time with ``cores // 2`` threads each.  The two
settings alternate inside each repeat (1, 2, 1, 2, ...), so a burst of noise on a
shared machine hits both.  Medians over ``--repeats``; the speed-up is
median(workers=1) / median(workers=2).

    python bench/study_scaling.py [--repeats 3] [--only default|fmnist] [--json out.json]

Prints one line per run and a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import torch

STUDIES = {
    "default": [],
    "fmnist": ["--data", "fashion-mnist", "--train-size", "10000", "--epochs", "30", "--seeds", "2",
               "--recipes", "baseline,l2,dropout", "--batch-size", "128"],
}


def run_once(study: str, workers: int) -> tuple[float, int]:
    """Seconds of one whole ``regularkit study`` command, and how many runs it trained."""
    with tempfile.TemporaryDirectory(prefix="regularkit-scaling-") as tmp:
        cmd = [sys.executable, "-m", "regularkit", "study", *STUDIES[study], "--workers", str(workers),
               "--out", tmp, "--no-progress"]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
        todo = [line for line in done.stdout.splitlines() if line.endswith(" to do")]
        return seconds, int(todo[0].rsplit(",", 1)[1].split()[0]) if todo else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=tuple(STUDIES))
    parser.add_argument("--json")
    args = parser.parse_args()
    studies = [args.only] if args.only else list(STUDIES)
    times: dict[tuple[str, int], list[float]] = {}
    runs: dict[str, int] = {}
    for rep in range(args.repeats):
        for study in studies:
            for workers in (1, 2):
                seconds, n = run_once(study, workers)
                times.setdefault((study, workers), []).append(seconds)
                runs[study] = n
                print(f"repeat {rep + 1}: {study:8s} workers={workers}: {seconds:7.1f} s ({n} runs)", flush=True)
    machine = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
               "torch": torch.__version__}
    print(f"\nmachine: {machine}\n")
    print("| study | runs | workers=1 (median s) | workers=2 (median s) | all walls w=1 / w=2 (s) | speed-up |")
    print("|---|---|---|---|---|---|")
    result = {}
    for study in studies:
        one, two = times[(study, 1)], times[(study, 2)]
        m1, m2 = statistics.median(one), statistics.median(two)
        result[study] = {"workers1": one, "workers2": two, "speedup": m1 / m2, "runs": runs[study]}
        walls = f"{', '.join(f'{t:.0f}' for t in one)} / {', '.join(f'{t:.0f}' for t in two)}"
        print(f"| {study} | {runs[study]} | {m1:.1f} | {m2:.1f} | {walls} | {m1 / m2:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": result}, f, indent=2)


if __name__ == "__main__":
    main()
