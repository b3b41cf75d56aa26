"""Self-distillation's teacher: the baseline's seed ensemble, from its stored training-set predictions.

The ``distill`` recipe (Hinton, Vinyals & Dean 2015, :mod:`regularkit.distill`) trains one
model on the soft targets of the study's own seed ensemble: every baseline run stores its
probabilities on the training rows (``train_probs_artifact`` in its record,
:func:`regularkit.study.run.artifacts.save_outputs`), and the teacher is their average::

    p_teacher(x_i) = 1/S sum_s p_s(x_i)             (S finished, non-diverged baseline seeds)
    target_T(x_i)  = softmax(log p_teacher(x_i) / T)  (in the loss: distill.soften)

The average of probabilities, then tempered.  The average of probabilities is the seed
ensemble the table reports (its ``seed-ens`` column, the lectures' model averaging), so at
``T = 1`` the student is taught exactly the predictions whose test error that column shows;
tempering after averaging softens that ensemble's distribution.  Tempering each seed first
and averaging would teach a distribution no model of the study predicts, and averaging
logits is the geometric mean, another ensemble than the one reported.

Leakage: only training rows.  The teacher's rows are the baseline's predictions on the very
rows the student trains on (aligned with ``splits.x_train``, the split the run keys cover);
test predictions (the stored test probabilities) are never read here, and nothing is
predicted on the validation split, which stays as clean for the student as for the baseline.

Order: the pipeline trains the baseline's seeds (and every run that needs no teacher and no
search) before the runs that need the teacher, then loads it from the ledger and the
artifact store with :func:`with_teacher`: with N workers, and on a rerun after a crash,
the teacher is read from disk, never kept in a process.  The splits then carry it
(:class:`TaughtSplits`), so the strength search (``--tune``) and the workers see it too.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from regularkit.data.splits import Splits
from regularkit.errors import RegularkitError
from regularkit.study.run import ledger
from regularkit.study.run.artifacts import load_train_probs
from regularkit.train.config import Recipe

__all__ = ["TEACHER_RECIPE", "TaughtSplits", "is_teacher", "needs_teacher", "keeps_train_probs", "check_distillable",
           "check_teacher", "average_teacher", "first_phase", "with_teacher", "without_pupils", "teacher_rows"]

#: The recipe whose seeds teach: the study's reference model.
TEACHER_RECIPE = "baseline"


@dataclass(frozen=True, eq=False)
class TaughtSplits(Splits):
    """:class:`~regularkit.data.splits.Splits` whose training rows carry the teacher's probabilities
    (``teacher``: float32, ``len(y_train)`` x K, row i for ``x_train[i]``) and where it came from."""

    teacher: torch.Tensor | None = None
    teacher_info: dict[str, Any] = dataclasses.field(default_factory=dict)


def is_teacher(recipe: Recipe) -> bool:
    """Whether runs of ``recipe`` store their training-set probabilities (the baseline's do)."""
    return recipe.name == TEACHER_RECIPE


def needs_teacher(recipe: Recipe) -> bool:
    return recipe.reg.distill_alpha > 0


def keeps_train_probs(plan, job) -> bool:
    """Whether ``job``'s run stores its training-set probabilities: the baseline's, when the plan distills
    (a study without ``distill`` does not pay for a pass over the training rows and N x K floats per seed)."""
    return is_teacher(job.recipe) and any(needs_teacher(r) for r in plan.recipes)


def check_distillable(recipe: Recipe, task: str = "classification") -> None:
    """Refuse a distilling recipe on a regression (a Recipe that also rewrites the packed targets, mixing or
    smoothing, is refused when it is built: :class:`~regularkit.train.config.Recipe`)."""
    if task != "classification":
        raise RegularkitError(f"recipe {recipe.name!r} distills class probabilities; this study is a {task} "
                              f"(drop {recipe.name!r})")


def check_teacher(recipes: Sequence[Recipe], task: str = "classification") -> None:
    """Refuse, in one line, a study whose distillation cannot have its teacher (the plan's check)."""
    pupils = [r for r in recipes if needs_teacher(r)]
    for r in pupils:
        check_distillable(r, task)
    if pupils and not any(is_teacher(r) for r in recipes):
        names = ",".join([TEACHER_RECIPE, *(r.name for r in recipes)])
        raise RegularkitError(f"recipe {pupils[0].name!r} learns from the {TEACHER_RECIPE}'s seeds, and "
                              f"{TEACHER_RECIPE!r} is not in the study; add it: --recipes {names}")


def average_teacher(probs: Sequence[np.ndarray], n_rows: int, num_classes: int) -> np.ndarray:
    """The mean of the seeds' training-set probabilities (float32, ``n_rows`` x ``num_classes``)."""
    if not probs:
        raise RegularkitError("no baseline seed has training-set probabilities to teach with")
    for p in probs:
        if p.shape != (n_rows, num_classes):
            raise RegularkitError(f"a baseline's training-set probabilities have shape {p.shape}, but this study "
                                  f"trains on {n_rows} rows of {num_classes} classes")
    return np.mean(np.stack(probs).astype(np.float64), axis=0).astype(np.float32)


def first_phase(plan):
    """The plan with the jobs to train before the teacher is loaded: every job that needs no teacher and,
    with ``--tune``, no search (a searched recipe's runs are keyed by the strength it will find)."""
    searched = {r.name for r in plan.recipes if not is_teacher(r)} if plan.cfg.tune else set()
    jobs = {k: j for k, j in plan.jobs.items() if not needs_teacher(j.recipe) and j.recipe.name not in searched}
    return dataclasses.replace(plan, jobs=jobs)


def _missing(plan, records: dict, keys: list[str]) -> str | None:
    """Why the baseline cannot teach yet (None when it can)."""
    left = [f"seed {plan.jobs[k].seed}" for k in keys if k not in records]
    if left:
        return (f"the {TEACHER_RECIPE}'s {', '.join(left)} did not finish (another command may be training them); "
                "rerun the same command when they are done")
    if all(r.get("diverged") for r in records.values()):
        return f"every {TEACHER_RECIPE} seed diverged: there is no teacher"
    return None


def with_teacher(plan, study, store):
    """``(plan, None)`` with the plan's splits carrying the teacher (:class:`TaughtSplits`), or, when the
    baseline cannot teach yet, ``(plan, why)`` with the plan unchanged (:func:`without_pupils` leaves its
    distilling recipes out; a spawned worker keeps the plan: nothing that needs the teacher is queued)."""
    pupils = [r for r in plan.recipes if needs_teacher(r)]
    if not pupils:
        return plan, None
    keys = [k for k, j in plan.jobs.items() if is_teacher(j.recipe)]
    records = ledger.completed(study, set(keys))
    why = _missing(plan, records, keys)
    s = plan.data.splits
    probs, seeds = [], []
    for key in keys if why is None else ():
        record = records[key]
        if record.get("diverged"):
            continue
        p = load_train_probs(store, record)
        if p is None:
            why = (f"the {TEACHER_RECIPE}'s seed {record['seed']} has no training-set probabilities in this artifact "
                   "store (trained before distill was asked for, or on another machine): use --fresh or another --out")
            break
        probs.append(p)
        seeds.append(record["seed"])
    if why is not None:
        return plan, why
    teacher = torch.from_numpy(average_teacher(probs, len(s.y_train), s.num_classes))
    fields = {f.name: getattr(s, f.name) for f in dataclasses.fields(Splits)}
    taught = TaughtSplits(**fields, teacher=teacher,
                          teacher_info={"recipe": TEACHER_RECIPE, "seeds": sorted(seeds), "rows": len(s.y_train)})
    return dataclasses.replace(plan, data=dataclasses.replace(plan.data, splits=taught)), None


def without_pupils(plan, why: str):
    """The plan without the recipes that need the teacher, each left out (``skipped``) with ``why``."""
    names = {r.name for r in plan.recipes if needs_teacher(r)}
    return dataclasses.replace(plan, recipes=[r for r in plan.recipes if r.name not in names],
                               jobs={k: j for k, j in plan.jobs.items() if j.recipe.name not in names},
                               skipped={**plan.skipped, **{n: why for n in names}})


def teacher_rows(splits, recipe: Recipe) -> torch.Tensor:
    """The teacher's probabilities for ``splits.x_train``'s rows; one line when the splits carry none."""
    if not isinstance(splits, TaughtSplits) or splits.teacher is None:
        raise RegularkitError(f"recipe {recipe.name!r} distills from the {TEACHER_RECIPE}'s seeds, and these splits "
                              f"carry no teacher; train it in a study with the {TEACHER_RECIPE} (regularkit study "
                              f"--recipes {TEACHER_RECIPE},{recipe.name})")
    if splits.teacher.shape != (len(splits.y_train), splits.num_classes):
        raise RegularkitError(f"the teacher has shape {tuple(splits.teacher.shape)}, but the training split has "
                              f"{len(splits.y_train)} rows of {splits.num_classes} classes")
    return splits.teacher
