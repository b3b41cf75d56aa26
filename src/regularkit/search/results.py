"""What a search leaves behind: one record per trial, the best configuration, the border warnings.

A :class:`SearchResult` is built from the trials stored in an Optuna study
(:func:`collect`), so a search can be reported from its storage alone, by any
process (:func:`result_from_study`); attempts whose worker died are left out,
their retries count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from regularkit.errors import RegularkitError
from regularkit.search.border import border_warnings
from regularkit.search.distributions import Categorical, Int, LogUniform, Uniform
from regularkit.search.space import SearchSpace
from regularkit.search.storage import done_trials, lost_trial_numbers

__all__ = ["SPACE_ATTR", "FIXED_ATTR", "SAMPLER_ATTR", "TrialRecord", "SearchResult", "collect", "result_from_study"]

SPACE_ATTR = "regularkit.space"   # study user attrs: the space and fixed params, saved with the trials
FIXED_ATTR = "regularkit.fixed"
SAMPLER_ATTR = "regularkit.sampler"


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial as the objective saw it."""

    number: int
    params: dict[str, Any]
    value: float | None
    state: str                      # "COMPLETE", "PRUNED" or "FAIL"
    intermediate: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResult:
    """The outcome of a search: its trials (lost attempts left out), the best, the border warnings."""

    space: SearchSpace
    trials: list[TrialRecord]
    best_params: dict[str, Any] | None
    best_value: float | None
    warnings: list[str]
    direction: str
    sampler: str
    study_name: str
    storage: str | None
    fixed: dict[str, Any]
    lost: list[int]                 # attempts whose worker died; each was retried
    study: optuna.Study = field(repr=False, compare=False)

    @property
    def best_config(self) -> dict[str, Any] | None:
        """What the objective received for the best trial: best params plus the fixed ones."""
        return None if self.best_params is None else {**self.fixed, **self.best_params}

    @property
    def completed(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space.to_dict(), "best_params": self.best_params, "best_value": self.best_value,
                "warnings": self.warnings, "direction": self.direction, "sampler": self.sampler,
                "study_name": self.study_name, "storage": self.storage, "fixed": self.fixed, "lost": self.lost,
                "trials": [t.__dict__ for t in self.trials]}


def collect(study: optuna.Study, space: SearchSpace, *, sampler: str, storage: str | None,
            fixed: dict[str, Any], edge_fraction: float = 0.1) -> SearchResult:
    """A :class:`SearchResult` from the trials stored in ``study``."""
    trials = [TrialRecord(number=t.number, params=space.decode(t.params), value=t.value, state=t.state.name,
                          intermediate=dict(t.intermediate_values)) for t in done_trials(study)]
    direction = study.direction.name.lower()
    scored = [t for t in trials if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
    best = (min if direction == "minimize" else max)(scored, key=lambda t: t.value) if scored else None
    lost = sorted(lost_trial_numbers(study.get_trials(deepcopy=False)))
    return SearchResult(
        space=space, trials=trials, best_params=None if best is None else best.params,
        best_value=None if best is None else best.value,
        warnings=[] if best is None else border_warnings(space, best.params, edge_fraction=edge_fraction),
        direction=direction, sampler=sampler, study_name=study.study_name, storage=storage, fixed=dict(fixed),
        lost=lost, study=study)


def result_from_study(study: optuna.Study, *, edge_fraction: float = 0.1) -> SearchResult:
    """Rebuild a result from a stored study (its space from the study's attributes, or Optuna's)."""
    attrs = study.user_attrs
    space = (SearchSpace.from_dict(attrs[SPACE_ATTR]) if SPACE_ATTR in attrs
             else _space_from_optuna(study))
    return collect(study, space, sampler=attrs.get(SAMPLER_ATTR, "unknown"), storage=None,
                   fixed=attrs.get(FIXED_ATTR, {}), edge_fraction=edge_fraction)


def _space_from_optuna(study: optuna.Study) -> SearchSpace:
    dists = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        dists.update(t.distributions)
    if not dists:
        raise RegularkitError(f"study {study.study_name!r} has no completed trial to read a search space from")
    out = {}
    for name, d in dists.items():
        if isinstance(d, FloatDistribution):
            out[name] = (LogUniform if d.log else Uniform)(d.low, d.high)
        elif isinstance(d, IntDistribution):
            out[name] = Int(d.low, d.high, log=d.log)
        elif isinstance(d, CategoricalDistribution):
            out[name] = Categorical(d.choices)
    return SearchSpace(out)
