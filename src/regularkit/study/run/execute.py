"""Train one assembled recipe with one seed and measure it: the run record.

The record states what regularizes the model as trained (``model_regularization``: every
dropout, DropConnect and DropPath rate after the recipe's knobs, and the normalization layers),
so a user factory's own ``nn.Dropout(0.2)`` is recorded where it stays; the baseline of a factory
with its own regularization is described as "your model as built, with ..." instead of "no
regularization".

Every split is measured by :func:`regularkit.train.loop.evaluate` (plain
cross-entropy on hard labels, whatever the training loss).  The test split is
only recorded, never used for a choice; ``with_test=False`` (a search trial)
does not touch it at all.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from regularkit.augment.tta import TTA
from regularkit.config import to_dict
from regularkit.distill import pack_targets
from regularkit.metrics.calibration import expected_calibration_error
from regularkit.metrics.summary import gap
from regularkit.models.adapt import as_built_note, regularization_in
from regularkit.models.factory import Factory
from regularkit.study.assemble import assemble
from regularkit.study.run.regression_run import regression_final, target_scale
from regularkit.study.run.teacher import is_teacher, needs_teacher, teacher_rows
from regularkit.train.callbacks import EarlyStopping
from regularkit.train.config import Recipe
from regularkit.train.device import Precision
from regularkit.train.loop import evaluate, fit
from regularkit.train.regression import predict

__all__ = ["CURVE_TRAIN_EXAMPLES", "predict_proba", "run_recipe"]

# Per-epoch train curves are measured on at most this many training examples
# (the final train error uses all of them).
CURVE_TRAIN_EXAMPLES = 10_000


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1024, *,
                  device: torch.device | str | None = None, precision: Precision | None = None) -> torch.Tensor:
    """Softmax probabilities (float32, on the CPU) of ``model`` in eval mode, batch by batch."""
    return F.softmax(predict(model, x, batch_size=batch_size, device=device, precision=precision), dim=1)


def _environment() -> dict[str, Any]:
    """Recorded with every run: the numbers may depend on these, the key does not."""
    return {"torch_threads": torch.get_num_threads(), "torch": torch.__version__}


def run_recipe(recipe: Recipe, splits, seed: int, *, on_epoch=None, callbacks=(), with_test: bool = True,
               device: torch.device | str = "cpu", precision: str = "fp32", factory: Factory | None = None,
               abandoned: Callable[[], bool] = lambda: False, train_probs: bool = False) -> dict[str, Any]:
    """Train ``recipe`` with ``seed`` and return its record (JSON-ready) plus ``test_probs`` (a tensor).

    ``with_test=False`` (a search trial) never touches the test split: no test curve, no test metrics.
    ``callbacks`` are added to the recipe's own (a search's pruner).  A run that diverges (a
    non-finite or exploding loss: see :func:`regularkit.train.loop.fit`) is recorded as such, with
    no final metrics: an error rate computed from NaN outputs would be a number that means nothing.
    ``abandoned()`` true after training (a search trial its pruner stopped) skips the final model and
    metrics too: nobody reads them, and a final model may not exist yet (SWA stopped before it started).

    Distillation (issue 22): a recipe with ``reg.distill_alpha`` trains on ``splits.teacher``
    (:class:`~regularkit.study.run.teacher.TaughtSplits`), packed with the labels so each row's teacher moves with
    it through ``fit``'s shuffling (:func:`regularkit.distill.pack_targets`); ``train_probs=True`` returns the
    baseline's probabilities on the training rows as ``train_probs`` (the teacher's material).
    """
    device = torch.device(device)
    parts = assemble(recipe, splits, seed, device=device, factory=factory)
    x_tr, y_tr = splits.train
    y_fit = pack_targets(y_tr, teacher_rows(splits, recipe)) if needs_teacher(recipe) else y_tr  # issue 22
    n_curve = min(CURVE_TRAIN_EXAMPLES, x_tr.shape[0])
    eval_sets = {"train": (x_tr[:n_curve], y_tr[:n_curve]), "val": splits.val}
    if with_test:
        eval_sets["test"] = splits.test
    history = fit(parts.model, (x_tr, y_fit), optimizer=parts.optimizer, scheduler=parts.scheduler,
                  epochs=parts.epochs, batch_size=recipe.optim.batch_size, eval_sets=eval_sets,
                  loss_fn=parts.loss_fn, batch_transform=parts.batch_transform, loss_terms=parts.loss_terms,
                  after_step=parts.after_step, callbacks=[*parts.callbacks, *callbacks],
                  eval_model=parts.eval_model, seed=seed, on_epoch=on_epoch, device=device, precision=precision,
                  step=parts.step, channels_last=device.type == "cuda" and len(splits.input_shape) == 3,
                  target_scale=target_scale(splits))
    return measure_run(recipe, splits, seed, parts, history, device=device, precision=precision, with_test=with_test,
                       abandoned=abandoned, train_probs=train_probs)


def measure_run(recipe: Recipe, splits, seed: int, parts, history, *, device: torch.device, precision: str,
                with_test: bool = True, abandoned: Callable[[], bool] = lambda: False,
                train_probs: bool = False) -> dict[str, Any]:
    """The record of a trained run: its final metrics on every split, probes, calibration, TTA, the test
    (and, for a teacher, training) probabilities. :func:`run_recipe` ends with it, and so does every seed
    of a group trained together (study/run/vectorize.py), so their records agree field for field."""
    amp = Precision(precision, device.type)
    x_tr, y_tr = splits.train
    final_sets = {"train": (x_tr, y_tr), "val": splits.val}
    if with_test:
        final_sets["test"] = splits.test
    description = recipe.description
    if recipe.model.kind == "factory" and recipe.name == "baseline" and (note := as_built_note(parts.model)):
        description = f"your model as built, with {note} (no regularization added)"
    record = {"recipe": recipe.name, "description": description, "seed": seed, "final": {},
              "model_regularization": regularization_in(parts.model),
              "extra": {"epochs_run": len(history.epochs)}, "history": history.epochs,
              "stop_reason": history.stop_reason, "seconds": history.seconds, "recipe_config": to_dict(recipe),
              "diverged": history.diverged, "environment": _environment()}
    if needs_teacher(recipe):  # issue 22: which teacher this run learned from
        record["teacher"] = {**splits.teacher_info, "alpha": recipe.reg.distill_alpha,
                             "temperature": recipe.reg.distill_temperature}
    if history.diverged is not None or abandoned():
        record["test_probs"] = None
        return record
    final_model = (parts.final_model or parts.eval_model or (lambda: parts.model))()
    final, extra = record["final"], record["extra"]
    for name, (x, y) in final_sets.items():
        final[f"{name}_loss"], final[f"{name}_error"] = evaluate(final_model, x, y, device=device, precision=amp,
                                                                 target_scale=target_scale(splits))
    for name, probe in parts.probes.items():
        extra[name] = float(probe(parts.model))
    if splits.regression is not None:  # RMSE, MAE, R² per split in units; test predictions for the ensemble
        more, test_pred = regression_final(final_model, splits, device=device, precision=amp, with_test=with_test)
        extra.update(more)
        record["task"] = "regression"
    if not with_test:
        return record
    final["gap"] = gap(final["train_error"], final["test_error"])
    if splits.regression is not None:
        record["restored_epoch"] = next(
            (cb.restored_epoch for cb in parts.callbacks if isinstance(cb, EarlyStopping)), None)
        record["test_probs"] = test_pred
        return record
    test_probs = predict_proba(final_model, splits.test[0], device=device, precision=amp)
    if train_probs and is_teacher(recipe):  # issue 22: the teacher's material, training rows in order
        record["train_probs"] = predict_proba(final_model, x_tr, device=device, precision=amp)
    extra["ece"] = expected_calibration_error(test_probs, splits.test[1])
    if recipe.augment.tta is not None:
        tta_model = TTA(final_model, transforms=recipe.augment.tta, average="logits")
        extra["tta_test_error"] = evaluate(tta_model, *splits.test, device=device, precision=amp)[1]
    record["restored_epoch"] = next(
        (cb.restored_epoch for cb in parts.callbacks if isinstance(cb, EarlyStopping)), None)
    record["test_probs"] = test_probs
    return record
