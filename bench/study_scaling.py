"""Study wall time by workers and by threads, idle and beside a competing process; the threads rule's crossover.

Three measurements, each a study run as a user runs it (a fresh ``python -m regularkit study``
process writing to a fresh folder, so start-up, data loading, the ledger and the report are all
in the measured time), variants alternating inside each repeat (a burst of noise on a shared
machine hits all of them), medians over ``--repeats``:

* ``--compare workers`` (issue 11): ``--workers 1`` (all cores' threads) against ``--workers 2``
  (``cores // 2`` threads each).
* ``--compare threads`` (issue 25): today's default (``cores // workers`` torch threads) against the
  rule of :func:`regularkit._util.threads.default_threads` (threads by the work of a step and the
  cores; by work alone, as a study must use it, since threads are part of its run keys; the bench
  computes the rule's count from the study's own model and passes it as ``--threads``), with one
  worker, and the rule with as many workers as it leaves cores for (``w=rule``); each ``idle``
  (nothing of ours beside it) and ``busy`` (a ``while True: pass`` process started for the
  measurement and ended after it).
* ``--rule``: one training step of MLPs of growing size at 1 and at 2 threads (SGD, cross-entropy,
  random data), ``--steps`` steps per measurement, 1 and 2 threads interleaved, medians over
  ``--repeats``: where a second thread starts to pay gives ``FLOPS_PER_THREAD``.

Studies: ``default`` (digits, MLP 256-256, 6 recipes x 3 seeds, runs of about 1 s), ``fmnist``
(Fashion-MNIST, MLP 256-256, 10 000 images, 30 epochs, 3 recipes x 2 seeds: 10-15 s runs),
``fmnist-small`` (Fashion-MNIST, 2 000 images, 3 epochs, the default recipes and seeds).

    python bench/study_scaling.py --compare workers [--repeats 3] [--only default] [--json out.json]
    python bench/study_scaling.py --compare threads --only default,fmnist-small --repeats 5
    python bench/study_scaling.py --rule --repeats 15

Prints one line per run and a Markdown table (with the CPU model, its capability and the load
average) for docs/benchmarks.md.
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
import torch.nn.functional as F

from regularkit._util.environment import cpu_model
from regularkit._util.threads import default_threads, step_flops, usable_cores
from regularkit.models.mlp import MLP
from regularkit.train.device import cpu_capability

STUDIES = {
    "default": [],
    "fmnist": ["--data", "fashion-mnist", "--train-size", "10000", "--epochs", "30", "--seeds", "2",
               "--recipes", "baseline,l2,dropout", "--batch-size", "128"],
    "fmnist-small": ["--data", "fashion-mnist", "--train-size", "2000", "--epochs", "3"],
}
#: (input shape, batch size) of each study's MLP 256-256, for the rule's FLOP count.
SHAPES = {"default": ((1, 8, 8), 32), "fmnist": ((1, 28, 28), 128), "fmnist-small": ((1, 28, 28), 32)}
COMPETITOR = [sys.executable, "-c", "while True: pass"]


def machine() -> dict:
    return {"cpu": cpu_model(), "capability": cpu_capability(),
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": usable_cores(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__}


TIMEOUT = 600.0


def run_once(study: str, workers: int, threads: int | None = None, timeout: float = TIMEOUT) -> tuple[float, int]:
    """Seconds of one whole ``regularkit study`` command, and how many runs it trained.

    A study still running after ``timeout`` seconds is stopped and counted as ``timeout`` (a lower
    bound: the tables say so), so one pathological setting cannot take the whole session.
    """
    with tempfile.TemporaryDirectory(prefix="regularkit-scaling-") as tmp:
        cmd = [sys.executable, "-m", "regularkit", "study", *STUDIES[study], "--workers", str(workers),
               "--out", tmp, "--no-progress"] + (["--threads", str(threads)] if threads else [])
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return timeout, -1
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
        todo = [line for line in done.stdout.splitlines() if line.endswith(" to do")]
        return seconds, int(todo[0].rsplit(",", 1)[1].split()[0]) if todo else 0


def rule_threads(study: str, workers: int) -> tuple[int, str]:
    """What the rule gives for ``study``'s MLP with ``workers`` workers, by work alone.

    Without the busy-core term (``busy=0``): threads are part of a study's run keys, so the
    study's count must not move with the momentary load, or a rerun would not find its runs.
    """
    shape, batch = SHAPES[study]
    flops = step_flops(MLP(shape, 10), torch.zeros(batch, *shape))
    return default_threads(flops, workers=workers)


def compare_workers(studies, repeats) -> dict:
    times: dict[tuple[str, int], list[float]] = {}
    runs: dict[str, int] = {}
    for rep in range(repeats):
        for study in studies:
            for workers in (1, 2):
                seconds, n = run_once(study, workers)
                times.setdefault((study, workers), []).append(seconds)
                runs[study] = n
                print(f"repeat {rep + 1}: {study:8s} workers={workers}: {seconds:7.1f} s ({n} runs)", flush=True)
    print("\n| study | runs | workers=1 (median s) | workers=2 (median s) | all walls w=1 / w=2 (s) | speed-up |")
    print("|---|---|---|---|---|---|")
    result = {}
    for study in studies:
        one, two = times[(study, 1)], times[(study, 2)]
        m1, m2 = statistics.median(one), statistics.median(two)
        result[study] = {"workers1": one, "workers2": two, "speedup": m1 / m2, "runs": runs[study]}
        walls = f"{', '.join(f'{t:.0f}' for t in one)} / {', '.join(f'{t:.0f}' for t in two)}"
        print(f"| {study} | {runs[study]} | {m1:.1f} | {m2:.1f} | {walls} | {m1 / m2:.2f}x |")
    return result


def compare_threads(studies, repeats, conditions, timeout: float = TIMEOUT, workers_variant: bool = True) -> dict:
    """Today's default against the rule, each condition inside each repeat (the competitor started and ended
    around its condition), so a measurement stopped early still has every condition; the table is printed
    after every repeat."""
    cores = usable_cores()
    times: dict[tuple, list[float]] = {}
    chosen: dict[tuple, list[str]] = {}
    result: dict = {}
    for rep in range(repeats):
        for condition in conditions:
            competitor = subprocess.Popen(COMPETITOR) if condition == "busy" else None
            try:
                time.sleep(1.0 if competitor else 0.0)
                for study in studies:
                    t1, why1 = rule_threads(study, 1)
                    variants = {"today": (1, None, f"{cores} threads (cores // workers)"), "rule": (1, t1, why1)}
                    if workers_variant and cores // t1 > 1:   # the rule leaves cores for more workers
                        variants["rule, w=rule"] = (cores // t1, *rule_threads(study, cores // t1))
                    for name, (workers, threads, why) in variants.items():
                        seconds, n = run_once(study, workers, threads, timeout)
                        key = (condition, study, name)
                        times.setdefault(key, []).append(seconds)
                        chosen.setdefault(key, []).append(f"w={workers} t={threads or cores // workers}: {why}")
                        print(f"{condition} repeat {rep + 1}: {study:12s} {name:13s} workers={workers} "
                              f"threads={threads or cores // workers}: {seconds:7.1f} s ({n} runs); "
                              f"load {os.getloadavg()[0]:.1f}", flush=True)
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
        result = threads_table(times, chosen, studies, conditions, timeout)
    return result


def threads_table(times, chosen, studies, conditions, timeout) -> dict:
    print(f"\n| condition | study | today: 1 worker, cores // workers threads (median s) | rule, 1 worker | "
          f"rule, workers by the rule | today / rule | today / rule+workers | walls today / rule / rule+w (s; "
          f"{timeout:.0f} = stopped there) |")
    print("|---|---|---|---|---|---|---|---|")
    result = {}
    for condition in conditions:
        for study in studies:
            if (condition, study, "today") not in times:
                continue
            t, r = times[(condition, study, "today")], times.get((condition, study, "rule"), [float("nan")])
            w = times.get((condition, study, "rule, w=rule"), r)
            mt, mr, mw = statistics.median(t), statistics.median(r), statistics.median(w)
            walls = " / ".join(", ".join(f"{x:.0f}" for x in xs) for xs in (t, r, w))
            print(f"| {condition} | {study} | {mt:.1f} | {mr:.1f} | {mw:.1f} | {mt / mr:.2f}x | {mt / mw:.2f}x "
                  f"| {walls} |", flush=True)
            result[f"{condition}/{study}"] = {"today": t, "rule": r, "rule_workers": w,
                                              "chosen": chosen.get((condition, study, "rule")),
                                              "chosen_workers": chosen.get((condition, study, "rule, w=rule"))}
    return result


def measure_rule(repeats: int, steps: int) -> dict:
    """Median seconds of ``steps`` SGD steps of MLPs at 1 and 2 threads, interleaved."""
    sizes = [((1, 8, 8), (256, 256), 32), ((1, 28, 28), (256, 256), 32), ((1, 28, 28), (256, 256), 128),
             ((1, 28, 28), (512, 512), 128), ((1, 28, 28), (1024, 1024), 128), ((1, 28, 28), (2048, 2048), 256)]
    threads_before = torch.get_num_threads()
    rows = {}
    g = torch.Generator().manual_seed(0)
    for shape, widths, batch in sizes:
        model = MLP(shape, 10, widths=widths)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x, y = torch.randn(batch, *shape, generator=g), torch.randint(0, 10, (batch,), generator=g)
        flops = step_flops(model, x)
        samples = {1: [], 2: []}
        for rep in range(repeats + 1):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                t0 = time.perf_counter()
                for _ in range(steps):
                    opt.zero_grad(set_to_none=True)
                    F.cross_entropy(model(x), y).backward()
                    opt.step()
                if rep:          # the first round warms up both settings
                    samples[threads].append((time.perf_counter() - t0) / steps)
        m1, m2 = statistics.median(samples[1]), statistics.median(samples[2])
        name = f"MLP {'x'.join(map(str, shape))} -> {'-'.join(map(str, widths))}, batch {batch}"
        rows[name] = {"flops": flops, "one": m1, "two": m2, "speedup": m1 / m2}
        print(f"{name:48s} {flops / 1e6:9.1f} MFLOP  1 thread {m1 * 1e3:8.2f} ms  2 threads {m2 * 1e3:8.2f} ms  "
              f"x{m1 / m2:.2f}  load {os.getloadavg()[0]:.1f}", flush=True)
    torch.set_num_threads(threads_before)
    print("\n| model (step) | MFLOP per step | 1 thread (median ms) | 2 threads (median ms) | speed-up of 2 threads |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['flops'] / 1e6:.1f} | {r['one'] * 1e3:.2f} | {r['two'] * 1e3:.2f} "
              f"| {r['speedup']:.2f}x |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=("workers", "threads"), default="workers")
    parser.add_argument("--rule", action="store_true", help="measure the threads rule's crossover instead")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="--rule: steps per measurement")
    parser.add_argument("--only", help="comma-separated studies (default: default,fmnist)")
    parser.add_argument("--conditions", default="idle,busy", help="--compare threads: idle, busy or both")
    parser.add_argument("--no-workers-variant", action="store_true",
                        help="--compare threads: leave out the rule with as many workers as it leaves cores for")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds after which a study is stopped")
    parser.add_argument("--json")
    args = parser.parse_args()
    studies = args.only.split(",") if args.only else ["default", "fmnist"]
    info = machine()
    print(f"machine: {info}; load {os.getloadavg()[0]:.1f}\n", flush=True)
    load_start = os.getloadavg()
    if args.rule:
        result = measure_rule(args.repeats, args.steps)
    elif args.compare == "threads":
        result = compare_threads(studies, args.repeats, args.conditions.split(","), args.timeout,
                                 not args.no_workers_variant)
    else:
        result = compare_workers(studies, args.repeats)
    info["load_average_start_end"] = [load_start[0], os.getloadavg()[0]]
    print(f"\nCPU {info['cpu']} ({info['capability']}; torch {info['torch_capability']}), {info['cores']} cores, "
          f"torch {info['torch']}; 1-minute load average {load_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": result}, f, indent=2)


if __name__ == "__main__":
    main()
