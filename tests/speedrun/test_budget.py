"""``speedrun.budget``: the epochs that fit a wall-clock budget (the docstring's inequality as a worked
example) and the timed probe (positive, and the global RNG left as it was)."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from regularkit.data.splits import Splits
from regularkit.speedrun import budget as B
from regularkit.speedrun.config import SpeedrunConfig


def splits(n_train=1000, n_val=100, n_test=200):
    g = torch.Generator().manual_seed(0)
    return Splits(x_train=torch.rand(n_train, 1, 8, 8, generator=g), y_train=torch.arange(n_train) % 4,
                  x_val=torch.rand(n_val, 1, 8, 8, generator=g), y_val=torch.arange(n_val) % 4,
                  x_test=torch.rand(n_test, 1, 8, 8, generator=g), y_test=torch.arange(n_test) % 4,
                  num_classes=4, input_shape=(1, 8, 8), train_idx=np.arange(n_train))


def expected_epochs(cfg, s, budget, elapsed, step, views):
    """The inequality of the module docstring, restated: the largest E with
    elapsed + E * steps * step * (1 + overhead) + final <= budget * (1 - margin)."""
    steps = math.ceil(len(s.y_train) / cfg.batch_size)
    final = views * (len(s.y_val) + len(s.y_test)) * (step / cfg.batch_size) / 3
    e = 0
    while elapsed + (e + 1) * steps * step * (1 + B.EPOCH_OVERHEAD) + final <= budget * (1 - B.MARGIN):
        e += 1
    return max(1, e)


@pytest.mark.parametrize("budget, elapsed, step", [(600.0, 12.0, 0.25), (100.0, 0.0, 0.01), (60.0, 50.0, 0.5)])
def test_epochs_are_the_most_that_fit_the_budget(budget, elapsed, step):
    cfg, s = dataclasses.replace(SpeedrunConfig(), batch_size=128), splits()
    views = 4 if cfg.uses("tta") and cfg.tta_shift > 0 else 2 if cfg.uses("tta") else 1
    got = B.epochs_for_budget(cfg, s, budget, elapsed, step)
    assert got == expected_epochs(cfg, s, budget, elapsed, step, views)


def test_a_worked_example():
    """1000 images, batch 128: 8 steps of 0.25 s = 2 s, x 1.12 = 2.24 s an epoch; no TTA: the final pass is
    300 images x 0.25 / 128 / 3 = 0.195 s; (600 x 0.95 - 12 - 0.195) / 2.24 = 249.02: 249 epochs."""
    cfg = dataclasses.replace(SpeedrunConfig(), batch_size=128, without=("tta",))
    assert not cfg.uses("tta")
    assert B.epochs_for_budget(cfg, splits(), 600.0, 12.0, 0.25) == 249
    assert B.epochs_for_budget(cfg, splits(), 10.0, 12.0, 0.25) == 1  # over budget already: still one epoch


def test_the_probe_times_a_step_and_leaves_the_global_rng_alone():
    cfg = dataclasses.replace(SpeedrunConfig(), batch_size=16, widths=(4, 8, 8), precision="fp32",
                              channels_last=False)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    seconds = B.seconds_per_step(cfg, splits(n_train=64))
    assert 0 < seconds < 5
    assert torch.equal(torch.rand(3), expected)
