"""``run_speedrun(cfg)``: every seed of one configuration, each a whole run timed from its data loading.

A seed's wall time is what ``regularkit speedrun fashion-mnist --seeds 1``
would take for it, minus the interpreter's start: the data are loaded again
for each seed (about two seconds) and counted, so ``--seeds 3`` is three
independent timed runs, not one load shared by three trainings.  The
results JSON and the curve are rewritten after each seed.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from regularkit.data.splits import Splits
from regularkit.errors import RegularkitError
from regularkit.speedrun.budget import epochs_for_budget, seconds_per_step
from regularkit.speedrun.config import SpeedrunConfig
from regularkit.speedrun.data import load_splits
from regularkit.speedrun.report import Progress, make_record, write_record
from regularkit.speedrun.train import RunResult, train_seed

__all__ = ["run_speedrun", "run_one"]


def run_one(cfg: SpeedrunConfig, seed: int, *, splits: Splits | None = None,
            on_epoch: Callable[[dict], None] | None = None) -> tuple[RunResult, dict]:
    """One timed seed: load (unless ``splits`` is given), choose epochs (``--budget``), train, measure.

    Returns the result and how its epochs were chosen (``{"epochs": ...}``, plus the
    probe's seconds per step under a budget).
    """
    started = time.perf_counter()
    if splits is None:
        splits = load_splits(cfg)
    chosen: dict = {"epochs": cfg.epochs}
    if cfg.budget is not None:
        step = seconds_per_step(cfg, splits)
        epochs = epochs_for_budget(cfg, splits, cfg.budget, time.perf_counter() - started, step)
        chosen = {"epochs": epochs, "budget_seconds": cfg.budget, "probe_seconds_per_step": step}
    result = train_seed(cfg, splits, seed, epochs=chosen["epochs"], started=started, on_epoch=on_epoch)
    return result, chosen


def check_out(out: str | Path) -> Path:
    """The results folder: created if missing; a file in its place is refused before any work."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise RegularkitError(f"--out {str(out)!r} is a file, not a folder")
    return path


def run_speedrun(cfg: SpeedrunConfig, *, splits: Splits | None = None, progress: bool = True,
                 write: bool = True) -> dict:
    """Run every seed of ``cfg`` with ``cfg.threads`` torch threads; returns (and writes) the record.

    ``splits`` replaces the dataset (tests); ``progress`` prints a line per epoch to stderr.
    """
    out = check_out(cfg.out) if write else None
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    show = Progress(cfg.seeds) if progress else None
    results: list[RunResult] = []
    choices: list[dict] = []
    record: dict = {}
    try:
        for seed in cfg.seed_list():
            result, chosen = run_one(cfg, seed, splits=splits, on_epoch=show)
            results.append(result)
            choices.append(chosen)
            if show is not None:
                show.seed_done(result.wall_seconds)
            record = make_record(cfg, results)
            record["epochs_chosen"] = choices
            if out is not None:
                write_record(record, out, cfg)
    finally:
        torch.set_num_threads(threads)
    return record
