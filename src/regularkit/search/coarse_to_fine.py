"""Coarse -> fine search in stages (cs231n, "cross-validation strategy").

"First stage: only a few epochs to get a rough idea of what params work.
Second stage: longer running time, finer search."  Between stages every numeric
range is narrowed around the best region: the span of the top-k trials' values,
padded on each side by ``margin`` times the previous range width, and clipped to
the previous range.  All of it happens in search units, so a log range narrows
in decades (1e-6..1e-3 -> 10**-4.2..10**-3.1), as the lecture's
``reg = 10**uniform(-4, 0)`` after ``10**uniform(-5, 5)``.

Categorical parameters keep all their choices.  Each stage is its own study
(``<study_name>.stage<i>``), since its ranges and epochs differ; stage values
other than ``n_trials`` (``epochs``) reach the objective in ``params``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from regularkit._util.checks import check_choice, check_int, check_number, check_positive
from regularkit.errors import RegularkitError
from regularkit.search.distributions import Numeric
from regularkit.search.optimize import run_search
from regularkit.search.results import SearchResult, TrialRecord
from regularkit.search.space import SearchSpace

DEFAULT_STAGES = ({"n_trials": 20, "epochs": 5}, {"n_trials": 20, "epochs": 20})


def narrow_space(space: SearchSpace, trials: Sequence[TrialRecord | tuple[Mapping[str, Any], float]],
                 top_k: int, margin: float = 0.1, *, direction: str = "minimize") -> SearchSpace:
    """The space narrowed around the ``top_k`` best of ``trials`` (pure: no search is run).

    ``trials`` are :class:`TrialRecord` (only COMPLETE ones are used) or ``(params, value)`` pairs.
    """
    top_k = check_int("top_k", top_k, minimum=1)
    margin = check_positive("margin", margin)
    check_choice("direction", direction, ("minimize", "maximize"))
    scored = [(p, v) for p, v in map(_pair, trials) if v is not None and math.isfinite(v)]
    if not scored:
        raise RegularkitError(f"narrow_space needs at least one completed trial with a finite value, "
                              f"got {len(trials)} trials and none usable")
    scored.sort(key=lambda pv: pv[1], reverse=direction == "maximize")
    top = [p for p, _ in scored[:top_k]]
    changes = {}
    for name in space.numeric:
        dist: Numeric = space[name]
        kept = [dist.transform(p[name]) for p in top if name in p]
        if not kept:
            continue
        lo, hi = dist.transform(dist.low), dist.transform(dist.high)
        pad = margin * (hi - lo)
        new_lo, new_hi = max(lo, min(kept) - pad), min(hi, max(kept) + pad)
        # Back to values; an unmoved bound keeps its exact old value (no 10**log10 round-off).
        changes[name] = dist.between(dist.low if new_lo == lo else dist.inverse(new_lo),
                                     dist.high if new_hi == hi else dist.inverse(new_hi))
    return space.replace(**changes)


def _pair(trial) -> tuple[Mapping[str, Any], float | None]:
    if isinstance(trial, TrialRecord):
        return trial.params, (trial.value if trial.state == "COMPLETE" else None)
    params, value = trial
    return params, value


def resolve_top(keep_top: float | int, n: int) -> int:
    """``keep_top`` as a count: a fraction in (0, 1] of ``n`` (at least 1), or an int >= 1."""
    if isinstance(keep_top, int) and not isinstance(keep_top, bool):
        return check_int("keep_top", keep_top, minimum=1)
    frac = check_number("keep_top", keep_top)
    if not 0.0 < frac <= 1.0:
        raise RegularkitError(f"keep_top must be a fraction in (0, 1] or an integer >= 1, got {keep_top!r}")
    return max(1, math.ceil(frac * n))


@dataclass(frozen=True)
class CoarseToFineResult:
    """All stages; the answer is the last stage's (the longest-trained, finest one)."""

    stages: list[SearchResult]
    spaces: list[SearchSpace]

    @property
    def final(self) -> SearchResult:
        return self.stages[-1]

    @property
    def best_params(self) -> dict[str, Any] | None:
        return self.final.best_params

    @property
    def best_value(self) -> float | None:
        return self.final.best_value

    @property
    def best_config(self) -> dict[str, Any] | None:
        return self.final.best_config

    @property
    def warnings(self) -> list[str]:
        return self.final.warnings

    @property
    def study(self):
        return self.final.study


def coarse_to_fine(objective: Callable[[dict, Callable[[int, float], bool]], float], space: SearchSpace,
                   stages: Sequence[Mapping[str, Any]] = DEFAULT_STAGES, *, keep_top: float | int = 0.2,
                   margin: float = 0.1, sampler: str = "random", seed: int = 0, storage: Any = None,
                   study_name: str = "search", direction: str = "minimize", pruner: Any = None,
                   workers: int = 1, metric: str = "val_err", edge_fraction: float = 0.1,
                   log: Callable[[str], None] | None = print) -> CoarseToFineResult:
    """Run the stages in order, narrowing the space between them (see the module docstring)."""
    if not stages:
        raise RegularkitError("coarse_to_fine needs at least one stage, got []")
    for i, stage in enumerate(stages):
        if not isinstance(stage, Mapping) or "n_trials" not in stage:
            raise RegularkitError(f"stage {i} must be a mapping with n_trials (and e.g. epochs), got {stage!r}")
    resolve_top(keep_top, 1)  # validate before the first (long) stage, not after it
    check_positive("margin", margin)
    results, spaces, current = [], [], space
    for i, stage in enumerate(stages):
        if i > 0:
            prev = results[-1]
            current = narrow_space(current, prev.trials, resolve_top(keep_top, len(prev.completed)),
                                   margin, direction=direction)
        if log is not None:
            ranges = ", ".join(f"{n}: [{d.low:.3g}, {d.high:.3g}]" for n, d in current.items() if n in current.numeric)
            log(f"stage {i + 1}/{len(stages)}: {dict(stage)}; {ranges}")
        fixed = {k: v for k, v in stage.items() if k != "n_trials"}
        results.append(run_search(objective, current, sampler=sampler, n_trials=stage["n_trials"],
                                  seed=seed + i, storage=storage, study_name=f"{study_name}.stage{i + 1}",
                                  direction=direction, pruner=pruner, workers=workers, fixed=fixed,
                                  metric=metric, edge_fraction=edge_fraction, log=log))
        spaces.append(current)
    return CoarseToFineResult(stages=results, spaces=spaces)
