"""``--budget SECONDS`` (by default 600): the number of epochs that fits a wall-clock budget, from a timed probe.

The learning-rate schedule needs the number of steps before the first one, so
a budget cannot simply stop training when time runs out (the rate would still
be high).  Instead a throwaway copy of the run's model trains ``PROBE_STEPS``
steps on real batches, the last ``PROBE_STEPS - WARM_STEPS`` timed (the first
steps pay one-off costs: allocation, oneDNN kernel choice, ``torch.compile``),
and the epochs are chosen so that::

    elapsed so far + epochs * (steps per epoch * seconds per step) * (1 + EPOCH_OVERHEAD)
                   + final measurement  <=  budget * (1 - MARGIN)

The learning-rate schedule (warm-up, then linear decay to 0) is laid over the
chosen epochs, so a slower machine gets the same schedule compressed into fewer
steps, and a faster one a longer one.  ``EPOCH_OVERHEAD`` is what an epoch of
``fit`` costs beyond the bare steps the probe times (gathering batches, flips
and translations, the EMA and decay updates, the per-epoch validation pass):
measured at 0.12 on the 35-epoch reference run (528 s of training against 472 s
predicted by the probe; docs/speedrun.md).  ``MARGIN`` keeps 5 % of the budget
for a shared machine's noise.  The final measurement is estimated as TTA views x
(validation + test images) forward passes at a third of a training step's cost
per image (a forward pass is about a third of forward + backward).  The
estimate is a guess about the future of a shared machine: the chosen epochs
are recorded with the results, and the exact run is repeated with ``--epochs``.
The probe draws from its own generator and restores the global RNG, so the run
that follows is the one ``--epochs`` would give.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from regularkit.data.splits import Splits
from regularkit.speedrun.augmentation import views_at_test
from regularkit.speedrun.config import SpeedrunConfig
from regularkit.speedrun.model import SpeedrunNet
from regularkit.train.device import Precision

__all__ = ["PROBE_STEPS", "WARM_STEPS", "EPOCH_OVERHEAD", "MARGIN", "seconds_per_step", "epochs_for_budget"]

PROBE_STEPS = 8
WARM_STEPS = 3
EPOCH_OVERHEAD = 0.12
MARGIN = 0.05


def seconds_per_step(cfg: SpeedrunConfig, splits: Splits) -> float:
    """Median wall seconds of one training step of ``cfg``'s network on ``cfg.batch_size`` training images.

    ``cfg.precision`` must be a mode (``fp32``, ``bf16``), not ``auto``: the caller resolves it once.
    """
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SpeedrunNet(splits.input_shape, splits.num_classes, widths=cfg.widths, patch=cfg.patch,
                            batchnorm=cfg.uses("bn"))
        if cfg.uses("whiten"):
            model.whiten.requires_grad_(False)  # as trained: the frozen stem has no gradient to compute
        memory = torch.channels_last if cfg.channels_last else torch.contiguous_format
        model = model.to(memory_format=memory)
        step_model = torch.compile(model) if cfg.compile else model
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
        amp = Precision(cfg.precision, "cpu")
        n = int(splits.y_train.shape[0])
        times = []
        for step in range(PROBE_STEPS):
            idx = torch.randint(0, n, (cfg.batch_size,))
            xb = splits.x_train[idx].contiguous(memory_format=memory)
            t = time.perf_counter()
            with amp.autocast():
                loss = F.cross_entropy(step_model(xb), splits.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step >= WARM_STEPS:
                times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def epochs_for_budget(cfg: SpeedrunConfig, splits: Splits, budget: float, elapsed: float,
                      step_seconds: float) -> int:
    """The most epochs (at least 1) whose estimated end falls within ``budget`` seconds of the run's start."""
    n_train = int(splits.y_train.shape[0])
    steps = math.ceil(n_train / cfg.batch_size)
    per_image = step_seconds / cfg.batch_size
    epoch = steps * step_seconds * (1.0 + EPOCH_OVERHEAD)
    views = len(views_at_test(cfg)) if cfg.uses("tta") else 1
    final = views * (len(splits.y_val) + len(splits.y_test)) * per_image / 3.0
    return max(1, int((budget * (1.0 - MARGIN) - elapsed - final) // epoch))
