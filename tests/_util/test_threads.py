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
