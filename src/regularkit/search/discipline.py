"""The test set is looked at once, at the end ("Do not use test set for hyper-parameter optimization!").

Selection uses validation error (or k-fold); :func:`final_test` is then the one
place that touches the test set.  It records the look in the study itself
(user attribute ``regularkit.final_test``), *before* evaluating, so a second
look, from this process or any other sharing the storage, is refused unless
``force=True``, and even a crashed evaluation counts as a look.  Forced looks
are kept in the record's history, so a reader of the study sees how many
times the test set was used.

While a search runs, its trials get the splits with the test tensors replaced by
:class:`TestSplitGuard` (:func:`guarded`): any use raises, so a bug that touched the
test set stops the search instead of leaking (the study's ``--tune`` and the speed
run's ``--tune`` both train their trials on guarded splits).
"""
from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable
from typing import Any

import optuna

from regularkit.errors import RegularkitError
from regularkit.search.results import result_from_study

FINAL_ATTR = "regularkit.final_test"


class TestSplitGuard:
    """Stands where the test tensors were: any use raises (the tuning must never look at the test split)."""

    def _refuse(self, *args, **kwargs):
        raise RegularkitError("the strength search touched the test split; it may only use train and validation")

    __getattr__ = __getitem__ = __len__ = __iter__ = __array__ = _refuse

    def __repr__(self) -> str:
        return "TestSplitGuard()"


def guarded(splits):
    """``splits`` with the test tensors replaced by :class:`TestSplitGuard`."""
    return dataclasses.replace(splits, x_test=TestSplitGuard(), y_test=TestSplitGuard())


def _study_and_config(result: Any) -> tuple[optuna.Study, dict[str, Any] | None]:
    if isinstance(result, optuna.Study):
        return result, result_from_study(result).best_config
    if hasattr(result, "study") and hasattr(result, "best_config"):
        return result.study, result.best_config
    raise RegularkitError(f"final_test needs a SearchResult, CoarseToFineResult or optuna Study, got {result!r}")


def final_test(result: Any, evaluate: Callable[[dict[str, Any]], float], *,
               params: dict[str, Any] | None = None, force: bool = False,
               log: Callable[[str], None] | None = print) -> float:
    """Evaluate the chosen configuration on the test set, once per study, and record it.

    ``evaluate(config) -> float`` trains the final model with ``config`` (by
    default the best trial's params plus the search's fixed ones, e.g. epochs)
    and returns its test score.
    """
    study, config = _study_and_config(result)
    config = dict(params) if params is not None else config
    if config is None:
        raise RegularkitError(f"study {study.study_name!r} has no completed trial to test; got none")
    history = list(study.user_attrs.get(FINAL_ATTR, []))
    if history and not force:
        last = history[-1]
        done = (f"test value {last['value']:.6f}" if last.get("value") is not None
                else "it did not finish")
        raise RegularkitError(
            f"final_test already ran for study {study.study_name!r} at {last['started']} ({done}); "
            "the test set is used once; to look again, call final_test(..., force=True) from Python (the "
            "look is recorded); the command line never looks twice")
    entry = {"params": _jsonable(config), "started": _now(), "forced": bool(history), "value": None}
    study.set_user_attr(FINAL_ATTR, [*history, entry])  # recorded before the look, so a crash counts
    value = float(evaluate(config))
    entry["value"] = value if math.isfinite(value) else None
    entry["finished"] = _now()
    study.set_user_attr(FINAL_ATTR, [*history, entry])
    if log is not None:
        note = f" (look {len(history) + 1}, forced)" if history else ""
        log(f"test: {value:.6f} for {config}{note}")
    return value


def final_test_record(result: Any) -> list[dict[str, Any]]:
    """Every recorded look at the test set for this study, oldest first."""
    study = result if isinstance(result, optuna.Study) else result.study
    return list(study.user_attrs.get(FINAL_ATTR, []))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (type(None), bool, int, float, str)) else repr(value)
