"""How many torch threads a training process should use: by the work of one step and the cores free now.

Intra-op threads (``torch.set_num_threads``) split each matrix product across
cores.  That pays only when a product is large enough to cover waking the
threads and joining them again; a small MLP's step is a few tiny products, so
extra threads are pure cost.  On a shared machine they are worse than that:
OpenMP threads wait for each other at the end of every product, and one
descheduled thread stalls the rest (oversubscription).  The rule:

    cores_each = max(1, round((cores - busy) / workers))      cores free now, shared out
    by_work    = max(1, step_flops // FLOPS_PER_THREAD)        one thread per FLOPS_PER_THREAD of work
    threads    = min(cores_each, by_work)

``step_flops`` is one training step's floating-point operations,
:func:`step_flops`: the forward pass counted by ``torch.utils.flop_counter``
(matrix products and convolutions) times 3 for forward + backward.
``FLOPS_PER_THREAD`` (1 GFLOP: two threads from a 2 GFLOP step) is where the
measurements put the crossover (``bench/study_scaling.py --rule``;
docs/benchmarks.md, "Threads by work"): on the 2-core AMD EPYC (AVX-512 BF16),
nearly idle, a second thread made MLP steps of 16-514 MFLOP 2-16x *slower* in
two runs; steps of 1.4 and 8.9 GFLOP ran 1.7x and 1.8x faster in one run each
and slower in the other (this shared VM's noise); with other jobs on the machine
it made every size up to 1.4 GFLOP 6-23x slower.  Re-measure it on another machine with
``--rule``.  ``busy`` is how many
of this process's CPUs other processes kept busy during a short window
(:func:`busy_cores`, from ``/proc/stat`` on Linux; 0 elsewhere, where nothing is
measured).  Where the rule picks fewer threads than cores, the unused cores are
what ``--workers`` can use.  A study passes ``busy=0``: its thread count is part
of every run's key (threads change the order of float sums), so it must not
follow the momentary load or a rerun would not find its finished runs; the
speed run, which keeps no ledger, passes :func:`busy_cores`.

A study's workers (:func:`study_work`): the cores the threads leave free now,
one worker each, but only as many as the study has work for:

    workers = min(round(cores - busy) // threads,  runs,  steps // STEPS_PER_WORKER,  cap)

``steps`` is every run's training steps added up (runs x epochs x batches per
epoch).  A worker is a fresh interpreter that imports torch and loads the data
before its first step: 2-3 s on a quiet 2-core machine, 7-9 s on the shared one
the numbers in docs/benchmarks.md come from.  ``STEPS_PER_WORKER`` (5,000 steps,
5-25 s of a small MLP's steps at 1-5 ms each) keeps a short study in one
process, where that start would cost more than it saves.  ``cap`` is what the
caller knows besides (the memory for each worker's copy of the data, a model
that a fresh process cannot import, one GPU).  ``busy`` is looked at
(:func:`busy_cores`, 0.25 s) only when the other limits leave more than one
worker: on the shared 2-core machine of docs/benchmarks.md, with other jobs
holding both cores, two one-thread workers trained the default study slower
than one (117 s against 84 s; 83 s against 47 s the day before), so a worker
is given only a core that is free.  The number of workers is not part of a run
key and may follow the load; the threads per worker are part of it and do not:
they are ``min(cores, step_flops // FLOPS_PER_THREAD)`` whatever the workers,
since the workers never take more than the cores those threads leave.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from regularkit._util.checks import check_int, check_non_negative

__all__ = ["FLOPS_PER_THREAD", "BUSY_WINDOW", "STEPS_PER_WORKER", "step_flops", "usable_cores", "busy_cores",
           "default_threads", "study_work"]

#: Training-step FLOPs from which one more intra-op thread pays (module docstring: how it was set).
FLOPS_PER_THREAD = 1_000_000_000
#: Training steps a study must have per worker before one more worker process pays (module docstring).
STEPS_PER_WORKER = 5_000
#: Seconds over which :func:`busy_cores` watches the other processes.
BUSY_WINDOW = 0.25


def step_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Floating-point operations of one training step on batch ``x``: 3 x the forward pass's (no gradients taken)."""
    was_training = model.training
    model.eval()        # batch norm's running statistics stay as they are
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return 3 * int(counter.get_total_flops())


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity on Linux), else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _cpu_times() -> dict[int, tuple[int, int]]:
    """Per CPU, (total, idle) jiffies from ``/proc/stat``; empty where there is none."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    times = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            values = [int(v) for v in fields[:8]]    # user nice system idle iowait irq softirq steal
            times[int(name[3:])] = (sum(values), values[3] + values[4])
    return times


def busy_cores(window: float = BUSY_WINDOW) -> float:
    """How many of this process's CPUs other processes kept busy over ``window`` seconds (this one sleeps).

    Linux only (``/proc/stat``); elsewhere 0.0, i.e. the machine is taken to be idle.
    """
    before = _cpu_times()
    if not before:
        return 0.0
    time.sleep(window)
    after = _cpu_times()
    mine = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(before)
    busy = 0.0
    for cpu in mine & set(before) & set(after):
        total = after[cpu][0] - before[cpu][0]
        idle = after[cpu][1] - before[cpu][1]
        if total > 0:
            busy += (total - idle) / total
    return busy


def default_threads(flops: int, *, cores: int | None = None, workers: int = 1,
                    busy: float = 0.0) -> tuple[int, str]:
    """Torch threads per worker for a step of ``flops`` (module docstring), and the reason: ``(threads, reason)``.

    ``cores`` defaults to :func:`usable_cores`; ``busy`` is what :func:`busy_cores` measured.
    """
    check_int("flops", flops, minimum=0)
    cores = usable_cores() if cores is None else check_int("cores", cores, minimum=1)
    check_int("workers", workers, minimum=1)
    check_non_negative("busy", busy)
    free = max(0.0, cores - busy)
    each = max(1, int(math.floor(free / workers + 0.5)))
    by_work = max(1, flops // FLOPS_PER_THREAD)
    threads = min(each, by_work)
    size = f"a step is {flops / 1e6:,.1f} MFLOP"
    if threads == each and by_work > each:
        share = f"{cores} cores" + (f", {busy:.1f} busy with other processes" if busy >= 0.5 else "")
        return threads, f"{threads} thread{'s' if threads > 1 else ''} per worker: {share}, {workers} " \
                        f"worker{'s' if workers > 1 else ''} ({size})"
    return threads, (f"{threads} thread{'s' if threads > 1 else ''} per worker: {size}, one thread per "
                     f"{FLOPS_PER_THREAD / 1e6:,.0f} MFLOP")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def study_work(flops: int, *, steps: int, runs: int, cores: int | None = None, threads: int | None = None,
               workers: int | None = None, cap: tuple[int, str] | None = None,
               busy: float | Callable[[], float] = 0.0) -> tuple[int, int, str]:
    """A study's ``(threads per worker, workers, reason)``: the rules of the module docstring.

    ``flops``: one training step's (:func:`step_flops`); ``steps``: the training steps of all ``runs``
    together; ``threads`` / ``workers``: what the user asked for (None: by the rule; what is asked for
    always wins); ``cap``: ``(most workers, why)`` from what the caller knows besides (memory, a model a
    fresh process cannot import, one GPU); ``busy``: the cores other processes keep busy, or a function
    measuring them (:func:`busy_cores`), called only where it can lower the workers.  The threads never
    follow ``busy``: they are part of every run key.
    """
    check_int("flops", flops, minimum=0)
    check_int("steps", steps, minimum=0)
    check_int("runs", runs, minimum=1)
    cores = usable_cores() if cores is None else check_int("cores", cores, minimum=1)
    if threads is not None:
        check_int("threads", threads, minimum=1)
    if workers is not None:
        check_int("workers", workers, minimum=1)
    if not callable(busy):
        check_non_negative("busy", busy)
    size = f"a step of {flops / 1e6:,.1f} MFLOP"
    if workers is not None:
        how_many = _plural(workers, "worker") + " (asked for)"
    else:
        each = threads if threads is not None else default_threads(flops, cores=cores)[0]
        limits = [(max(1, cores // each), f"{_plural(cores, 'core')}, {_plural(each, 'thread')} each"),
                  (runs, _plural(runs, "run")),
                  (max(1, steps // STEPS_PER_WORKER), f"{steps:,} steps in all, one worker per "
                                                      f"{STEPS_PER_WORKER:,}")]
        if cap is not None:
            limits.append((check_int("cap", cap[0], minimum=1), cap[1]))
        workers, why = min(limits, key=lambda limit: limit[0])    # the first of equal limits names the reason
        if workers > 1 and busy:                                    # a worker per core free now
            now = check_non_negative("busy", busy() if callable(busy) else busy)
            free = max(1, int(math.floor(cores - now + 0.5))) // each
            if free < workers:
                workers, why = max(1, free), f"{_plural(cores, 'core')}, {now:.1f} busy with other processes"
        how_many = f"{_plural(workers, 'worker')} ({why})"
    if threads is not None:
        return threads, workers, f"{_plural(threads, 'thread')} per worker (asked for), {how_many}"
    threads = default_threads(flops, cores=cores, workers=workers)[0]
    by_work = max(1, flops // FLOPS_PER_THREAD)
    head = f"{_plural(threads, 'thread')} per worker, {how_many}"
    if threads < by_work:
        return threads, workers, f"{head}: {_plural(cores, 'core')} shared out ({size} has work for {by_work})"
    gain = "gains nothing from a second thread" if threads == 1 else f"has work for {threads}"
    return threads, workers, f"{head}: {size} {gain} (one per {FLOPS_PER_THREAD / 1e6:,.0f} MFLOP)"
