"""``--vectorize-seeds``: a recipe's seeds trained together as one model, one run record per seed.

:func:`train_seeds` assembles each seed's run exactly as :func:`~regularkit.study.run.execute.run_recipe`
does, trains them with :func:`regularkit.train.stacked.fit_stacked` (one graph, one backward, one
optimizer step for every seed; each seed's own module, data order, augmentation draws and dropout
masks) and measures each as ``run_recipe`` does.  A seed trained so equals its sequential run bit
for bit (each seed's kernels are its own: tests/study/run/test_vectorize.py compares the records), so
its run key is the sequential run's: a resume may mix the two and nothing changes.

Which recipes' seeds train together (:func:`sequential_reason` names why one does not, for the
plan's message; those train one seed after another, as before), per feature:

=================================  =============================================================
together                           every model (MLP, CNN, ResNet, a user's factory), batch norm
                                   (each seed's own statistics), dropout of every kind,
                                   DropConnect, DropPath, DropBlock, spectral norm, init, L2 / L1
                                   / elastic net, activity penalties, weight decay (SGD, AdamW),
                                   max-norm, label smoothing, confidence penalty, early stopping,
                                   EMA (each seed's average, evaluated as its own), input noise,
                                   every batch augmentation, MixUp / CutMix / Manifold MixUp,
                                   TTA (measured per seed after training), bf16
one seed at a time (said)          SAM, ASAM, R-Drop, AugMix's consistency, gradient clipping (a
                                   training step of their own); SWA and snapshot ensembles (they
                                   rewrite the learning-rate schedule and build a final model per
                                   seed); fp16 (a loss scaler per seed); regression (measured in
                                   units); distillation (the teacher's rows packed with the labels);
                                   streamed data; one seed
=================================  =============================================================

Records: the same fields and format as ``run_recipe``'s; ``seconds`` and each epoch's
``train_seconds`` are the seed's share of the group's time.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.models.factory import Factory
from regularkit.study.assemble import RunParts, assemble
from regularkit.study.run.execute import CURVE_TRAIN_EXAMPLES, measure_run
from regularkit.train.callbacks import EarlyStopping
from regularkit.train.config import Recipe
from regularkit.train.loop import History
from regularkit.train.optim import make_optimizer, make_scheduler
from regularkit.train.stacked import SeedRun, fit_stacked

__all__ = ["parts_reason", "sequential_reason", "stacking", "train_seeds"]

def parts_reason(parts: RunParts) -> str | None:
    """Why an assembled run cannot train in a group of seeds (None when it can)."""
    if parts.step is not None:
        return f"its training step ({type(parts.step).__name__}) is its own"
    if parts.final_model is not None:
        return "it rewrites the learning-rate schedule and builds a final model per seed (SWA, snapshots)"
    if other := [type(c).__name__ for c in parts.callbacks if type(c) is not EarlyStopping]:
        return f"the {other[0]} callback acts on one model"
    return None


def sequential_reason(recipe: Recipe, splits, *, seeds: int, precision: str = "fp32",
                      factory: Callable | None = None) -> str | None:
    """Why ``recipe``'s seeds train one after another (None: together); said in the plan."""
    if seeds < 2:
        return "one seed"
    if precision == "fp16":
        return "fp16 scales each seed's loss (GradScaler)"
    if splits.task == "regression":
        return "a regression is measured in units"
    if getattr(recipe.reg, "distill_alpha", 0):
        return "distillation packs the teacher's rows with the labels"
    if not isinstance(splits.train[0], torch.Tensor):
        return "its data are streamed batch by batch"
    # decided on what would be trained: seed 0's parts, built on the CPU
    return parts_reason(assemble(recipe, splits, 0, factory=factory))


def stacking(recipes: Sequence[Recipe], splits, *, enabled: bool, seeds: int, precision: str = "fp32",
             factory: Callable | None = None) -> tuple[dict[str, bool], str]:
    """Recipe name -> whether its seeds train together, and the plan's sentence saying which and why not.

    The run keys do not change (a seed's numbers do not); the worker groups a recipe's seeds.
    """
    if not enabled:
        return {r.name: False for r in recipes}, "seeds: one at a time (--no-vectorize-seeds)"
    why = {r.name: sequential_reason(r, splits, seeds=seeds, precision=precision, factory=factory) for r in recipes}
    together = [name for name, reason in why.items() if reason is None]
    alone = [f"{name} ({reason})" for name, reason in why.items() if reason is not None]
    said = [f"trained together per recipe: {', '.join(together)}"] if together else []
    said += [f"one at a time: {'; '.join(alone)}"] if alone else []
    return {name: reason is None for name, reason in why.items()}, "seeds " + "; ".join(said)


def train_seeds(recipe: Recipe, splits, seeds: Sequence[int], *, device: torch.device | str = "cpu",
                precision: str = "fp32", factory: Factory | None = None,
                on_epoch: Callable[[int, dict], None] | None = None, train_probs: bool = False) -> list[dict[str, Any]]:
    """Train ``recipe`` with every seed of ``seeds`` together; their records, in order.

    Each record is what ``run_recipe(recipe, splits, seed, factory=factory, train_probs=train_probs)``
    returns for that seed (with ``test_probs``), the same numbers; ``on_epoch(seed, metrics)``
    after each seed's epoch.
    """
    device = torch.device(device)
    parts = [assemble(recipe, splits, s, device=device, factory=factory) for s in seeds]
    for p in parts:
        if (why := parts_reason(p)) is not None:
            raise RegularkitError(f"recipe {recipe.name!r} cannot train its seeds together: {why}")
    optimizer = make_optimizer(nn.ModuleList([p.model for p in parts]), recipe.optim)
    for group in optimizer.param_groups:  # one multi-tensor update over every seed's parameters (same arithmetic)
        group["foreach"] = True
    x_tr, y_tr = splits.train
    n_curve = min(CURVE_TRAIN_EXAMPLES, x_tr.shape[0])
    runs = [SeedRun(p.model, s, loss_fn=p.loss_fn, batch_transform=p.batch_transform, loss_terms=p.loss_terms,
                    after_step=p.after_step, callbacks=p.callbacks, eval_model=p.eval_model,
                    on_epoch=None if on_epoch is None else (lambda m, s=s: on_epoch(s, m)))
            for p, s in zip(parts, seeds)]
    histories = fit_stacked(runs, (x_tr, y_tr), optimizer=optimizer, scheduler=make_scheduler(optimizer, recipe.optim),
                            epochs=parts[0].epochs, batch_size=recipe.optim.batch_size,
                            eval_sets={"train": (x_tr[:n_curve], y_tr[:n_curve]), "val": splits.val,
                                       "test": splits.test},
                            device=device, precision=precision,
                            channels_last=device.type == "cuda" and len(splits.input_shape) == 3)
    return [_record(recipe, splits, s, p, h, device=device, precision=precision, train_probs=train_probs)
            for s, p, h in zip(seeds, parts, histories)]


def _record(recipe: Recipe, splits, seed: int, parts: RunParts, history: History, *, device: torch.device,
            precision: str, train_probs: bool = False) -> dict[str, Any]:
    """The run record of one seed trained in a group: the one :func:`~regularkit.study.run.execute.measure_run`
    makes for a run trained alone (a grouped recipe has no final model of its own: see :func:`parts_reason`)."""
    return measure_run(recipe, splits, seed, parts, history, device=device, precision=precision,
                       train_probs=train_probs)
