"""``run_speedrun(cfg)``: every seed of one configuration, each a whole run timed from its data loading.

A seed's wall time is what ``regularkit speedrun fashion-mnist --seeds 1``
would take for it, minus the interpreter's start: the data are loaded again
for each seed (about two seconds) and counted, so ``--seeds 3`` is three
independent timed runs, not one load shared by three trainings.  The
results JSON and the curve are rewritten after each seed.

Before the first seed the plan line says what the run will do on this machine:
the precision ``auto`` resolved to and why (:func:`regularkit.train.device.resolve_precision`),
the torch threads and why (:func:`regularkit._util.threads.default_threads`: the
step's work and the cores other processes leave free), and the length (fixed
epochs, or the budget the probe sizes them for); under a budget each seed then
says what its probe measured and how many epochs fit.  The record keeps all of
it (``"precision"``, ``"threads"``, ``"epochs_chosen"``).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from regularkit.data.splits import Splits
from regularkit.errors import RegularkitError
from regularkit.speedrun.budget import epochs_for_budget, seconds_per_step
from regularkit.speedrun.config import SpeedrunConfig
from regularkit.speedrun.data import load_splits
from regularkit.speedrun.report import Progress, make_record, write_record
from regularkit.speedrun.train import RunResult, train_seed
from regularkit._util.threads import busy_cores, default_threads, step_flops
from regularkit.speedrun.model import SpeedrunNet
from regularkit.train.callbacks import Callback
from regularkit.train.device import resolve_precision

__all__ = ["run_speedrun", "run_one", "resolve", "plan_line"]


def resolve(cfg: SpeedrunConfig) -> tuple[SpeedrunConfig, dict[str, str]]:
    """``cfg`` with its precision (``auto`` -> bf16 or fp32) and threads (None -> the rule) set for this machine.

    Returns the resolved config and the reason of each choice (``{"precision": ..., "threads": ...}``).
    """
    precision, why_precision = resolve_precision(cfg.precision, "cpu")
    if cfg.threads is not None:
        threads, why_threads = cfg.threads, f"{cfg.threads} thread{'s' if cfg.threads != 1 else ''}: asked for"
    else:
        net = SpeedrunNet((1, 28, 28), 10, widths=cfg.widths, patch=cfg.patch, batchnorm=cfg.uses("bn"))
        threads, why_threads = default_threads(step_flops(net, torch.zeros(cfg.batch_size, 1, 28, 28)),
                                               busy=busy_cores())
    resolved = dataclasses.replace(cfg, precision=precision, threads=threads)
    return resolved, {"precision": why_precision, "threads": why_threads}


def plan_line(cfg: SpeedrunConfig, reasons: dict[str, str]) -> str:
    """What the run will do here: ``speedrun fashion-mnist, full, 1 seed: fp32: ...; 2 threads: ...; <length>``."""
    budget = cfg.budget_seconds()
    length = (f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}" if budget is None
              else f"the epochs that fit in {budget:g} s per seed (a timed probe)")
    seeds = f"{cfg.seeds} seed{'s' if cfg.seeds != 1 else ''}"
    return f"speedrun {cfg.data}, {cfg.label()}, {seeds}: {reasons['precision']}; {reasons['threads']}; {length}"


def run_one(cfg: SpeedrunConfig, seed: int, *, splits: Splits | None = None,
            on_epoch: Callable[[dict], None] | None = None,
            say: Callable[[str], None] | None = None, measure_test: bool = True,
            callbacks: Sequence[Callback] = ()) -> tuple[RunResult, dict]:
    """One timed seed: load (unless ``splits`` is given), choose epochs (the budget), train, measure.

    ``cfg.precision`` ``auto`` is resolved here (:func:`resolve`); ``say`` gets a line
    with what the probe measured and the epochs chosen; ``measure_test`` and ``callbacks`` go to
    :func:`~regularkit.speedrun.train.train_seed` (a ``--tune`` trial).  Returns the result
    and how its epochs were chosen (``{"epochs": ...}``, plus the budget and the
    probe's seconds per step when a budget chose them).
    """
    started = time.perf_counter()
    cfg, _ = resolve(cfg)
    if splits is None:
        splits = load_splits(cfg)
    budget = cfg.budget_seconds()
    chosen: dict = {"epochs": cfg.epochs}
    if budget is not None:
        step = seconds_per_step(cfg, splits)
        epochs = epochs_for_budget(cfg, splits, budget, time.perf_counter() - started, step)
        chosen = {"epochs": epochs, "budget_seconds": budget, "probe_seconds_per_step": step}
        if say is not None:
            say(f"seed {seed}: {step:.3f} s per training step ({cfg.precision}) -> {epochs} epoch"
                f"{'s' if epochs != 1 else ''} fit in {budget:g} s")
    result = train_seed(cfg, splits, seed, epochs=chosen["epochs"], started=started, on_epoch=on_epoch,
                        measure_test=measure_test, callbacks=callbacks)
    return result, chosen


def check_out(out: str | Path) -> Path:
    """The results folder: created if missing; a file in its place is refused before any work."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise RegularkitError(f"--out {str(out)!r} is a file, not a folder")
    return path


def run_speedrun(cfg: SpeedrunConfig, *, splits: Splits | None = None, progress: bool = True,
                 write: bool = True, extra: dict | None = None) -> dict:
    """Every seed of ``cfg``, precision and threads resolved once (:func:`resolve`); returns and writes the record.

    ``splits`` replaces the dataset (tests); ``progress`` prints a line per epoch to stderr; ``extra`` is
    merged into the record (``--tune``'s search).
    """
    out = check_out(cfg.out) if write else None
    resolved, reasons = resolve(cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(resolved.threads)
    show = Progress(cfg.seeds) if progress else None
    if show is not None:
        show.say(plan_line(cfg, reasons))
    results: list[RunResult] = []
    choices: list[dict] = []
    record: dict = {}
    try:
        for seed in cfg.seed_list():
            result, chosen = run_one(resolved, seed, splits=splits, on_epoch=show,
                                     say=show.say if show is not None else None)
            results.append(result)
            choices.append(chosen)
            if show is not None:
                show.seed_done(result.wall_seconds)
            record = make_record(cfg, results)
            record["precision"] = {"asked": cfg.precision, "used": resolved.precision, "reason": reasons["precision"]}
            record["threads"] = {"asked": cfg.threads, "used": resolved.threads, "reason": reasons["threads"]}
            record["epochs_chosen"] = choices
            record.update(extra or {})
            if out is not None:
                write_record(record, out, cfg)
    finally:
        torch.set_num_threads(threads)
    return record
