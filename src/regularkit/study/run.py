"""Turn one Recipe into a trained model and a run record.

``assemble`` is the only place that knows how each recipe field maps onto the
loop's hook points (loss terms, after-step projections, batch transforms,
callbacks); ``run_recipe`` trains and measures.  Nothing here looks at the
test split except to record it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from regularkit.config import to_dict
from regularkit.metrics import activation_modules, activation_sparsity
from regularkit.models import build_model
from regularkit.study.summary import gap
from regularkit.train.callbacks import Callback, EarlyStopping
from regularkit.train.config import Recipe
from regularkit.train.loop import evaluate, fit
from regularkit.train.optim import make_optimizer, make_scheduler

# Per-epoch train curves are measured on at most this many training examples
# (the final train error uses all of them).
CURVE_TRAIN_EXAMPLES = 10_000


@dataclass
class RunParts:
    """Everything ``fit`` needs for one recipe, built but not run."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    eval_loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    loss_terms: list = field(default_factory=list)
    after_step: list = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    batch_transform: Any = None
    probes: dict[str, Callable[[nn.Module], float]] = field(default_factory=dict)


def assemble(recipe: Recipe, splits, seed: int) -> RunParts:
    reg = recipe.reg
    model = build_model(recipe.model, splits.input_shape, splits.num_classes, seed=seed)
    if recipe.model.output_bias == "prior":
        from regularkit.init import class_prior_bias
        counts = torch.bincount(splits.y_train, minlength=splits.num_classes)
        class_prior_bias(model.head, counts.double())
    optimizer = make_optimizer(model, recipe.optim)
    scheduler = make_scheduler(optimizer, recipe.optim)

    def eval_loss(logits, y):
        return F.cross_entropy(logits, y)

    loss_fn = eval_loss
    if reg.label_smoothing > 0:
        from regularkit.losses import cross_entropy
        alpha = reg.label_smoothing

        def loss_fn(logits, y):  # noqa: F811 - the smoothed loss for training only
            return cross_entropy(logits, y, label_smoothing=alpha)

    parts = RunParts(model=model, optimizer=optimizer, scheduler=scheduler, loss_fn=loss_fn,
                     eval_loss_fn=eval_loss)
    if reg.l2 > 0:
        from regularkit.penalties import L2
        # (lambda/2) * sum(w^2): gradient lambda * w, the same number as SGD's weight_decay.
        parts.loss_terms.append(L2(reg.l2, convention="half"))
    if reg.l1 > 0:
        from regularkit.penalties import L1
        parts.loss_terms.append(L1(reg.l1))
    if reg.l1 > 0 or reg.l2 > 0 or recipe.model.init is not None:
        from regularkit.penalties import weight_sparsity
        parts.probes["weight_sparsity"] = weight_sparsity
    if reg.activity_l1 > 0:
        from regularkit.penalties import ActivityPenalty
        # "mean" divides by the batch size, so the strength does not depend on it.
        parts.loss_terms.append(ActivityPenalty(activation_modules(model), l1=reg.activity_l1, reduction="mean"))
        x_val = splits.val[0]
        parts.probes["activation_sparsity"] = lambda m: activation_sparsity(m, x_val)
    if reg.max_norm is not None:
        from regularkit.constraints import MaxNorm, Projector
        parts.after_step.append(Projector(MaxNorm(reg.max_norm)))
    if reg.input_noise > 0:
        from regularkit.noise import gaussian_noise
        std = reg.input_noise

        def add_noise(x, y, generator):
            return gaussian_noise(x, std, training=True, generator=generator), y

        parts.batch_transform = add_noise
    es = reg.early_stopping
    if es is not None:
        parts.callbacks.append(EarlyStopping(
            monitor=es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights, start_from_epoch=es.start_from_epoch,
            baseline=es.baseline))
    return parts


def run_recipe(recipe: Recipe, splits, seed: int, *, on_epoch=None) -> dict[str, Any]:
    """Train ``recipe`` with ``seed`` and return its record (JSON-ready)."""
    parts = assemble(recipe, splits, seed)
    x_tr, y_tr = splits.train
    n_curve = min(CURVE_TRAIN_EXAMPLES, x_tr.shape[0])
    eval_sets = {"train": (x_tr[:n_curve], y_tr[:n_curve]), "val": splits.val, "test": splits.test}
    history = fit(parts.model, (x_tr, y_tr), optimizer=parts.optimizer, scheduler=parts.scheduler,
                  epochs=recipe.optim.epochs, batch_size=recipe.optim.batch_size, eval_sets=eval_sets,
                  loss_fn=parts.loss_fn, batch_transform=parts.batch_transform, loss_terms=parts.loss_terms,
                  after_step=parts.after_step, callbacks=parts.callbacks, seed=seed, on_epoch=on_epoch)
    final: dict[str, float] = {}
    for name, (x, y) in {"train": (x_tr, y_tr), "val": splits.val, "test": splits.test}.items():
        final[f"{name}_loss"], final[f"{name}_error"] = evaluate(parts.model, x, y, loss_fn=parts.eval_loss_fn)
    final["gap"] = gap(final["train_error"], final["test_error"])
    extra: dict[str, float] = {"epochs_run": len(history.epochs)}
    for name, probe in parts.probes.items():
        extra[name] = float(probe(parts.model))
    restored = next((cb.restored_epoch for cb in parts.callbacks if isinstance(cb, EarlyStopping)), None)
    return {
        "recipe": recipe.name, "description": recipe.description, "seed": seed,
        "final": final, "extra": extra, "history": history.epochs,
        "stop_reason": history.stop_reason, "restored_epoch": restored,
        "seconds": history.seconds, "recipe_config": to_dict(recipe),
    }
