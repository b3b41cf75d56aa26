"""One seed of the speed run: build, whiten, train with :func:`regularkit.train.fit`, measure once.

The training loop is regularkit's own :func:`~regularkit.train.fit`; this
module only fills its hook points::

    batch_transform   flip + translate                 (augmentation.py)
    loss_fn           cross-entropy, label smoothing   (regularkit.losses.cross_entropy)
    after_step        learning-rate step, EMA update
    eval_model        the EMA's averaged copy          (regularkit.averaging.EMA)
    eval_sets         the validation split, every epoch (the time-to-accuracy curve)
    on_epoch          the progress line with its ETA

Optimizer: SGD with Nesterov momentum; weight decay is *decoupled*
(Loshchilov & Hutter 2019, "SGDW", :func:`regularkit.train.optim.decoupled_weight_decay`):
the weights only (:func:`regularkit.penalties.decay_param_groups`: kernels, not
biases or batch norm) follow ``w <- w - lr_t * u - lr_t * wd * w``, the decay
taken on the pre-step weights, outside the momentum (torch's SGD has only the
coupled form, ``wd * w`` added to the gradient).  Until 2026-12 the shrink was
applied after the step, ``(1 - lr_t * wd)(w - lr_t * u)``, which differs by
``lr_t^2 * wd * u``: speed-run numbers from before then may move slightly.

Schedule: per step, linear warm-up from 0 to ``lr`` over the first ``warmup``
fraction of the steps, then linear decay to 0 (a one-cycle triangle,
airbench's shape).

The test set is measured once, at the end, on the model the run chose before
looking at it (the EMA, through test-time augmentation); validation accuracy
is measured every epoch (EMA, no TTA: the curve) and once more at the end the
way the test is (the number every development choice was made on).
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

import torch

from regularkit.averaging import EMA
from regularkit.data.splits import Splits
from regularkit.losses import cross_entropy
from regularkit.penalties import decay_param_groups
from regularkit.speedrun.augmentation import batch_transform, model_at_test
from regularkit.speedrun.config import SpeedrunConfig
from regularkit.speedrun.model import SpeedrunNet
from regularkit.train import evaluate, fit
from regularkit.train.callbacks import Callback
from regularkit.train.device import Precision, resolve_precision
from regularkit.train.optim import decoupled_weight_decay

__all__ = ["RunResult", "build_model", "lr_factor", "train_seed"]

#: Training images the whitening statistics are read from (all their 4 x 4 patches, capped at a million).
WHITEN_IMAGES = 5000


@dataclass
class RunResult:
    """What one seed's run measured (accuracies are fractions)."""

    seed: int
    test_accuracy: float
    val_accuracy: float | None           # at the end, measured as the test is (EMA, TTA)
    epochs: int
    wall_seconds: float                  # the whole run: data loading, whitening, training, measuring
    train_seconds: float                 # inside fit, per-epoch validation included
    curve: list[dict] = field(default_factory=list)   # per epoch: epoch, seconds (since start), val_accuracy
    load_average: tuple[float, float] = (0.0, 0.0)    # 1-minute load average at start and end


def build_model(cfg: SpeedrunConfig, splits: Splits) -> SpeedrunNet:
    """The network for ``splits``; whitening-initialised from its training images when ``cfg`` uses it."""
    model = SpeedrunNet(splits.input_shape, splits.num_classes, widths=cfg.widths, patch=cfg.patch,
                        whiten_eps=cfg.whiten_eps, batchnorm=cfg.uses("bn"), bn_momentum=cfg.bn_momentum)
    if cfg.uses("whiten"):
        model.fit_whitening(splits.x_train[:WHITEN_IMAGES])
    return model


def lr_factor(step: int, total: int, warmup: float) -> float:
    """Multiplier of the peak learning rate at 0-based ``step`` of ``total``: linear up, then linear down to 0."""
    rise = max(1, round(warmup * total))
    if step < rise:
        return (step + 1) / rise
    return max(0.0, (total - step - 1) / max(1, total - rise))


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return float("nan")


def train_seed(cfg: SpeedrunConfig, splits: Splits, seed: int, *, epochs: int | None = None,
               started: float | None = None, on_epoch: Callable[[dict], None] | None = None,
               measure_test: bool = True, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Train and measure one seed on ``splits``; ``started`` is when the run began (its data loading included).

    ``measure_test=False`` (a ``--tune`` trial, :mod:`~regularkit.speedrun.tune`): the test split is not
    touched and ``test_accuracy`` is NaN; the trial is judged on validation only.  ``callbacks`` go to
    :func:`~regularkit.train.fit` (the search's :class:`~regularkit.search.samplers.EpochPruner`).
    """
    started = time.perf_counter() if started is None else started
    if cfg.precision == "auto":  # resolved per device, as run_speedrun does
        cfg = dataclasses.replace(cfg, precision=resolve_precision("auto", "cpu")[0])
    load_start = _load()
    epochs = cfg.epochs if epochs is None else epochs
    torch.manual_seed(seed)
    model = build_model(cfg, splits)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    wd = cfg.weight_decay if cfg.uses("decay") else 0.0
    decayed = decay_param_groups(model, wd)[0]["params"] if wd > 0 else []
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if decayed:
        decoupled_weight_decay(optimizer, decayed, wd)   # before each step, on the pre-step weights
    n_train = int(splits.y_train.shape[0])
    total = epochs * math.ceil(n_train / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, partial(lr_factor, total=total, warmup=cfg.warmup))
    ema = EMA(model, decay=cfg.ema_decay, warmup=True, buffers="average") if cfg.uses("ema") else None

    def after_step(m) -> None:
        scheduler.step()
        if ema is not None:
            ema.update(m)

    def eval_model():
        return ema.module if ema is not None else model

    curve: list[dict] = []

    def record(metrics: dict) -> None:
        point = {"epoch": int(metrics["epoch"]), "seconds": time.perf_counter() - started,
                 "val_accuracy": 1.0 - metrics["val_error"] if "val_error" in metrics else None}
        curve.append(point)
        if on_epoch is not None:
            on_epoch({**point, "epochs": epochs, "seed": seed})

    smoothing = cfg.label_smoothing if cfg.uses("smoothing") else 0.0
    trained = torch.compile(model) if cfg.compile else model
    eval_sets = {"val": splits.val} if len(splits.y_val) else {}
    t_fit = time.perf_counter()
    history = fit(trained, splits.train, optimizer=optimizer, epochs=epochs, batch_size=cfg.batch_size,
                  eval_sets=eval_sets, loss_fn=partial(cross_entropy, label_smoothing=smoothing),
                  batch_transform=batch_transform(cfg), after_step=[after_step], eval_model=eval_model,
                  seed=seed, on_epoch=record, precision=cfg.precision, channels_last=cfg.channels_last,
                  callbacks=list(callbacks))
    train_seconds = time.perf_counter() - t_fit
    if history.diverged is not None:
        return RunResult(seed, float("nan"), float("nan"), epochs, time.perf_counter() - started, train_seconds,
                         curve, (load_start, _load()))
    final = model_at_test(eval_model(), cfg)
    precision = Precision(cfg.precision, "cpu") if cfg.precision != "fp32" else None
    val_acc = None
    if eval_sets:
        val_acc = 1.0 - evaluate(final, *splits.val, batch_size=1000, precision=precision)[1]
    test_acc = float("nan")
    if measure_test:
        test_acc = 1.0 - evaluate(final, *splits.test, batch_size=1000, precision=precision)[1]   # the one look
    return RunResult(seed, test_acc, val_acc, epochs, time.perf_counter() - started, train_seconds, curve,
                     (load_start, _load()))
