"""Study wall time by workers and by threads, idle and beside a competing process; the threads rule's crossover.

Three measurements, each a study run as a user runs it (a fresh ``python -m regularkit study``
process writing to a fresh folder, so start-up, data loading, the ledger and the report are all
in the measured time), variants alternating inside each repeat (a burst of noise on a shared
machine hits all of them), medians over ``--repeats``:

* ``--compare workers`` (issue 11): ``--workers 1`` (all cores' threads) against ``--workers 2``
  (``cores // 2`` threads each).
* ``--compare threads`` (issue 25): today's default spelled out (``old``: one worker, ``cores //
  workers`` = all cores' torch threads, the default at 51dc49a) against the new one (``new``: no
  flags: the plan's rule, :func:`regularkit._util.threads.study_work`, picks threads by a step's
  FLOPs and workers by the cores, runs and steps; its ``threads:`` line is recorded), and with
  ``--variants old,new,new-1w`` the new threads in one worker (``--workers 1``), with ``at-commit`` and
  ``--old-src CHECKOUT/src`` another commit's code run with its own defaults (``git worktree add
  /tmp/at 51dc49a``, then ``--old-src /tmp/at/src``: the issue's "faster than at 51dc49a"); each ``idle``
  (nothing of ours beside it) and ``busy`` (a ``while True: pass`` process started for the
  condition and ended after it).  Settings alternate inside each repeat, in reversed order every
  other repeat.
* ``--rule``: one training step of MLPs of growing size at 1 and at 2 threads (SGD, cross-entropy,
  random data), ``--steps`` steps per measurement, 1 and 2 threads interleaved, medians over
  ``--repeats``: where a second thread starts to pay gives ``FLOPS_PER_THREAD``.

Studies: ``default`` (digits, MLP 256-256, 6 recipes x 3 seeds, runs of about 1 s), ``default-60`` (the
same at 60 epochs: 10,800 steps, still enough for the rule's second worker on 2 cores), ``fmnist``
(Fashion-MNIST, MLP 256-256, 10 000 images, 30 epochs, 3 recipes x 2 seeds: 10-15 s runs),
``fmnist-small`` (Fashion-MNIST, 2 000 images, 3 epochs, the default recipes and seeds),
``fmnist-2000`` (Fashion-MNIST, 2 000 images, 10 epochs, the default recipes and seeds).
Fashion-MNIST is read from ``$REGULARKIT_FASHION_MNIST`` (default /usr/share/datasets/fashion-mnist).

    python bench/study_scaling.py --compare workers [--repeats 3] [--only default] [--json out.json]
    python bench/study_scaling.py --compare threads --only default,fmnist-2000 --repeats 3 --timeout 150
    python bench/study_scaling.py --rule --repeats 15

Prints one line per run and a Markdown table (with the CPU model, its capability and the load
average) for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from regularkit._util.environment import cpu_model
from regularkit._util.threads import step_flops, usable_cores
from regularkit.models.mlp import MLP
from regularkit.train.device import cpu_capability

FMNIST = ["--data", "fashion-mnist", "--data-dir",
          os.environ.get("REGULARKIT_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"), "--model", "mlp"]
STUDIES = {
    "default": [],
    "default-60": ["--epochs", "60"],
    "fmnist": [*FMNIST, "--train-size", "10000", "--epochs", "30", "--seeds", "2",
               "--recipes", "baseline,l2,dropout", "--batch-size", "128"],
    "fmnist-small": [*FMNIST, "--train-size", "2000", "--epochs", "3"],
    "fmnist-2000": [*FMNIST, "--train-size", "2000", "--epochs", "10"],
}
COMPETITOR = [sys.executable, "-c", "while True: pass"]


def machine() -> dict:
    return {"cpu": cpu_model(), "capability": cpu_capability(),
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "cores": usable_cores(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__}


TIMEOUT = 600.0


def run_once(study: str, flags: list[str], timeout: float = TIMEOUT, src: str | None = None) -> tuple[float, int, str]:
    """Seconds of one whole ``regularkit study`` command with ``flags``, how many runs it trained, and its
    ``threads:`` line (what the plan chose and why).

    A study still running after ``timeout`` seconds is stopped and counted as ``timeout`` (a lower
    bound: the tables say so), so one pathological setting cannot take the whole session.  ``src``: another
    checkout's ``src`` folder, put first on ``PYTHONPATH`` (the ``at-commit`` variant: that commit's code).
    """
    with tempfile.TemporaryDirectory(prefix="regularkit-scaling-") as tmp:
        cmd = [sys.executable, "-m", "regularkit", "study", *STUDIES[study], *flags, "--out", tmp, "--no-progress"]
        t0 = time.perf_counter()
        # a session of its own: a stopped study's spawned workers are stopped with it, not left to load the next
        env = dict(os.environ, PYTHONPATH=src) if src else None
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                                env=env)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException as exc:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            if isinstance(exc, subprocess.TimeoutExpired):
                return timeout, -1, "stopped"
            raise
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr}")
        lines = stdout.splitlines()
        todo = [line for line in lines if line.endswith(" to do")]
        chosen = next((line.split(": ", 1)[1] for line in lines if line.startswith("threads: ")), "")
        return seconds, int(todo[0].rsplit(",", 1)[1].split()[0]) if todo else 0, chosen


def compare_workers(studies, repeats) -> dict:
    times: dict[tuple[str, int], list[float]] = {}
    runs: dict[str, int] = {}
    for rep in range(repeats):
        for study in studies:
            for workers in (1, 2):
                seconds, n, _ = run_once(study, ["--workers", str(workers), "--threads",
                                                 str(max(1, usable_cores() // workers))])
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


def variants(names: list[str]) -> dict[str, list[str]]:
    """The settings compared: today's default spelled out, the new default (no flags), the new threads in one worker."""
    cores = usable_cores()
    known = {"old": ["--workers", "1", "--threads", str(cores)],   # 51dc49a's default: cores // workers threads
             "new": [],                                             # the plan's rule decides threads and workers
             "new-1w": ["--workers", "1"],                          # the rule's threads, one worker
             "at-commit": []}                                       # --old-src's code with its own defaults
    return {name: known[name] for name in names}


def compare_threads(studies, repeats, conditions, timeout: float = TIMEOUT, names=("old", "new"),
                    old_src: str | None = None) -> dict:
    """Today's default against the new one, each condition inside each repeat (the competitor started and ended
    around its condition), settings alternating inside it; the table is printed after every repeat."""
    settings = variants(list(names))
    times: dict[tuple, list[float]] = {}
    chosen: dict[tuple, str] = {}
    result: dict = {}
    for rep in range(repeats):
        for condition in conditions:
            competitor = subprocess.Popen(COMPETITOR) if condition == "busy" else None
            try:
                time.sleep(1.0 if competitor else 0.0)
                for study in studies:
                    order = list(settings) if rep % 2 == 0 else list(settings)[::-1]   # neither always goes first
                    for name in order:
                        src = old_src if name == "at-commit" else None
                        if name == "at-commit" and not old_src:
                            raise SystemExit("the at-commit variant needs --old-src (a checkout's src folder)")
                        seconds, n, why = run_once(study, settings[name], timeout, src)
                        times.setdefault((condition, study, name), []).append(seconds)
                        if why != "stopped":
                            chosen[(study, name)] = why
                        flags = " ".join(settings[name]) or "-"
                        print(f"{condition} repeat {rep + 1}: {study:8s} {name:7s} {flags:22s}"
                              f" {seconds:7.1f} s ({n} runs; {why}); load {os.getloadavg()[0]:.1f}", flush=True)
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
        result = threads_table(times, chosen, studies, conditions, list(settings), timeout)
    return result


def threads_table(times, chosen, studies, conditions, names, timeout) -> dict:
    heads = " | ".join(f"{name} (median s)" for name in names)
    first = "at-commit" if "at-commit" in names else "old"
    print(f"\n| condition | study | {heads} | {first} / new | walls {' / '.join(names)} (s; {timeout:.0f} = stopped) |")
    print("|---|---|" + "---|" * (len(names) + 2))
    result = {}
    for condition in conditions:
        for study in studies:
            if any((condition, study, name) not in times for name in names):
                continue
            walls = {name: times[(condition, study, name)] for name in names}
            med = {name: statistics.median(w) for name, w in walls.items()}
            first = "at-commit" if "at-commit" in med else "old"
            ratio = f"{med[first] / med['new']:.2f}x" if {first, "new"} <= set(med) else "-"
            shown = " / ".join(", ".join(f"{x:.0f}" for x in w) for w in walls.values())
            print(f"| {condition} | {study} | {' | '.join(f'{m:.1f}' for m in med.values())} | {ratio} | {shown} |",
                  flush=True)
            result[f"{condition}/{study}"] = {**walls, "chosen": {n: chosen.get((study, n)) for n in names}}
    for (study, name), why in sorted(chosen.items()):
        print(f"{study}, {name}: {why}")
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
    parser.add_argument("--variants", default="old,new",
                        help="--compare threads: old, new, new-1w, at-commit (comma-separated)")
    parser.add_argument("--old-src", help="at-commit: a checkout's src folder (e.g. a git worktree at 51dc49a)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds after which a study is stopped")
    parser.add_argument("--json")
    args = parser.parse_args()
    # a stopped bench (kill, SIGTERM) still stops its competitor and its study's process group (the finally blocks)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    studies = args.only.split(",") if args.only else ["default", "fmnist"]
    info = machine()
    print(f"machine: {info}; load {os.getloadavg()[0]:.1f}\n", flush=True)
    load_start = os.getloadavg()
    if args.rule:
        result = measure_rule(args.repeats, args.steps)
    elif args.compare == "threads":
        result = compare_threads(studies, args.repeats, args.conditions.split(","), args.timeout,
                                 args.variants.split(","), args.old_src)
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
