"""Threads by work: the FLOP count against a hand count, the rule's table both ways, the busy-core reading."""
import os

import pytest
import torch
from torch import nn

from regularkit._util import threads as T
from regularkit.errors import RegularkitError

MFLOP = 1_000_000
PER = T.FLOPS_PER_THREAD


def test_step_flops_is_three_forward_passes_of_the_matrix_products():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.BatchNorm1d(256), nn.Linear(256, 10))
    model.train()
    before = model[3].running_mean.clone()
    flops = T.step_flops(model, torch.randn(32, 1, 8, 8))
    assert flops == 3 * 2 * 32 * (64 * 256 + 256 * 10)                  # 2 FLOPs per multiply-add
    assert model.training and torch.equal(model[3].running_mean, before)  # mode and statistics untouched
    conv = nn.Conv2d(1, 8, 3, padding=1)
    assert T.step_flops(conv, torch.randn(4, 1, 10, 10)) == 3 * 2 * 4 * 8 * 10 * 10 * 9


@pytest.mark.parametrize("flops, cores, workers, busy, threads", [
    (16 * MFLOP, 2, 1, 0.0, 1),          # the default study's MLP: one thread
    (PER - 1, 8, 1, 0.0, 1),             # just below one thread's worth
    (2 * PER, 2, 1, 0.0, 2),             # enough work for both cores
    (100 * PER, 8, 1, 0.0, 8),           # capped by the cores
    (100 * PER, 8, 2, 0.0, 4),           # shared out between workers
    (100 * PER, 2, 1, 1.0, 1),           # one core taken by another process: no oversubscription
    (100 * PER, 2, 1, 0.3, 2),           # a little background noise does not cost a core
    (100 * PER, 2, 4, 0.0, 1),           # more workers than cores: still one thread each
    (3 * PER, 16, 1, 0.0, 3),            # by work, not by cores
    (1_429_700_000, 2, 1, 0.0, 1),       # MLP 1024-1024, batch 128: measured 0.11x and 1.74x
    (8_940_200_000, 2, 1, 0.0, 2),       # MLP 2048-2048, batch 256: measured 1.83x and 0.64x
])
def test_rule_table(flops, cores, workers, busy, threads):
    assert T.default_threads(flops, cores=cores, workers=workers, busy=busy)[0] == threads


def test_reasons_name_what_decided():
    assert T.default_threads(16 * MFLOP, cores=2) == (
        1, "1 thread per worker: a step is 16.0 MFLOP, one thread per 1,000 MFLOP")
    assert T.default_threads(10 * PER, cores=2, busy=1.2) == (
        1, "1 thread per worker: 2 cores, 1.2 busy with other processes, 1 worker (a step is 10,000.0 MFLOP)")
    assert T.default_threads(10 * PER, cores=4, workers=2)[1] == "2 threads per worker: 4 cores, 2 workers (a step " \
                                                                 "is 10,000.0 MFLOP)"


@pytest.mark.parametrize("kwargs, message", [
    ({"flops": -1}, "flops must be >= 0, got -1"),
    ({"flops": 1.5}, "flops must be an integer"),
    ({"flops": 1, "workers": 0}, "workers must be >= 1, got 0"),
    ({"flops": 1, "cores": 0}, "cores must be >= 1, got 0"),
    ({"flops": 1, "busy": -0.5}, "busy must be"),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    with pytest.raises(RegularkitError, match=message):
        T.default_threads(**kwargs)


def test_busy_cores_reads_proc_stat_differences(monkeypatch):
    readings = iter([{0: (1000, 800), 1: (1000, 900)}, {0: (1100, 800), 1: (1100, 950)}])
    monkeypatch.setattr(T, "_cpu_times", lambda: next(readings))
    monkeypatch.setattr(T.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(T.time, "sleep", lambda s: None)
    assert T.busy_cores() == pytest.approx(1.0 + 0.5)     # cpu0 all busy, cpu1 half
    monkeypatch.setattr(T, "_cpu_times", lambda: {})
    assert T.busy_cores() == 0.0                           # no /proc/stat: nothing measured


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_cpu_times_and_usable_cores_on_this_machine():
    times = T._cpu_times()
    assert set(times) >= os.sched_getaffinity(0) and all(total >= idle >= 0 for total, idle in times.values())
    assert 0.0 <= T.busy_cores(0.05) <= T.usable_cores() == len(os.sched_getaffinity(0))


# --------------------------------------------------------------------------- a study's threads and workers
DIGITS_STEP = 3 * 2 * 32 * (64 * 256 + 256 * 256 + 256 * 10)     # the default study's MLP, batch 32: 16.2 MFLOP


@pytest.mark.parametrize("flops, steps, runs, cores, asked, cap, expected", [
    (DIGITS_STEP, 18 * 100 * 8, 18, 2, {}, None, (1, 2)),            # the default study: a worker per core
    (DIGITS_STEP, 18 * 100 * 8, 18, 16, {}, None, (1, 2)),           # 14,400 steps pay for two workers, not 16
    (DIGITS_STEP, 6 * 2 * 3, 6, 16, {}, None, (1, 1)),               # a short study stays in one process
    (DIGITS_STEP, 10**6, 3, 16, {}, None, (1, 3)),                   # no more workers than runs
    (DIGITS_STEP, 10**6, 18, 16, {}, (4, "memory"), (1, 4)),         # the caller's cap
    (DIGITS_STEP, 10**6, 18, 16, {}, (1, "one cuda device"), (1, 1)),
    (100 * PER, 10**6, 18, 8, {}, None, (8, 1)),                     # work for every core: one worker, all threads
    (3 * PER, 10**6, 18, 16, {}, None, (3, 5)),                      # 3 threads by work, 16 // 3 workers
    (DIGITS_STEP, 10**6, 18, 8, {"threads": 2}, None, (2, 4)),       # asked-for threads: the workers follow them
    (100 * PER, 10**6, 18, 8, {"workers": 2}, None, (4, 2)),         # asked-for workers: the cores shared out
    (DIGITS_STEP, 10, 1, 2, {"workers": 3, "threads": 5}, None, (5, 3)),  # both asked for: taken as they are
])
def test_study_work_table(flops, steps, runs, cores, asked, cap, expected):
    threads, workers, _ = T.study_work(flops, steps=steps, runs=runs, cores=cores, cap=cap, **asked)
    assert (threads, workers) == expected


@pytest.mark.parametrize("busy, workers", [(0.0, 2), (0.4, 2), (0.6, 1), (1.9, 1), (2.5, 1)])
def test_study_workers_take_only_the_cores_free_now_and_the_threads_never_follow(busy, workers):
    threads, chosen, why = T.study_work(DIGITS_STEP, steps=14_400, runs=18, cores=2, busy=busy)
    assert (threads, chosen) == (1, workers)                          # round(2 - busy) cores free, one thread each
    assert (f"2 cores, {busy:.1f} busy with other processes" in why) == (workers < 2)
    big = T.study_work(4 * PER, steps=10**6, runs=18, cores=16, busy=busy * 6)
    assert big[0] == 4 and big[1] == max(1, min(4, round(16 - busy * 6) // 4))   # 4 threads by work, whatever the load


def test_study_work_looks_at_the_busy_cores_only_where_they_could_lower_the_workers():
    looked = []
    T.study_work(DIGITS_STEP, steps=100, runs=18, cores=2, busy=lambda: looked.append(1) or 0.0)  # one worker anyway
    T.study_work(DIGITS_STEP, steps=10**6, runs=18, cores=2, workers=2, busy=lambda: looked.append(2) or 0.0)
    assert looked == []
    assert T.study_work(DIGITS_STEP, steps=10**6, runs=18, cores=2, busy=lambda: looked.append(3) or 1.5)[1] == 1
    assert looked == [3]


def test_study_work_says_what_decided_each_number():
    assert T.study_work(DIGITS_STEP, steps=14_400, runs=18, cores=2)[2] == (
        "1 thread per worker, 2 workers (2 cores, 1 thread each): a step of 16.2 MFLOP gains nothing from a second "
        "thread (one per 1,000 MFLOP)")
    assert T.study_work(DIGITS_STEP, steps=36, runs=6, cores=2)[2].startswith(
        f"1 thread per worker, 1 worker (36 steps in all, one worker per {T.STEPS_PER_WORKER:,}):")
    assert "1 worker (a fresh process cannot import it)" in T.study_work(
        DIGITS_STEP, steps=10**6, runs=18, cores=2, cap=(1, "a fresh process cannot import it"))[2]
    assert T.study_work(100 * PER, steps=10**6, runs=18, cores=8, workers=2)[2] == (
        "4 threads per worker, 2 workers (asked for): 8 cores shared out (a step of 100,000.0 MFLOP has work for 100)")
    assert T.study_work(3 * PER, steps=10**6, runs=18, cores=16)[2].endswith(
        "a step of 3,000.0 MFLOP has work for 3 (one per 1,000 MFLOP)")
    assert T.study_work(DIGITS_STEP, steps=10**6, runs=18, cores=2, threads=2)[2] == (
        "2 threads per worker (asked for), 1 worker (2 cores, 2 threads each)")


@pytest.mark.parametrize("kwargs, message", [
    ({"threads": 0}, "threads must be >= 1, got 0"),
    ({"workers": 0}, "workers must be >= 1, got 0"),
    ({"threads": 1.5}, "threads must be an integer"),
    ({"steps": -1}, "steps must be >= 0, got -1"),
    ({"runs": 0}, "runs must be >= 1, got 0"),
    ({"cores": 0}, "cores must be >= 1, got 0"),
    ({"cap": (0, "none")}, "cap must be >= 1, got 0"),
    ({"flops": -1, "threads": 1, "workers": 1}, "flops must be >= 0, got -1"),   # checked when nothing is decided too
    ({"busy": -0.5}, "busy must be"),
    ({"steps": 10**6, "runs": 18, "busy": lambda: -1.0}, "busy must be"),    # what a measuring function gives too
])
def test_study_work_bad_arguments_are_one_line_errors(kwargs, message):
    arguments = {"flops": DIGITS_STEP, "steps": 100, "runs": 2, "cores": 2, **kwargs}
    flops = arguments.pop("flops")
    with pytest.raises(RegularkitError, match=f"^{message}"):
        T.study_work(flops, **arguments)
