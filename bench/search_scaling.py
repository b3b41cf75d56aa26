"""Wall time of one fixed search with 1 and with 2 worker processes.

The study: 16 trials of random search over (lr, weight_decay), each trial trains
a small MLP with PyTorch on synthetic data for a fixed number of steps (about
0.5 s on one core), single-threaded, so that N workers can use N cores.  Both
settings use a journal file in a fresh temporary folder, and each measured
search runs in a fresh Python process (as ``regularkit search`` would), so both
pay PyTorch's first-call warm-up (about 1 s): ``workers=1`` runs the trials in
that process, ``workers=2`` spawns two worker processes, whose start-up
(interpreter, imports, warm-up) is part of the measured time, as it is for a user.

    python bench/search_scaling.py [--repeats 3] [--trials 16] [--steps 800] [--objective torch|sleep]
    python bench/search_scaling.py --control   # the machine alone: 1 vs 2 plain processes

``--objective sleep`` replaces training by 0.5 s of sleep: it measures what the
runner itself costs and gains (process start-up, journal writes), independent of
how many cores the machine really gives.

Prints one line per run, then a Markdown table (median over repeats) for
docs/bench_search.md.
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

import optuna
import torch

from regularkit.search import LogUniform, SearchSpace, run_search


class TrainMLP:
    """Train a 32-64-2 MLP for ``steps`` full-batch SGD steps; return validation error."""

    def __init__(self, steps: int):
        self.steps = steps

    def __call__(self, params, report):
        torch.set_num_threads(1)  # one core per worker: the benchmark measures process parallelism
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2048, 32, generator=g)
        y = (x[:, :4].sum(1) > 0).long()
        model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
        opt = torch.optim.SGD(model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
        for _ in range(self.steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[:1536]), y[:1536]).backward()
            opt.step()
        with torch.no_grad():
            return (model(x[1536:]).argmax(1) != y[1536:]).float().mean().item()


class Sleep:
    """A trial that waits ``seconds`` without using the CPU: measures the runner, not the machine."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __call__(self, params, report):
        time.sleep(self.seconds)
        return params["lr"]


SPACE = SearchSpace(lr=LogUniform(1e-3, 1.0), weight_decay=LogUniform(1e-6, 1e-2))


def one_run(workers: int, trials: int, steps: int, objective: str = "torch") -> tuple[float, float, float]:
    """Wall seconds of the search, the median trial duration, and the span from first trial start to last end.

    wall - span is what the runner costs around the trials: spawning the workers (a new
    interpreter importing torch) before, and their exit (PyTorch's teardown) after.
    """
    fn = TrainMLP(steps) if objective == "torch" else Sleep(0.5)
    with tempfile.TemporaryDirectory(prefix="regularkit-bench-") as folder:
        start = time.perf_counter()
        result = run_search(fn, SPACE, n_trials=trials, workers=workers, storage=folder, log=None)
        wall = time.perf_counter() - start
        done = [t for t in result.study.get_trials(deepcopy=False) if t.datetime_complete]
        assert len(result.trials) == trials == len(done)
        durations = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
        span = (max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)).total_seconds()
        return wall, statistics.median(durations), span


def _calls(steps: int, n: int = 8) -> float:
    """Median seconds of ``n`` warm TrainMLP calls in this process."""
    fn, params = TrainMLP(steps), {"lr": 0.1, "weight_decay": 1e-4}
    fn(params, None)  # PyTorch's first call is ~1 s slower
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn(params, None)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def control(steps: int) -> None:
    """The machine without regularkit: one process alone, then two plain processes side by side."""
    import multiprocessing

    print(f"load {os.getloadavg()[0]:.2f}; alone {_calls(steps):.3f} s per call")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        side = pool.map(_calls, [steps, steps])
    print(f"load {os.getloadavg()[0]:.2f}; side by side {side[0]:.3f} s, {side[1]:.3f} s per call")


def fresh_run(workers: int, trials: int, steps: int, objective: str) -> tuple[float, float, float]:
    """``one_run`` in a new interpreter, so no setting inherits a warmed-up PyTorch."""
    out = subprocess.run([sys.executable, __file__, "--single", str(workers), "--trials", str(trials),
                          "--steps", str(steps), "--objective", objective],
                         check=True, capture_output=True, text=True).stdout
    wall, trial, span = json.loads(out.strip().splitlines()[-1])
    return wall, trial, span


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--objective", choices=("torch", "sleep"), default="torch",
                        help="torch: train an MLP (CPU-bound); sleep: 0.5 s of waiting (runner overhead only)")
    parser.add_argument("--single", type=int, help="run one search with this many workers and print JSON")
    parser.add_argument("--control", action="store_true",
                        help="time the training call alone and two plain processes side by side, then stop")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.control:
        control(args.steps)
        return
    if args.single:
        print(json.dumps(one_run(args.single, args.trials, args.steps, args.objective)))
        return
    runs: dict[int, list[tuple[float, float, float, float]]] = {1: [], 2: []}
    for r in range(args.repeats):
        for workers in (1, 2):  # interleaved, so a slow spell of the machine hits both settings
            load = os.getloadavg()[0]  # other work on the machine skews both settings: record it
            wall, trial, span = fresh_run(workers, args.trials, args.steps, args.objective)
            runs[workers].append((wall, trial, span, load))
            print(f"repeat {r + 1}: workers={workers} wall {wall:.2f} s, trials span {span:.2f} s, "
                  f"median trial {trial:.3f} s, load before {load:.2f}", flush=True)
    med = {w: statistics.median(x[0] for x in v) for w, v in runs.items()}
    trial = {w: statistics.median(x[1] for x in v) for w, v in runs.items()}
    span = {w: statistics.median(x[2] for x in v) for w, v in runs.items()}
    print()
    print(f"| workers | wall (median of {args.repeats}) | all walls (s) | trials span | median trial | "
          "speed-up (wall) | speed-up (span) |")
    print("|---|---|---|---|---|---|---|")
    for w in (1, 2):
        print(f"| {w} | {med[w]:.2f} s | {', '.join(f'{x[0]:.2f}' for x in runs[w])} | {span[w]:.2f} s | "
              f"{trial[w]:.3f} s | {med[1] / med[w]:.2f}x | {span[1] / span[w]:.2f}x |")
    print()
    print(json.dumps({"objective": args.objective, "machine": platform.platform(), "cpu_count": os.cpu_count(),
                      "python": platform.python_version(), "torch": torch.__version__,
                      "optuna": optuna.__version__, "trials": args.trials, "steps": args.steps,
                      "repeats": args.repeats, "median_wall_s": med, "median_trial_s": trial, "median_span_s": span,
                      "runs": runs}))


if __name__ == "__main__":
    main()
