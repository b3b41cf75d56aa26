"""Vectorized seeds (issue 25 item 3): the default study, its seeds trained together against one at a time.

Two measurements, torch threads fixed (``--threads``, default 1), variants alternating inside each
repeat (reversed every other repeat, so a burst of load on a shared machine hits both), medians
over ``--repeats``:

* ``study``: the default study as a user runs it, a fresh ``regularkit study`` process writing a
  fresh folder (start-up, data, ledger, training, figures and report in the time), ``--workers 1``,
  with ``--vectorize-seeds`` against ``--no-vectorize-seeds`` (the same numbers: the run keys do not change).
* ``train``: the training share alone, in this process, per recipe of the default study: the
  three seeds' ``run_recipe`` one after the other against ``train_seeds`` (records included),
  wall and CPU time.

    python bench/vectorized_seeds.py [--repeats 15] [--threads 1] [--only study,train] [--epochs 100]

Prints one line per measurement and a Markdown table (CPU model, its capability, the load
average before and after) for docs/benchmarks.md, section "Vectorized seeds".
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from regularkit._util.environment import cpu_model
from regularkit.train.device import cpu_capability

VARIANTS = {"together": "--vectorize-seeds", "sequential": "--no-vectorize-seeds"}


def _study(variant: str, threads: int, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "regularkit", "study", "--out", out, "--threads", str(threads), "--workers",
               "1", "--epochs", str(epochs), "--no-progress", VARIANTS[variant]]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{variant}: exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    return seconds


def _train_share(repeats: int, epochs: int) -> dict[str, dict[str, list[float]]]:
    from regularkit.study.config import StudyConfig
    from regularkit.study.run.execute import run_recipe
    from regularkit.study.plan import make_plan
    from regularkit.study.run.vectorize import train_seeds
    plan = make_plan(StudyConfig(epochs=epochs))
    splits, out = plan.data.splits, {}
    for recipe in plan.recipes:
        seeds = list(range(plan.cfg.seeds))
        runs = {"sequential": lambda: [run_recipe(recipe, splits, s) for s in seeds],
                "together": lambda: train_seeds(recipe, splits, seeds)}
        times = {f"{v} {k}": [] for v in runs for k in ("wall", "cpu")}
        for rep in range(repeats):
            for v in (list(runs) if rep % 2 == 0 else list(runs)[::-1]):
                w, c = time.perf_counter(), time.process_time()
                runs[v]()
                times[f"{v} wall"].append(time.perf_counter() - w)
                times[f"{v} cpu"].append(time.process_time() - c)
        out[recipe.name] = times
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"train {recipe.name}: sequential {med['sequential wall']:.2f} s ({med['sequential cpu']:.2f} cpu), "
              f"together {med['together wall']:.2f} s ({med['together cpu']:.2f} cpu), "
              f"x{med['sequential wall'] / med['together wall']:.2f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--only", default="study,train")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    parts = args.only.split(",")
    load0 = os.getloadavg()
    print(f"CPU: {cpu_model()}; capability {cpu_capability()}; cores {os.cpu_count()}; torch {torch.__version__}; "
          f"threads {args.threads}; load average {load0[0]:.2f}", flush=True)
    study: dict[str, list[float]] = {v: [] for v in VARIANTS}
    if "study" in parts:
        for rep in range(args.repeats):
            for v in (list(VARIANTS) if rep % 2 == 0 else list(VARIANTS)[::-1]):
                study[v].append(_study(v, args.threads, args.epochs))
                print(f"study {v} repeat {rep + 1}: {study[v][-1]:.2f} s", flush=True)
    train = _train_share(args.repeats, args.epochs) if "train" in parts else {}
    load1 = os.getloadavg()
    print(f"\n{cpu_model()}, `{cpu_capability()}`, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} torch thread(s), {args.repeats} repeats (medians), load average {load0[0]:.1f} "
          f"before, {load1[0]:.1f} after\n")
    print("| measured | one seed at a time | seeds together | speed-up |\n|---|---|---|---|")
    if study["together"]:
        a, b = statistics.median(study["sequential"]), statistics.median(study["together"])
        print(f"| `regularkit study` (default, {args.epochs} epochs), wall | {a:.1f} s | {b:.1f} s | {a / b:.2f}x |")
    for name, times in train.items():
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"| training {name}, 3 seeds, wall (cpu) | {med['sequential wall']:.2f} s ({med['sequential cpu']:.2f})"
              f" | {med['together wall']:.2f} s ({med['together cpu']:.2f}) "
              f"| {med['sequential wall'] / med['together wall']:.2f}x |")
    if train:
        a = sum(statistics.median(t["sequential wall"]) for t in train.values())
        b = sum(statistics.median(t["together wall"]) for t in train.values())
        print(f"| training, all {len(train)} recipes, wall | {a:.2f} s | {b:.2f} s | {a / b:.2f}x |")
        a = sum(statistics.median(t["sequential cpu"]) for t in train.values())
        b = sum(statistics.median(t["together cpu"]) for t in train.values())
        print(f"| training, all {len(train)} recipes, cpu | {a:.2f} s | {b:.2f} s | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
