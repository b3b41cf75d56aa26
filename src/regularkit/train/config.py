"""The recipe: what to build and how to train it, as frozen dataclasses.

A :class:`Recipe` is the unit the study runs (once per seed).  Every field is
validated on construction, so a bad value fails at once with a message that
names it (``weight_decay must be >= 0, got -1.0``), before any training.
Types are strict: a boolean field takes ``True`` / ``False`` only (``"false"``
is refused, never read as true), a number field refuses strings and booleans,
a tuple field takes a tuple (or list, stored as a tuple) of integers.
Recipes round-trip through :func:`regularkit.config.to_dict` / ``from_dict``
and TOML, and are saved next to every result.

Every field says what it does on the field itself (:func:`regularkit.train.knobs.knob`): where it
acts, whether it is image-only, how it applies to a user's model, what it means on a regression
task, and -- for a loss term, an after-step hook or a training step -- the hook it builds.  The
catalog room (:mod:`regularkit.recipe`) reads the wiring and the applicability rules from it, and
tests/recipe/test_conformance.py fails for a field whose example changes nothing in the assembled run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from regularkit._util.checks import (
    a_or_an,
    check_bool,
    check_choice,
    check_in_range,
    check_instance,
    check_int,
    check_monitor,
    check_non_negative,
    check_optional_number,
    check_positive,
    check_rate,
    check_str,
)
from regularkit.augment.augmix import AugMix
from regularkit.constraints import MaxNorm, Projector
from regularkit.errors import RegularkitError
from regularkit.metrics.sparsity import activation_modules
from regularkit.penalties import L1, L2, ActivityPenalty
from regularkit.train.augmix_step import AugMixJSD
from regularkit.train.knobs import (
    ADAPT,
    AFTER_STEP,
    BATCH,
    CALLBACK,
    EVALUATION,
    IDENTITY,
    LOSS,
    MODEL,
    OPTIMIZER,
    STEP,
    builders,
    is_on,
    knob,
    knob_of,
)
from regularkit.train.model_config import ACTIVATIONS, MODEL_KINDS, ModelConfig
from regularkit.train.rdrop import RDrop
from regularkit.train.sam import SAM
from regularkit.train.step import StandardStep

__all__ = ["ACTIVATIONS", "MODEL_KINDS", "ModelConfig", "OptimConfig", "EarlyStoppingConfig", "RegConfig",
           "AugmentConfig", "Recipe", "smoothing_site"]

# Why a knob means nothing on a regression task (regularkit.recipe.rules.regression_reason).
_SMOOTHING = "label smoothing softens class targets and a regression target is a number, not a class"
_CUTMIX = "CutMix mixes class labels by pasted area; a regression target is a number (MixUp mixes numbers)"
_TTA = "test-time augmentation averages predictions over image flips and crops, and this task has none"
_CONFIDENCE = "the confidence penalty rewards the entropy of class probabilities; a regression output has none"
_DISTILL = "distillation matches the baseline's class probabilities; a regression output has none"
_RDROP = "R-Drop keeps two passes' class distributions close (a KL of softmaxes); a regression output has none"
_AUGMIX_JSD = "AugMix's consistency is a Jensen-Shannon divergence of class distributions; use augmix without it"
_MANIFOLD = "Manifold MixUp here mixes one-hot class targets; a regression target is a number"
_ES = {"reg.early_stopping": {"patience": 5}}  # what an early-stopping field needs to act


def smoothing_site(recipe: Recipe) -> str | None:
    """Where label smoothing happens, decided once: ``"mix"`` (the mixing op encodes smoothed
    one-hots), ``"loss"`` (the training loss smooths), or ``None`` (no smoothing)."""
    a = recipe.augment
    if recipe.reg.label_smoothing == 0:
        return None
    return "mix" if a.mixup_alpha or a.cutmix_alpha or a.manifold_mixup_alpha else "loss"


def _loss_smoothing(recipe: Recipe) -> float:
    return recipe.reg.label_smoothing if smoothing_site(recipe) == "loss" else 0.0


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and schedule. ``weight_decay`` is decoupled (AdamW-style), weights only."""

    optimizer: str = knob("sgd", OPTIMIZER, example="adamw")  # sgd | adamw
    lr: float = knob(0.05, OPTIMIZER, example=0.01)
    momentum: float = knob(0.9, OPTIMIZER, example=0.5)
    weight_decay: float = knob(0.0, OPTIMIZER, example=1e-3)
    schedule: str = knob("constant", OPTIMIZER, example="cosine")  # constant | step | cosine
    step_size: int = knob(10, OPTIMIZER, example=3, needs={"optim.schedule": "step"})  # epochs between decays
    gamma: float = knob(0.1, OPTIMIZER, example=0.5, needs={"optim.schedule": "step"})  # step decay factor
    epochs: int = knob(30, OPTIMIZER, example=7)
    # the loop reads it; in the assembled run it shows in DropBlock's ramp (steps = batches x epochs)
    batch_size: int = knob(64, OPTIMIZER, example=16, needs={"model.kind": "cnn", "model.drop_block": 0.1})

    def __post_init__(self):
        check_choice("optimizer", self.optimizer, ("sgd", "adamw"))
        check_positive("lr", self.lr)
        check_non_negative("momentum", self.momentum)
        check_non_negative("weight_decay", self.weight_decay)
        check_choice("schedule", self.schedule, ("constant", "step", "cosine"))
        check_int("step_size", self.step_size, minimum=1)
        check_positive("gamma", self.gamma)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    monitor: str = knob("val_loss", CALLBACK, example="val_error", needs=_ES)
    mode: str = knob("min", CALLBACK, example="max", needs=_ES)
    patience: int = knob(5, CALLBACK, example=9, needs=_ES)
    min_delta: float = knob(0.0, CALLBACK, example=0.01, needs=_ES)
    start_from_epoch: int = knob(0, CALLBACK, example=2, needs=_ES)
    baseline: float | None = knob(None, CALLBACK, example=1.0, needs=_ES)
    restore_best_weights: bool = knob(True, CALLBACK, example=False, needs=_ES)

    def __post_init__(self):
        check_monitor("early_stopping.monitor", self.monitor)
        check_choice("early_stopping.mode", self.mode, ("min", "max"))
        check_int("patience", self.patience, minimum=0)
        check_non_negative("min_delta", self.min_delta)
        check_int("start_from_epoch", self.start_from_epoch, minimum=0)
        check_optional_number("early_stopping.baseline", self.baseline)
        check_bool("early_stopping.restore_best_weights", self.restore_best_weights)


@dataclass(frozen=True)
class RegConfig:
    """Regularizers switched on by a recipe (all off by default)."""

    # (lambda/2)*sum(w^2), gradient lambda*w (the one L2 convention: penalties.L2, SGD's weight_decay)
    l2: float = knob(0.0, LOSS, example=1e-3, build=lambda r, m: L2(r.reg.l2, convention="half"))
    l1: float = knob(0.0, LOSS, example=1e-4, build=lambda r, m: L1(r.reg.l1))  # coupled lambda*sum|w|
    # per-unit max-norm constraint, projected after each step
    max_norm: float | None = knob(None, AFTER_STEP, example=2.0, build=lambda r, m: Projector(MaxNorm(r.reg.max_norm)))
    # L1 on hidden activations; "mean" divides by the batch size, so the strength does not depend on it
    activity_l1: float = knob(0.0, LOSS, example=1e-4, build=lambda r, m: ActivityPenalty(
        activation_modules(m), l1=r.reg.activity_l1, reduction="mean"))
    label_smoothing: float = knob(0.0, LOSS, example=0.1, classes_only=_SMOOTHING)  # (1 - a) * y + a / K
    input_noise: float = knob(0.0, BATCH, example=0.3)  # std of Gaussian noise added to training inputs
    early_stopping: EarlyStoppingConfig | None = knob(None, CALLBACK, example={"patience": 3})
    # Polyak/EMA: w_test = d * w_test + (1 - d) * w, evaluated instead of w
    ema_decay: float | None = knob(None, AFTER_STEP, example=0.99)
    swa_start: float | None = knob(None, CALLBACK, example=0.5)  # SWA: average after this fraction of the run
    swa_lr: float | None = knob(None, CALLBACK, example=0.01, needs={"reg.swa_start": 0.5})  # default: lr / 2
    snapshot_cycles: int | None = knob(None, CALLBACK, example=2)  # M cosine cycles, a snapshot at each minimum
    # beta: loss - beta * H(p(y|x)) (Pereyra et al. 2017)
    confidence_penalty: float = knob(0.0, LOSS, example=0.1, classes_only=_CONFIDENCE)
    # > 0: sharpness-aware minimization with this radius (Foret et al. 2021); ASAM scales the ascent by |w|
    sam_rho: float = knob(0.0, STEP, example=0.05, build=lambda r, m: SAM(r.reg.sam_rho, adaptive=r.reg.sam_adaptive))
    sam_adaptive: bool = knob(False, STEP, example=True, needs={"reg.sam_rho": 0.5})  # Kwon et al. 2021
    # > 0: R-Drop, two dropout passes + alpha * symmetric KL (Liang et al. 2021)
    rdrop_alpha: float = knob(0.0, STEP, example=1.0, needs={"model.dropout": 0.3}, classes_only=_RDROP,
                              build=lambda r, m: RDrop(r.reg.rdrop_alpha))
    # clip the gradient's global norm before each step
    clip_grad_norm: float | None = knob(None, STEP, example=1.0,
                                        build=lambda r, m: StandardStep(clip_grad_norm=r.reg.clip_grad_norm))
    # > 0: distillation from the baseline's seeds, the weight of the soft term (Hinton et al. 2015); its rows travel
    # packed with the labels (regularkit.distill.pack_targets), so nothing may rewrite the targets (see Recipe)
    distill_alpha: float = knob(0.0, LOSS, example=0.5, classes_only=_DISTILL)
    distill_temperature: float = knob(4.0, LOSS, example=2.0, needs={"reg.distill_alpha": 0.5})  # T of the soft term

    def __post_init__(self):
        check_non_negative("l2", self.l2)
        check_non_negative("l1", self.l1)
        if self.max_norm is not None:
            check_positive("max_norm", self.max_norm)
        check_non_negative("activity_l1", self.activity_l1)
        check_rate("label_smoothing", self.label_smoothing)
        check_non_negative("input_noise", self.input_noise)
        if self.ema_decay is not None:
            check_in_range("ema_decay", self.ema_decay, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        if self.swa_start is not None:
            check_in_range("swa_start", self.swa_start, 0.0, 1.0, low_inclusive=True, high_inclusive=False)
        if self.swa_lr is not None:
            check_positive("swa_lr", self.swa_lr)
        if self.snapshot_cycles is not None:
            check_int("snapshot_cycles", self.snapshot_cycles, minimum=1)
        check_non_negative("confidence_penalty", self.confidence_penalty)
        check_non_negative("sam_rho", self.sam_rho)
        check_bool("sam_adaptive", self.sam_adaptive)
        check_non_negative("rdrop_alpha", self.rdrop_alpha)
        if self.clip_grad_norm is not None:
            check_positive("clip_grad_norm", self.clip_grad_norm)
        check_in_range("distill_alpha", self.distill_alpha, 0.0, 1.0)
        check_positive("distill_temperature", self.distill_temperature)
        if self.sam_rho and self.rdrop_alpha:
            raise RegularkitError("sam_rho and rdrop_alpha each replace the training step; use one of them, got both")
        if self.early_stopping is not None:
            check_instance("early_stopping", self.early_stopping, EarlyStoppingConfig,
                           "an EarlyStoppingConfig or None")
        # Each of these decides which weights are the final model; two at once would leave one
        # silently unused (EMA's average vs SWA's) or unable to exist (SWA stopped before it started).
        chosen = [n for n in ("early_stopping", "ema_decay", "swa_start", "snapshot_cycles")
                  if getattr(self, n) is not None]
        if len(chosen) > 1:
            raise RegularkitError(f"{' and '.join(chosen)} each choose the final weights (best epoch, EMA, SWA, "
                                  f"snapshots); use one of them, got {len(chosen)}")


@dataclass(frozen=True)
class AugmentConfig:
    """Batched, per-sample data augmentation (all off by default). Sizes are fractions of the image side."""

    hflip: bool = knob(False, BATCH, image_only=True, example=True)  # horizontal flip with probability 0.5
    # pad by this fraction of the side, crop back at a random offset
    crop_padding: float = knob(0.0, BATCH, image_only=True, example=0.125)
    # constant | nearest | reflect | wrap; None: the data's fill, else reflect (crops) / nearest (warps)
    padding_mode: str | None = knob(None, BATCH, example="reflect", needs={"augment.crop_padding": 0.125})
    rotation: float = knob(0.0, BATCH, image_only=True, example=10.0)  # degrees, uniform in [-r, r]
    translate: float = knob(0.0, BATCH, image_only=True, example=0.1)  # fraction of the side
    shear: float = knob(0.0, BATCH, image_only=True, example=5.0)  # degrees
    zoom: float = knob(0.0, BATCH, image_only=True, example=0.1)  # scale uniform in [1 - z, 1 + z]
    cutout: float = knob(0.0, BATCH, image_only=True, example=0.5)  # erased square's side, fraction of the side
    erasing: float = knob(0.0, BATCH, image_only=True, example=0.5)  # random-erasing probability (Zhong: 0.5)
    pca_colour: float = knob(0.0, BATCH, image_only=True, example=0.1)  # std of AlexNet's PCA colour shift
    mixup_alpha: float = knob(0.0, BATCH, example=0.2)  # MixUp Beta(alpha, alpha)
    # CutMix Beta(alpha, alpha); with mixup_alpha too: switch 50/50
    cutmix_alpha: float = knob(0.0, BATCH, image_only=True, example=1.0, classes_only=_CUTMIX)
    # test-time augmentation set: flips | five_crop | ten_crop | scales (read by the study's evaluation)
    tta: str | None = knob(None, EVALUATION, image_only=True, example="flips", classes_only=_TTA)
    randaugment: int = knob(0, BATCH, image_only=True, example=9)  # > 0: 2 ops at this magnitude of 31
    trivialaugment: float = knob(0.0, BATCH, image_only=True, example=1.0)  # > 0: on this share of images
    autoaugment: str | None = knob(None, BATCH, image_only=True, example="cifar10")  # imagenet | cifar10
    augmix: int = knob(0, BATCH, image_only=True, example=3)  # > 0: AugMix severity (Hendrycks et al. 2020)
    # > 0 (with augmix): the Jensen-Shannon consistency loss's weight; the step makes the views
    augmix_jsd: float = knob(0.0, STEP, example=12.0, needs={"augment.augmix": 3}, classes_only=_AUGMIX_JSD,
                             build=lambda r, m: AugMixJSD(AugMix(severity=r.augment.augmix), r.augment.augmix_jsd,
                                                          label_smoothing=_loss_smoothing(r)))
    # > 0: random resized crop, area in [this, 1] of the image (Szegedy et al. 2015)
    resized_crop: float = knob(0.0, BATCH, image_only=True, example=0.25)
    blur_sigma: float = knob(0.0, BATCH, image_only=True, example=2.0)  # > 0: blur 3x3, sigma in [0.1, this]
    # > 0: Manifold MixUp Beta(alpha, alpha) at a hidden layer (Verma et al. 2019): wraps the model
    manifold_mixup_alpha: float = knob(0.0, MODEL, factory=ADAPT, example=2.0, classes_only=_MANIFOLD)

    def __post_init__(self):
        check_bool("hflip", self.hflip)
        if self.padding_mode is not None:
            check_choice("padding_mode", self.padding_mode, ("constant", "nearest", "reflect", "wrap"))
        check_in_range("crop_padding", self.crop_padding, 0.0, 1.0)
        check_non_negative("rotation", self.rotation)
        check_in_range("translate", self.translate, 0.0, 1.0)
        check_non_negative("shear", self.shear)
        check_in_range("zoom", self.zoom, 0.0, 1.0, high_inclusive=False)
        check_in_range("cutout", self.cutout, 0.0, 1.0)
        check_in_range("erasing", self.erasing, 0.0, 1.0)
        check_non_negative("pca_colour", self.pca_colour)
        check_non_negative("mixup_alpha", self.mixup_alpha)
        check_non_negative("cutmix_alpha", self.cutmix_alpha)
        if self.tta is not None:
            check_choice("tta", self.tta, ("flips", "five_crop", "ten_crop", "scales"))
        check_int("randaugment", self.randaugment, minimum=0)
        if self.randaugment > 30:
            raise RegularkitError(f"randaugment is a magnitude bin in [0, 30], got {self.randaugment}")
        check_in_range("trivialaugment", self.trivialaugment, 0.0, 1.0)
        if self.autoaugment is not None:
            check_choice("autoaugment", self.autoaugment, ("imagenet", "cifar10"))
        check_int("augmix", self.augmix, minimum=0)
        if self.augmix > 10:
            raise RegularkitError(f"augmix is a severity in [1, 10], got {self.augmix}")
        check_non_negative("augmix_jsd", self.augmix_jsd)
        if self.augmix_jsd and not self.augmix:
            raise RegularkitError(f"augmix_jsd needs augmix > 0 (the consistency is between AugMix views), got "
                                  f"augmix_jsd={self.augmix_jsd} with augmix=0")
        check_in_range("resized_crop", self.resized_crop, 0.0, 1.0, high_inclusive=False)
        check_non_negative("blur_sigma", self.blur_sigma)
        if self.blur_sigma and self.blur_sigma < 0.1:
            raise RegularkitError(f"blur_sigma is the largest sigma, >= 0.1 (the smallest), got {self.blur_sigma}")
        check_non_negative("manifold_mixup_alpha", self.manifold_mixup_alpha)

    def active(self) -> bool:
        """Whether a field of the batch transform is switched on (read from the fields' sites)."""
        return any(getattr(knob_of(f), "site", None) == BATCH and is_on(f, getattr(self, f.name))
                   for f in dataclasses.fields(self))


@dataclass(frozen=True)
class Recipe:
    """One named configuration the study trains once per seed."""

    name: str = knob("baseline", IDENTITY)
    description: str = knob("", IDENTITY)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        check_str("recipe.name", self.name)
        check_instance("recipe.description", self.description, str, "a string")
        for name, cls in (("model", ModelConfig), ("optim", OptimConfig), ("reg", RegConfig),
                          ("augment", AugmentConfig)):
            check_instance(f"recipe.{name}", getattr(self, name), cls, a_or_an(cls.__name__))
        steps = [f"{part}.{f.name}" for part in ("model", "optim", "reg", "augment")
                 for f in builders(type(getattr(self, part)), STEP) if is_on(f, getattr(getattr(self, part), f.name))]
        if len(steps) > 1:  # each builds the whole training step: one would be silently unused
            raise RegularkitError(f"{' and '.join(steps)} each set the training step; use one of them, got "
                                  f"{len(steps)}")
        if self.reg.distill_alpha and (bad := _rewrites_targets(self)):
            raise RegularkitError(f"recipe {self.name!r} distills with reg.distill_alpha={self.reg.distill_alpha}, "
                                  f"which cannot be combined with {', '.join(bad)} (they rewrite the targets the "
                                  "teacher's rows travel in)")


def _rewrites_targets(recipe: Recipe) -> list[str]:
    """Fields that rewrite the targets a distilling run's teacher rows travel in (mixing, smoothing) or its loss."""
    a, reg = recipe.augment, recipe.reg
    named = {"augment.mixup_alpha": a.mixup_alpha, "augment.cutmix_alpha": a.cutmix_alpha,
             "augment.manifold_mixup_alpha": a.manifold_mixup_alpha, "augment.augmix_jsd": a.augmix_jsd,
             "reg.label_smoothing": reg.label_smoothing, "reg.confidence_penalty": reg.confidence_penalty}
    return [f"{k}={v}" for k, v in named.items() if v]
