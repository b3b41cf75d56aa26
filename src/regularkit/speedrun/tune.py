"""``regularkit speedrun fashion-mnist --tune N``: the speed run's own strengths searched on validation.

The run's strengths (label smoothing 0.2, weight decay 5e-4, EMA decay 0.99, translation 2 px)
were fixed when the pipeline was written, after airbench's, and never searched (docs/speedrun.md).
``--tune N`` searches them at the run's full length:

* **The space** (:func:`space_for`): ``label_smoothing`` uniform in [0, 0.3], ``weight_decay``
  log-uniform in [1e-4, 2e-3], ``ema_decay`` uniform in [0.95, 0.995], ``translate`` an integer in
  [0, 3] pixels, and, when the length is fixed (``--epochs E``), ``epochs`` an integer in
  [ceil(E / 2), E]: fewer epochs may do as well, never more than the time asked for.  A technique
  the run removes (``--without smoothing``) takes its strength out of the space.  Under a budget
  (the default), every trial trains the epochs its own probe says fit.
* **The trials** train seed :data:`TUNE_SEED` with the test split replaced by a guard that raises
  on any use (:func:`regularkit.search.discipline.guarded`) and ``measure_test=False``; each is
  judged on its validation error measured as the test would be (EMA weights, test-time
  augmentation).  Optuna's TPE sampler; the run's own values are the first trial, so the choice is
  never worse on validation than the defaults; under ``--epochs`` a trial is pruned when, from half
  of the epochs on, its validation error per epoch is worse than the median of the trials before it
  (:func:`regularkit.search.samplers.tune_pruner`, the study's ``--tune`` rule).  Under a budget no
  trial is pruned: its epochs are chosen by its own probe, after the search has started it.
* **Resuming**: trials live in ``<out>/tune.journal`` under a name that hashes the configuration
  searched from (everything but the seeds and the folder), the number of trials and
  :data:`TUNE_VERSION`: a rerun runs only the trials still missing.
* **Then the seeds**: the chosen configuration trains ``--seeds`` seeds with the test measured once
  each (the ordinary run, :func:`regularkit.speedrun.run.run_speedrun`), and is saved as
  ``<out>/tuned.toml`` so ``--config`` repeats it.  The record keeps the search: trials, the
  chosen values and their validation error.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Callable

import optuna
import torch

from regularkit._util.io import atomic_write_text
from regularkit.config import to_dict, to_toml
from regularkit.data.splits import Splits
from regularkit.search.discipline import guarded
from regularkit.search.optimize import run_search
from regularkit.search.samplers import EpochPruner, tune_pruner
from regularkit.search.space import Int, LogUniform, SearchSpace, Uniform
from regularkit.speedrun.config import SpeedrunConfig
from regularkit.speedrun.data import load_splits
from regularkit.speedrun.report import Progress
from regularkit.speedrun.run import check_out, plan_line, resolve, run_one, run_speedrun

__all__ = ["TUNE_SEED", "TUNE_VERSION", "space_for", "tune_speedrun", "tuned_speedrun", "SpeedrunObjective"]

TUNE_SEED = 0
#: Part of the search's name: bumped when how a search runs changes, so an old search is not resumed.
TUNE_VERSION = 1
#: The searched fields, each with the technique that must be in the run for it to matter.
STRENGTHS: dict[str, tuple[str, Any]] = {
    "label_smoothing": ("smoothing", Uniform(0.0, 0.3)),
    "weight_decay": ("decay", LogUniform(1e-4, 2e-3)),
    "ema_decay": ("ema", Uniform(0.95, 0.995)),
    "translate": ("translate", Int(0, 3)),
}


def space_for(cfg: SpeedrunConfig) -> SearchSpace:
    """The strengths of the techniques ``cfg`` uses, plus ``epochs`` in [ceil(E/2), E] when ``cfg.epochs`` is E."""
    params = {name: dist for name, (technique, dist) in STRENGTHS.items() if cfg.uses(technique)}
    if cfg.epochs is not None and cfg.epochs > 1:
        params["epochs"] = Int(math.ceil(cfg.epochs / 2), cfg.epochs)
    return SearchSpace(params)


def with_params(cfg: SpeedrunConfig, params: dict[str, Any]) -> SpeedrunConfig:
    """``cfg`` with searched ``params``; a searched ``epochs`` fixes the length (so no budget beside it)."""
    return dataclasses.replace(cfg, **({"budget": None} if "epochs" in params else {}), **params)


class SpeedrunObjective:
    """``(params, report) -> validation error`` of seed :data:`TUNE_SEED` with ``params`` over ``cfg``."""

    def __init__(self, cfg: SpeedrunConfig, splits: Splits, say: Callable[[str], None] | None = None,
                 progress: Progress | None = None):
        self.cfg, self.splits, self.say, self.progress = cfg, guarded(splits), say, progress
        self.trials = 0                       # trials this process trained (the progress lines' number)

    def _epoch(self, point: dict) -> None:
        if self.progress is not None:
            self.progress({**point, "seed": self.trials})

    def __call__(self, params: dict[str, Any], report: Callable[[int, float], bool]) -> float:
        trial = with_params(self.cfg, params)
        pruner = EpochPruner(report)
        self.trials += 1
        result, _ = run_one(trial, TUNE_SEED, splits=self.splits, say=self.say, measure_test=False,
                            callbacks=[pruner], on_epoch=self._epoch)
        value = result.val_accuracy
        return 1.0 - value if value is not None and math.isfinite(value) else math.inf


def study_name(cfg: SpeedrunConfig, trials: int) -> str:
    """``speedrun.tune.<hash>``: the configuration searched from (not its seeds or folder), the trials, the version."""
    base = {k: v for k, v in to_dict(cfg).items() if k not in ("seeds", "first_seed", "out")}
    blob = json.dumps([base, trials, TUNE_VERSION], sort_keys=True, default=str)
    return f"speedrun.tune.{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


def tune_speedrun(cfg: SpeedrunConfig, trials: int, *, splits: Splits | None = None,
                  log: Callable[[str], None] | None = print,
                  progress: Progress | None = None) -> tuple[SpeedrunConfig, dict[str, Any]]:
    """Search :func:`space_for` ``cfg`` for ``trials`` trials on validation; the chosen config and the search.

    ``cfg`` must have its precision and threads resolved (:func:`regularkit.speedrun.run.resolve`) so
    every trial trains alike; ``progress`` gets a line per epoch of each trial.  Returns the chosen
    configuration and ``{"trials", "finished", "pruned", "chosen", "defaults", "val_error", "study"}``.
    """
    out = check_out(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = load_splits(cfg) if splits is None else splits
    space = space_for(cfg)
    own = {name: getattr(cfg, name) for name in space}
    name = study_name(cfg, trials)
    pruner = tune_pruner(cfg.epochs) if cfg.epochs is not None else optuna.pruners.NopPruner()
    result = run_search(SpeedrunObjective(cfg, splits, log, progress), space, sampler="tpe", n_trials=trials,
                        seed=TUNE_SEED, storage=str(out / "tune.journal"), study_name=name, pruner=pruner,
                        log=log, enqueue=[own])
    chosen = dict(result.best_config)
    tuned = with_params(cfg, chosen)
    states = [t.state for t in result.study.trials]
    search = {"trials": trials, "finished": states.count(optuna.trial.TrialState.COMPLETE),
              "pruned": states.count(optuna.trial.TrialState.PRUNED), "chosen": chosen,
              "defaults": own, "val_error": result.best_value, "study": name}
    return tuned, search


def tuned_speedrun(cfg: SpeedrunConfig, trials: int, *, splits: Splits | None = None, progress: bool = True) -> dict:
    """``--tune N``: resolve precision and threads once, search (:func:`tune_speedrun`), write
    ``<out>/tuned.toml`` (the chosen values, precision and threads as asked, so another machine resolves
    its own), then every seed of it (:func:`regularkit.speedrun.run.run_speedrun`); the record gains
    ``"search"``."""
    check_out(cfg.out)
    resolved, reasons = resolve(cfg)
    show = Progress(1, label="trial") if progress else None
    say = show.say if show is not None else None
    if say is not None:
        say(f"search: {trials} trial{'s' if trials != 1 else ''} of seed {TUNE_SEED} on validation over "
            f"{', '.join(space_for(cfg))}; then the chosen configuration for every seed")
        say(plan_line(dataclasses.replace(cfg, seeds=1), reasons))
    threads = torch.get_num_threads()
    torch.set_num_threads(resolved.threads)
    try:
        tuned, search = tune_speedrun(resolved, trials, splits=splits, log=say, progress=show)
    finally:
        torch.set_num_threads(threads)
    final = dataclasses.replace(tuned, precision=cfg.precision, threads=cfg.threads)   # as asked: resolved again
    saved = atomic_write_text(Path(cfg.out) / "tuned.toml", to_toml(final))
    if say is not None:
        chosen = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in search["chosen"].items())
        say(f"chosen on validation: {chosen} (validation error {100 * search['val_error']:.2f}% over "
            f"{search['finished']} finished and {search['pruned']} pruned trials); saved as {saved}")
    return run_speedrun(final, splits=splits, progress=progress, extra={"search": search})
