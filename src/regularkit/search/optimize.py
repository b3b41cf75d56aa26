"""``run_search``: one hyper-parameter search, through Optuna, with an objective free of Optuna.

The objective is ``objective(params, report) -> float``: ``params`` maps dotted
recipe fields to values (plus any ``fixed`` ones, e.g. a stage's ``epochs``), and
``report(step, value)`` records an intermediate value and returns True when the
pruner says to stop; the objective then returns early.  The value is minimised
by default: validation error, never test error (see ``discipline.final_test``).

Each finished trial prints a line in the style of the cs231n notes::

    val_err: 0.412000, lr: 1.405206e-04, reg: 4.793564e-01, (1 / 100)
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna

from regularkit._util.checks import check_choice, check_int
from regularkit.errors import RegularkitError
from regularkit.search.border import check_edge_fraction
from regularkit.search.results import FIXED_ATTR, SAMPLER_ATTR, SPACE_ATTR, SearchResult, collect
from regularkit.search.samplers import check_sampler_args, check_seed, grid_size, sampler_name
from regularkit.search.space import SearchSpace
from regularkit.search.storage import describe_storage, open_storage
from regularkit.search.workers import WorkerJob, check_picklable, quiet_optuna, supervise

__all__ = ["run_search"]


def run_search(objective: Callable[[dict, Callable[[int, float], bool]], float], space: SearchSpace, *,
               sampler: str | optuna.samplers.BaseSampler = "random", n_trials: int | None = None,
               seed: int = 0, storage: Any = None, study_name: str = "search", direction: str = "minimize",
               pruner: str | optuna.pruners.BasePruner | None = None, workers: int = 1,
               grid_points: int | Mapping[str, int] = 5, fixed: Mapping[str, Any] | None = None,
               metric: str = "val_err", edge_fraction: float = 0.1,
               log: Callable[[str], None] | None = print, enqueue: Sequence[Mapping[str, Any]] = ()) -> SearchResult:
    """Search ``space`` for the configuration minimising (or maximising) ``objective``.

    ``n_trials`` is the study's total: re-running with the same storage and study
    name resumes, running only what is missing (a grid search defaults to the grid
    size).  ``storage`` is None (in memory; a temporary journal folder when
    ``workers > 1``), a journal path or folder, or a database URL such as
    ``postgresql://user@host/db``.  ``workers`` processes share the storage; with
    more than one, the objective and ``log`` run in the workers and travel there by
    pickle (``log=print`` prints from each worker; a list's ``append`` would fill copies).
    ``enqueue``: configurations tried first, in order, when the study is new (Optuna's
    ``enqueue_trial``; e.g. a hand-set default, so the search never ends worse than it on
    the objective); each must lie in ``space``.
    """
    if not isinstance(space, SearchSpace):
        raise RegularkitError(f"space must be a SearchSpace, got {space!r}")
    check_choice("direction", direction, ("minimize", "maximize"))
    workers = check_int("workers", workers, minimum=1)
    seed = check_seed(seed)
    check_sampler_args(sampler, space, grid_points)
    check_edge_fraction(edge_fraction)  # now, not after an hour of trials
    fixed = dict(fixed or {})
    clash = sorted(set(fixed) & set(space))
    if clash:
        raise RegularkitError(f"fixed parameter {clash[0]!r} is also in the search space {list(space)}")
    if sampler == "grid":
        size = grid_size(space, grid_points)
        n_trials = size if n_trials is None else n_trials
        if check_int("n_trials", n_trials, minimum=1) > size:
            raise RegularkitError(f"n_trials={n_trials} is more than the {size} points of the grid; "
                                  "use fewer trials or more grid_points")
    elif n_trials is None:
        raise RegularkitError(f"n_trials is required with sampler={sampler_name(sampler)!r}, got None")
    n_trials = check_int("n_trials", n_trials, minimum=1)
    if workers > 1:
        check_picklable("objective", objective, workers)
        check_picklable("log", log, workers)
        if storage is None:
            # Workers share trials through a storage; a journal file needs no server.
            storage = tempfile.mkdtemp(prefix="regularkit-search-")
        elif isinstance(storage, optuna.storages.InMemoryStorage):
            raise RegularkitError(f"workers={workers} cannot share an in-memory storage; pass a journal "
                                  "folder or a database URL")
    opened = open_storage(storage) if storage is not None else optuna.storages.InMemoryStorage()

    enqueue = [_check_point(space, point) for point in enqueue]
    study = _create_or_check(opened, study_name, direction, space, fixed, sampler_name(sampler))
    if not study.trials:
        for point in enqueue:
            study.enqueue_trial(point)
    job = WorkerJob(objective=objective, space=space, storage=storage if workers > 1 else opened,
                    study_name=study_name, total=n_trials, sampler=sampler, seed=seed, grid_points=grid_points,
                    pruner=pruner, fixed=fixed, metric=metric, log=log, workers=workers)
    supervise(job)
    result = collect(study, space, sampler=sampler_name(sampler), storage=describe_storage(storage),
                     fixed=fixed, edge_fraction=edge_fraction)
    if log is not None:
        for w in result.warnings:
            log(w)
    return result


def _check_point(space: SearchSpace, point: Mapping[str, Any]) -> dict[str, Any]:
    """An enqueued configuration: every parameter of ``space``, each inside its range."""
    if not isinstance(point, Mapping) or set(point) != set(space):
        raise RegularkitError(f"an enqueued configuration must give exactly {sorted(space)}, got {point!r}")
    for name, dist in space.items():
        if hasattr(dist, "low") and not dist.low <= point[name] <= dist.high:
            raise RegularkitError(f"enqueued {name} = {point[name]!r} is outside [{dist.low}, {dist.high}]")
    return dict(point)


def _create_or_check(storage, study_name: str, direction: str, space: SearchSpace, fixed: dict,
                     sampler: str) -> optuna.Study:
    """Create the study, or load it and refuse to resume it with a different set-up."""
    with quiet_optuna():  # no "A new study created" INFO line between our log lines
        study = optuna.create_study(storage=storage, study_name=study_name, direction=direction,
                                    load_if_exists=True)
    attrs = study.user_attrs
    mine = {SPACE_ATTR: space.to_dict(), FIXED_ATTR: fixed, SAMPLER_ATTR: sampler}
    if SPACE_ATTR not in attrs:
        for key, value in mine.items():
            study.set_user_attr(key, json.loads(json.dumps(value)))
        return study
    if study.direction.name.lower() != direction:
        raise RegularkitError(f"study {study_name!r} exists with direction {study.direction.name.lower()!r}, "
                              f"got direction={direction!r}; use another study_name")
    for key, value in mine.items():
        if attrs.get(key) != json.loads(json.dumps(value)):
            what = key.split(".")[1]
            raise RegularkitError(f"study {study_name!r} exists with a different {what}: stored "
                                  f"{attrs.get(key)!r}, got {value!r}; use another study_name")
    return study
