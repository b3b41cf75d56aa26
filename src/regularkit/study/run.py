"""Turn one Recipe into a trained model and a run record.

``assemble`` is the only place that knows how each recipe field maps onto the
loop's hook points (loss terms, after-step projections, batch transforms,
callbacks, the model that is evaluated); ``run_recipe`` trains and measures.
Nothing here looks at the test split except to record it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from regularkit.config import to_dict
from regularkit.errors import RegularkitError
from regularkit.metrics import activation_modules, activation_sparsity
from regularkit.models import build_model
from regularkit.study.augmentation import build_batch_transform
from regularkit.study.summary import gap
from regularkit.train.callbacks import Callback, EarlyStopping
from regularkit.train.config import Recipe
from regularkit.train.loop import evaluate, fit
from regularkit.train.optim import make_optimizer, make_scheduler

# Per-epoch train curves are measured on at most this many training examples
# (the final train error uses all of them).
CURVE_TRAIN_EXAMPLES = 10_000


def eval_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss every split is measured with: plain cross-entropy, whatever the training loss."""
    return F.cross_entropy(logits, y)


@dataclass
class RunParts:
    """Everything ``fit`` needs for one recipe, built but not run."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    epochs: int
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = eval_loss
    loss_terms: list = field(default_factory=list)
    after_step: list = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    batch_transform: Any = None
    eval_model: Callable[[], nn.Module] | None = None       # evaluated each epoch (EMA's average)
    final_model: Callable[[], nn.Module] | None = None      # evaluated at the end (SWA, snapshots)
    probes: dict[str, Callable[[nn.Module], float]] = field(default_factory=dict)


def _add_averaging(parts: RunParts, recipe: Recipe, splits) -> None:
    reg, model = recipe.reg, parts.model
    if reg.ema_decay is not None:
        from regularkit.averaging import EMA
        ema = EMA(model, decay=reg.ema_decay, buffers="copy")
        parts.after_step.append(ema.update)
        parts.eval_model = lambda: ema.module
    if reg.swa_start is not None:
        from regularkit.averaging import SWA
        start_epoch = int(reg.swa_start * parts.epochs) + 1  # 1-based: the first averaged epoch
        swa = SWA(model, start_epoch=start_epoch, lr=reg.swa_lr or recipe.optim.lr / 2)
        parts.scheduler = swa.scheduler(parts.optimizer, parts.scheduler)
        parts.callbacks.append(swa)
        x_train = splits.train[0]
        parts.final_model = lambda: swa.finalize(x_train.split(256))  # BN statistics recomputed on train data
    if reg.snapshot_cycles is not None:
        from regularkit.averaging import SnapshotEnsemble
        m = reg.snapshot_cycles
        if parts.epochs < m:
            raise RegularkitError(f"snapshot_cycles must be <= epochs ({parts.epochs}), got {m}")
        parts.epochs = (parts.epochs // m) * m  # whole cycles only: each snapshot sits at a cycle minimum
        snap = SnapshotEnsemble(model, cycles=m, epochs_per_cycle=parts.epochs // m, lr_max=recipe.optim.lr)
        parts.scheduler = snap.scheduler(parts.optimizer)
        parts.callbacks.append(snap)
        parts.final_model = lambda: snap.ensemble(log=True)  # log of mean probabilities works as logits


def assemble(recipe: Recipe, splits, seed: int) -> RunParts:
    reg = recipe.reg
    model = build_model(recipe.model, splits.input_shape, splits.num_classes, seed=seed)
    if recipe.model.output_bias == "prior":
        from regularkit.init import class_prior_bias
        counts = torch.bincount(splits.y_train, minlength=splits.num_classes)
        class_prior_bias(model.head, counts.double())
    optimizer = make_optimizer(model, recipe.optim)
    parts = RunParts(model=model, optimizer=optimizer, scheduler=make_scheduler(optimizer, recipe.optim),
                     epochs=recipe.optim.epochs)
    parts.batch_transform, mixing_smooths = build_batch_transform(recipe, splits)
    if reg.label_smoothing > 0 and not mixing_smooths:
        from regularkit.losses import cross_entropy
        alpha = reg.label_smoothing
        parts.loss_fn = lambda logits, y: cross_entropy(logits, y, label_smoothing=alpha)
    if reg.l2 > 0:
        from regularkit.penalties import L2
        # (lambda/2) * sum(w^2): gradient lambda * w, the same number as SGD's weight_decay.
        parts.loss_terms.append(L2(reg.l2, convention="half"))
    if reg.l1 > 0:
        from regularkit.penalties import L1
        parts.loss_terms.append(L1(reg.l1))
    if reg.activity_l1 > 0:
        from regularkit.penalties import ActivityPenalty
        # "mean" divides by the batch size, so the strength does not depend on it.
        parts.loss_terms.append(ActivityPenalty(activation_modules(model), l1=reg.activity_l1, reduction="mean"))
    if reg.max_norm is not None:
        from regularkit.constraints import MaxNorm, Projector
        parts.after_step.append(Projector(MaxNorm(reg.max_norm)))
    es = reg.early_stopping
    if es is not None:
        parts.callbacks.append(EarlyStopping(
            monitor=es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights, start_from_epoch=es.start_from_epoch,
            baseline=es.baseline))
    _add_averaging(parts, recipe, splits)
    from regularkit.penalties import weight_sparsity
    parts.probes["weight_sparsity"] = weight_sparsity
    x_val = splits.val[0]
    parts.probes["activation_sparsity"] = lambda m: activation_sparsity(m, x_val)
    return parts


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    was = model.training
    model.eval()
    try:
        return torch.cat([F.softmax(model(x[i:i + batch_size]), dim=1) for i in range(0, x.shape[0], batch_size)])
    finally:
        model.train(was)


def run_recipe(recipe: Recipe, splits, seed: int, *, on_epoch=None, callbacks=(),
               with_test: bool = True) -> dict[str, Any]:
    """Train ``recipe`` with ``seed`` and return its record (JSON-ready) plus ``test_probs`` (a tensor).

    ``with_test=False`` (a search trial) never touches the test split: no test curve, no test metrics.
    ``callbacks`` are added to the recipe's own (a search's pruner).
    """
    from regularkit.calibration import expected_calibration_error
    parts = assemble(recipe, splits, seed)
    x_tr, y_tr = splits.train
    n_curve = min(CURVE_TRAIN_EXAMPLES, x_tr.shape[0])
    eval_sets = {"train": (x_tr[:n_curve], y_tr[:n_curve]), "val": splits.val}
    final_sets = {"train": (x_tr, y_tr), "val": splits.val}
    if with_test:
        eval_sets["test"] = final_sets["test"] = splits.test
    history = fit(parts.model, (x_tr, y_tr), optimizer=parts.optimizer, scheduler=parts.scheduler,
                  epochs=parts.epochs, batch_size=recipe.optim.batch_size, eval_sets=eval_sets,
                  loss_fn=parts.loss_fn, batch_transform=parts.batch_transform, loss_terms=parts.loss_terms,
                  after_step=parts.after_step, callbacks=[*parts.callbacks, *callbacks],
                  eval_model=parts.eval_model, seed=seed, on_epoch=on_epoch)
    final_model = (parts.final_model or parts.eval_model or (lambda: parts.model))()
    final: dict[str, float] = {}
    for name, (x, y) in final_sets.items():
        final[f"{name}_loss"], final[f"{name}_error"] = evaluate(final_model, x, y, loss_fn=eval_loss)
    extra: dict[str, float] = {"epochs_run": len(history.epochs)}
    for name, probe in parts.probes.items():
        extra[name] = float(probe(parts.model))
    record = {"recipe": recipe.name, "description": recipe.description, "seed": seed, "final": final,
              "extra": extra, "history": history.epochs, "stop_reason": history.stop_reason,
              "seconds": history.seconds, "recipe_config": to_dict(recipe)}
    if not with_test:
        return record
    final["gap"] = gap(final["train_error"], final["test_error"])
    test_probs = predict_proba(final_model, splits.test[0])
    extra["ece"] = expected_calibration_error(test_probs, splits.test[1])
    if recipe.augment.tta is not None:
        from regularkit.tta import TTA
        tta_model = TTA(final_model, transforms=recipe.augment.tta, average="logits")
        extra["tta_test_error"] = evaluate(tta_model, *splits.test, loss_fn=eval_loss)[1]
    record["restored_epoch"] = next(
        (cb.restored_epoch for cb in parts.callbacks if isinstance(cb, EarlyStopping)), None)
    record["test_probs"] = test_probs
    return record
