"""Which Optuna sampler and pruner a search uses: one literal registry each.

Optuna does the sampling and the pruning; this file only turns the names the
CLI and TOML use ("random", "grid", "tpe"; "hyperband", "halving") into
objects; :class:`EpochPruner` is the pruner's side inside :func:`regularkit.train.fit`
(each epoch's validation error reported, the run stopped when the pruner says so), and
:func:`tune_pruner` the cautious rule both ``--tune`` searches (the study's and the speed
run's) prune by.  Random search is the default, as in the lecture (Bergstra & Bengio,
2012: when only a few hyper-parameters matter, random search tries more
distinct values of each than a grid of the same size).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import optuna

from regularkit._util.checks import check_choice, check_int
from regularkit.errors import RegularkitError
from regularkit.search.space import SearchSpace
from regularkit.train.callbacks import Callback, Decision

#: The largest sampler seed (NumPy's legacy seeding, which Optuna's samplers use, stops there).
SEED_MAX = 2**32 - 1

def startup_trials(total: int | None) -> int:
    """How many random trials TPE draws before it models: Optuna's 10, or a third of a short search.

    With Optuna's default, a search of 8 trials (``study --tune 8``) would be random search
    throughout; a third (at least 2) leaves most of a short budget to the model.
    """
    return 10 if total is None else max(2, min(10, total // 3))


SAMPLERS = {
    "random": lambda space, seed, grid_points, parallel, total: optuna.samplers.RandomSampler(seed=seed),
    # constant_liar: with several workers, running trials count as bad guesses so
    # that parallel TPE workers do not all propose the same point.
    "tpe": lambda space, seed, grid_points, parallel, total: optuna.samplers.TPESampler(
        seed=seed, constant_liar=parallel, n_startup_trials=startup_trials(total)),
    "grid": lambda space, seed, grid_points, parallel, total: optuna.samplers.GridSampler(
        space.grid(grid_points), seed=seed),
}

PRUNERS = {
    None: optuna.pruners.NopPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "halving": optuna.pruners.SuccessiveHalvingPruner,
}


def make_sampler(sampler: str | optuna.samplers.BaseSampler, space: SearchSpace, *, seed: int,
                 grid_points: int | Mapping[str, int] = 5, parallel: bool = False, total: int | None = None
                 ) -> optuna.samplers.BaseSampler:
    """A sampler from its name (or the given Optuna sampler, used as it is); ``total``: the search's
    number of trials (TPE's random start is a third of it, see :func:`startup_trials`)."""
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    check_choice("sampler", sampler, SAMPLERS)
    return SAMPLERS[sampler](space, seed, grid_points, parallel, total)


def make_pruner(pruner: str | None | optuna.pruners.BasePruner) -> optuna.pruners.BasePruner:
    """A pruner from its name; ``None`` never prunes."""
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    check_choice("pruner", pruner, PRUNERS)
    return PRUNERS[pruner]()


def sampler_name(sampler: str | optuna.samplers.BaseSampler) -> str:
    return sampler if isinstance(sampler, str) else type(sampler).__name__


def grid_size(space: SearchSpace, grid_points: int | Mapping[str, int] = 5) -> int:
    """How many configurations the grid has (the default ``n_trials`` of a grid search)."""
    return math.prod(len(v) for v in space.grid(grid_points).values())


def check_seed(seed) -> int:
    """A sampler seed: an integer in ``0 .. SEED_MAX`` (NumPy's seeding, which Optuna's samplers use, takes no
    other)."""
    seed = check_int("seed", seed, minimum=0)
    if seed > SEED_MAX:
        raise RegularkitError(f"seed must be <= {SEED_MAX}, got {seed}")
    return seed


def check_sampler_args(sampler, space: SearchSpace, grid_points, *, seed: int = 0) -> None:
    """Fail early, in the parent process, on a bad sampler name, grid or seed."""
    check_seed(seed)
    if not isinstance(sampler, optuna.samplers.BaseSampler):
        check_choice("sampler", sampler, SAMPLERS)
    if sampler == "grid":
        space.grid(grid_points)
    elif isinstance(grid_points, Mapping) and grid_points:
        raise RegularkitError(f"grid_points is only used with sampler='grid', got sampler={sampler!r}")


class EpochPruner(Callback):
    """Reports each epoch's validation error to the search; stops when it says so."""

    def __init__(self, report: Callable[[int, float], bool]):
        self.report = report
        self.pruned_at: int | None = None   # the epoch the search stopped this trial at

    def on_epoch_end(self, state) -> Decision | None:
        if self.report(state.epoch, float(state.metrics["val_error"])):
            self.pruned_at = state.epoch
            return Decision(True, f"pruned by the search at epoch {state.epoch}")
        return None


def tune_pruner(epochs: int) -> optuna.pruners.BasePruner:
    """Stop a trial only when, from half of its ``epochs`` on, it is worse than the median of the
    trials before it at the same epoch, and only once three trials have finished."""
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(1, epochs // 2))
