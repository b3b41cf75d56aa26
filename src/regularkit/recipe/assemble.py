"""Turn one Recipe into the parts of a run: model, optimizer, schedule and the loop's hook points.

:func:`assemble` maps a recipe's fields onto the loop's hook points (loss terms,
after-step hooks, batch transforms, callbacks, the training step, the model that is
evaluated).  A field whose hook is a function of the recipe alone carries it in its
metadata (``build=`` in :mod:`regularkit.train.config`: the weight and activity penalties,
the max-norm projection, SAM, R-Drop, AugMix's consistency, gradient clipping) and is
wired here without being named; the composite sites are written out below: the model and
its wrappers, the loss function, the batch transform, the averaging that picks the final
weights, early stopping.  Which fields are image-only is read from the metadata too.
The batch transform's order:
geometric ops (crops, resized crops, the affine warp), then the policies (RandAugment,
TrivialAugment, AutoAugment, AugMix without its consistency loss), then photometric (PCA
colour, blur), then erasing, then Gaussian input noise, then mixing last -- mixing needs
the final pixels of both partners; Manifold MixUp mixes inside the model -- and label
smoothing is decided once (:func:`~regularkit.train.config.smoothing_site`): handed to the
mixing op when there is one (smooth the one-hots, then mix: see :mod:`regularkit.targets`),
otherwise to the training loss, so targets are never smoothed twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from regularkit import augment as A
from regularkit.averaging import EMA, SWA, SnapshotEnsemble
from regularkit.distill import PackedDistillationLoss
from regularkit.errors import RegularkitError
from regularkit.init import class_prior_bias
from regularkit.losses import CrossEntropy
from regularkit.metrics.sparsity import activation_modules, activation_sparsity, weight_sparsity
from regularkit.models import build_model
from regularkit.models.factory import Factory
from regularkit.models.manifold_mixup import ManifoldMixup
from regularkit.noise import DropBlockSchedule
from regularkit.recipe.rules import image_fields
from regularkit.spectral import apply_spectral_norm
from regularkit.train.callbacks import Callback, EarlyStopping
from regularkit.train.config import Recipe, smoothing_site
from regularkit.train.knobs import AFTER_STEP, BATCH, LOSS, STEP, is_on, knob_of, walk
from regularkit.train.loop import default_loss
from regularkit.train.optim import make_optimizer, make_scheduler
from regularkit.train.regression import regression_loss
from regularkit.transfer import find_head

__all__ = ["RunParts", "assemble", "build_batch_transform", "built", "smoothing_site"]


def _pixels(fraction: float, side: int) -> int:
    return max(1, round(fraction * side))


def built(recipe: Recipe, site: str, model: nn.Module) -> list:
    """The hooks of ``site`` built by the fields that carry a builder and are switched on, in field order."""
    return [knob_of(f).build(recipe, model) for _, f, value, _ in walk(recipe)
            if knob_of(f) is not None and knob_of(f).site == site and knob_of(f).build is not None
            and is_on(f, value)]


def build_batch_transform(recipe: Recipe, splits) -> Callable | None:
    """The recipe's batch transform (``None`` when it has no augmentation and no input noise).

    Borders brought in by crops and warps follow the data's declared fill (``Splits.fill``:
    constant 0 for the black backgrounds of digits and Fashion-MNIST, where reflecting would
    mirror strokes and garment edges into the frame) unless the recipe names a padding mode;
    undeclared data get reflect padding for crops and nearest-edge filling for warps.
    """
    a, reg = recipe.augment, recipe.reg
    if not a.active() and reg.input_noise == 0:
        return None
    shape = tuple(splits.input_shape)
    images = image_fields(recipe, sites=(BATCH,))
    if images and len(shape) != 3:
        raise RegularkitError(f"{', '.join(images)} needs images C x H x W, got input shape {shape}")
    ops: list[Any] = []
    if images:
        side = min(shape[1:])
        fill = getattr(splits, "fill", None)
        if a.hflip:
            ops.append(A.HorizontalFlip())
        if a.crop_padding:
            ops.append(A.RandomCrop(padding=_pixels(a.crop_padding, side),
                                    padding_mode=a.padding_mode or fill or "reflect"))
        if a.resized_crop:
            ops.append(A.RandomResizedCrop(scale=(a.resized_crop, 1.0)))
        if a.rotation or a.translate or a.shear or a.zoom:
            ops.append(A.RandomAffine(degrees=a.rotation, translate=a.translate, shear=a.shear,
                                      scale=(1 - a.zoom, 1 + a.zoom), fill_mode=a.padding_mode or fill or "nearest"))
        if a.randaugment:
            ops.append(A.RandAugment(magnitude=a.randaugment))
        if a.trivialaugment:
            ops.append(A.Compose([A.TrivialAugmentWide()], p=a.trivialaugment))
        if a.autoaugment:
            ops.append(A.AutoAugment(policy=a.autoaugment))
        if a.augmix and not a.augmix_jsd:  # with the consistency loss, the step makes the views
            ops.append(A.AugMix(severity=a.augmix))
        if a.pca_colour:
            ops.append(A.PCAColor(std=a.pca_colour).fit(splits.x_train, split="train"))
        if a.blur_sigma:
            ops.append(A.GaussianBlur(3, sigma=(0.1, a.blur_sigma)))
        if a.cutout:
            ops.append(A.Cutout(_pixels(a.cutout, side)))
        if a.erasing:
            ops.append(A.RandomErasing(p=a.erasing))
    if reg.input_noise:
        ops.append(A.RandomGaussianNoise(std=reg.input_noise))
    k = splits.num_classes
    ls = reg.label_smoothing if smoothing_site(recipe) == "mix" else 0.0
    if a.mixup_alpha and a.cutmix_alpha:
        ops.append(A.MixUpCutMix(a.mixup_alpha, a.cutmix_alpha, num_classes=k, label_smoothing=ls))
    elif a.mixup_alpha:
        ops.append(A.MixUp(a.mixup_alpha, num_classes=k, label_smoothing=ls,
                           targets="values" if getattr(splits, "task", None) == "regression" else "classes"))
    elif a.cutmix_alpha:
        ops.append(A.CutMix(a.cutmix_alpha, num_classes=k, label_smoothing=ls))
    return A.Compose(ops) if ops else None  # AugMix with its consistency loss: the step draws the views


@dataclass
class RunParts:
    """Everything ``fit`` needs for one recipe, built but not run."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    epochs: int
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = default_loss
    loss_terms: list = field(default_factory=list)
    after_step: list = field(default_factory=list)
    callbacks: list[Callback] = field(default_factory=list)
    batch_transform: Any = None
    eval_model: Callable[[], nn.Module] | None = None       # evaluated each epoch (EMA's average)
    final_model: Callable[[], nn.Module] | None = None      # evaluated at the end (SWA, snapshots)
    probes: dict[str, Callable[[nn.Module], float]] = field(default_factory=dict)
    step: Any = None                                        # fit's training step (None: the standard one)


def _chain(first: Callable | None, second: Callable | None) -> Callable | None:
    """Two batch transforms in order (either may be None)."""
    if first is None or second is None:
        return first or second

    def both(x, y, generator=None):
        return second(*first(x, y, generator), generator)

    return both


def _add_averaging(parts: RunParts, recipe: Recipe, splits, device: torch.device) -> None:
    reg, model = recipe.reg, parts.model
    if reg.ema_decay is not None:
        ema = EMA(model, decay=reg.ema_decay, buffers="copy")
        parts.after_step.append(ema.update)
        parts.eval_model = lambda: ema.module
    if reg.swa_start is not None:
        start_epoch = int(reg.swa_start * parts.epochs) + 1  # 1-based: the first averaged epoch
        swa = SWA(model, start_epoch=start_epoch, lr=reg.swa_lr or recipe.optim.lr / 2)
        parts.scheduler = swa.scheduler(parts.optimizer, parts.scheduler)
        parts.callbacks.append(swa)
        x_train = splits.train[0]
        # BN statistics recomputed on the training data, batch by batch on the model's device
        parts.final_model = lambda: swa.finalize(b.to(device) for b in x_train.split(256))
    if reg.snapshot_cycles is not None:
        m = reg.snapshot_cycles
        if parts.epochs < m:
            raise RegularkitError(f"snapshot_cycles must be <= epochs ({parts.epochs}), got {m}")
        parts.epochs = (parts.epochs // m) * m  # whole cycles only: each snapshot sits at a cycle minimum
        snap = SnapshotEnsemble(model, cycles=m, epochs_per_cycle=parts.epochs // m, lr_max=recipe.optim.lr)
        parts.scheduler = snap.scheduler(parts.optimizer)
        parts.callbacks.append(snap)
        if splits.task == "regression":  # the mean of the snapshots' outputs
            parts.final_model = lambda: snap.ensemble("logits")
        else:
            parts.final_model = lambda: snap.ensemble(log=True)  # log of mean probabilities works as logits


def assemble(recipe: Recipe, splits, seed: int, *, device: torch.device | str = "cpu",
             factory: Factory | None = None) -> RunParts:
    """The model, optimizer, schedule and hook points of one run of ``recipe`` with ``seed``.

    ``factory``: the user's ``build(input_shape, num_classes)`` when ``recipe.model.kind`` is
    ``"factory"`` (else loaded from the spec the config names); ``device``: where the run trains
    (the model is moved there by ``fit``; batches made here for BN recalibration and probes go there).
    """
    reg = recipe.reg
    device = torch.device(device)
    model = build_model(recipe.model, splits.input_shape, splits.num_classes, seed=seed, factory=factory)
    if recipe.model.output_bias == "prior":
        counts = torch.bincount(splits.y_train, minlength=splits.num_classes)
        class_prior_bias(find_head(model)[1], counts.double())
    if recipe.model.spectral_norm:  # every hidden Linear / Conv; the classifier keeps its scale
        apply_spectral_norm(model, exclude=(find_head(model)[0],))
    alpha_mm = recipe.augment.manifold_mixup_alpha
    if alpha_mm:  # the model trained is the mixing wrapper; evaluation sees the plain model through it
        ls = reg.label_smoothing if smoothing_site(recipe) == "mix" else 0.0
        model = ManifoldMixup(model, alpha_mm, num_classes=splits.num_classes, label_smoothing=ls, seed=seed)
    optimizer = make_optimizer(model, recipe.optim)
    parts = RunParts(model=model, optimizer=optimizer, scheduler=make_scheduler(optimizer, recipe.optim),
                     epochs=recipe.optim.epochs)
    parts.batch_transform = _chain(build_batch_transform(recipe, splits),
                                   model.batch_transform if alpha_mm else None)
    if splits.task == "regression":  # standardized targets N x k; MixUp mixes them as it mixes soft targets
        parts.loss_fn = regression_loss(splits.regression.loss)
    elif reg.distill_alpha:  # each row's teacher travels packed with its label (study/run/teacher.py, distill.py)
        parts.loss_fn = PackedDistillationLoss(reg.distill_temperature, reg.distill_alpha)
    elif smoothing_site(recipe) == "loss" or reg.confidence_penalty:
        ls = reg.label_smoothing if smoothing_site(recipe) == "loss" else 0.0
        parts.loss_fn = CrossEntropy(label_smoothing=ls, confidence_penalty=reg.confidence_penalty)
    # SAM, R-Drop, AugMix's consistency or clipping (at most one: Recipe refuses two); None: the standard step
    parts.step = next(iter(built(recipe, STEP, model)), None)
    parts.loss_terms += built(recipe, LOSS, model)  # L2, L1, the activity penalty
    parts.after_step += built(recipe, AFTER_STEP, model)  # the max-norm projection
    if recipe.model.drop_block:  # the paper's linear ramp of the drop rate from 0 over the whole run
        steps = -(-int(splits.train[0].shape[0]) // recipe.optim.batch_size) * recipe.optim.epochs
        parts.after_step.append(DropBlockSchedule(model, ramp_steps=steps))
    es = reg.early_stopping
    if es is not None:
        parts.callbacks.append(EarlyStopping(
            monitor=es.monitor, mode=es.mode, patience=es.patience, min_delta=es.min_delta,
            restore_best_weights=es.restore_best_weights, start_from_epoch=es.start_from_epoch,
            baseline=es.baseline))
    _add_averaging(parts, recipe, splits, device)
    parts.probes["weight_sparsity"] = weight_sparsity
    if activation_modules(model):
        x_val = splits.val[0]
        parts.probes["activation_sparsity"] = lambda m: activation_sparsity(m, x_val.to(device))
    return parts
