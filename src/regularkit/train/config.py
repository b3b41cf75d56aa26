"""The recipe: what to build and how to train it, as frozen dataclasses.

A :class:`Recipe` is the unit the study runs (once per seed).  Every field is
validated on construction, so a bad value fails at once with a message that
names it (``weight_decay must be >= 0, got -1.0``), before any training.
Types are strict: a boolean field takes ``True`` / ``False`` only (``"false"``
is refused, never read as true), a number field refuses strings and booleans,
a tuple field takes a tuple (or list, stored as a tuple) of integers.
Recipes round-trip through :func:`regularkit.config.to_dict` / ``from_dict``
and TOML, and are saved next to every result.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from regularkit._util.checks import (
    a_or_an,
    check_bool,
    check_choice,
    check_in_range,
    check_instance,
    check_int,
    check_int_tuple,
    check_monitor,
    check_non_negative,
    check_number,
    check_optional_number,
    check_positive,
    check_rate,
    check_str,
)
from regularkit.errors import RegularkitError
from regularkit.init import INITIALIZERS

#: The hidden units a built-in model offers (deck 003 "Generalizations of ReLu"; the modules are
#: regularkit.models.mlp._ACTIVATIONS, which the MLP and the CNN share; the ResNet is ReLU only).
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu", "prelu", "abs_relu", "softplus", "selu")
MODEL_KINDS = ("mlp", "cnn", "resnet", "factory")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. ``dropout`` is one rate for every hidden layer or one rate per hidden layer."""

    kind: str = "mlp"                      # mlp | cnn | resnet | factory (the user's build function)
    factory: str | None = None             # kind "factory": "module:function" or "file.py:function" (else unused)
    widths: tuple[int, ...] = (256, 256)   # MLP hidden widths; CNN/resnet: its dense head width(s)
    channels: tuple[int, ...] = (32, 64)   # CNN / resnet conv channels per stage
    activation: str = "relu"
    dropout: float | tuple[float, ...] = 0.0
    input_dropout: float = 0.0             # the cookbook's keep 0.8 for inputs is input_dropout=0.2
    dropout_kind: str = "inverted"         # inverted | classic (scale at test time)
    batchnorm: bool = False
    drop_path: float = 0.0                 # resnet: stochastic depth rate of the last block
    dropconnect: float = 0.0               # DropConnect rate on the hidden Linear layers
    init: str | None = None                # None: torch default; else a regularkit.init preset
    bias_init: float = 0.0                 # 0.1 keeps ReLU units active at the start
    output_bias: str = "zero"              # zero | prior (softmax(b) = p(y))
    bottleneck: int | None = None          # rank r: every hidden Linear becomes W = U·V (r*(in+out) parameters)
    drop_block: float = 0.0                # DropBlock rate on the later conv stages (Ghiasi et al. 2018)
    drop_block_size: int = 3               # DropBlock's block side, in pixels of the feature map
    spectral_norm: bool = False            # W / sigma(W) on every hidden Linear and Conv (Miyato et al. 2018)

    def __post_init__(self):
        check_choice("model.kind", self.kind, MODEL_KINDS)
        check_str("model.factory", self.factory, allow_none=True)
        if self.kind == "factory" and self.factory is None:
            raise RegularkitError("model.kind 'factory' needs model.factory, the build function's "
                                  "'module:function' or 'file.py:function'; got none")
        check_choice("model.activation", self.activation, ACTIVATIONS)
        check_choice("model.dropout_kind", self.dropout_kind, ("inverted", "classic", "alpha"))
        check_choice("model.output_bias", self.output_bias, ("zero", "prior"))
        object.__setattr__(self, "widths", check_int_tuple("model.widths", self.widths))
        object.__setattr__(self, "channels", check_int_tuple("model.channels", self.channels))
        check_bool("model.batchnorm", self.batchnorm)
        if self.init is not None:
            check_choice("model.init", self.init, INITIALIZERS)
        rates = self.dropout if isinstance(self.dropout, tuple) else (self.dropout,)
        for r in rates:
            check_rate("dropout", r)
        if isinstance(self.dropout, tuple) and len(self.dropout) != len(self.widths):
            raise RegularkitError(
                f"dropout has {len(self.dropout)} rates but the model has {len(self.widths)} hidden layers; "
                f"got {self.dropout}")
        check_rate("input_dropout", self.input_dropout)
        check_rate("drop_path", self.drop_path)
        check_rate("dropconnect", self.dropconnect)
        check_number("bias_init", self.bias_init)
        check_rate("drop_block", self.drop_block)
        check_int("model.drop_block_size", self.drop_block_size, minimum=1)
        check_bool("model.spectral_norm", self.spectral_norm)
        if self.bottleneck is not None:
            # Read by the MLP and the CNN's dense layers; the study refuses it for the ResNet and for a
            # factory model (regularkit.study.applicability) rather than failing the whole study here.
            check_int("model.bottleneck", self.bottleneck, minimum=1)

    def hidden_dropout(self) -> tuple[float, ...]:
        """One drop rate per hidden layer."""
        if isinstance(self.dropout, tuple):
            return self.dropout
        return (float(self.dropout),) * len(self.widths)


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and schedule. ``weight_decay`` is decoupled (AdamW-style), weights only."""

    optimizer: str = "sgd"                 # sgd | adamw
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"             # constant | step | cosine
    step_size: int = 10                    # step schedule: epochs between decays
    gamma: float = 0.1                     # step schedule: decay factor
    epochs: int = 30
    batch_size: int = 64

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
    monitor: str = "val_loss"
    mode: str = "min"
    patience: int = 5
    min_delta: float = 0.0
    start_from_epoch: int = 0
    baseline: float | None = None
    restore_best_weights: bool = True

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

    l2: float = 0.0                        # (lambda/2)*sum(w^2), gradient lambda*w: penalties.L2(lambda)
    l1: float = 0.0                        # coupled penalty lambda*sum|w|
    max_norm: float | None = None          # per-unit max-norm constraint, projected after each step
    activity_l1: float = 0.0               # L1 on hidden activations (representational sparsity)
    label_smoothing: float = 0.0           # uniform: (1 - a) * y + a / K
    input_noise: float = 0.0               # std of Gaussian noise added to training inputs
    early_stopping: EarlyStoppingConfig | None = None
    ema_decay: float | None = None         # Polyak/EMA: w_test = d * w_test + (1 - d) * w, evaluated instead of w
    swa_start: float | None = None         # SWA: average over the epochs after this fraction of the run (0.75)
    swa_lr: float | None = None            # SWA: constant lr while averaging (default: the base lr / 2)
    snapshot_cycles: int | None = None     # snapshot ensemble: M cosine cycles, one snapshot at each minimum
    confidence_penalty: float = 0.0        # beta: loss - beta * H(p(y|x)) (Pereyra et al. 2017)
    sam_rho: float = 0.0                   # > 0: sharpness-aware minimization with this radius (Foret et al. 2021)
    sam_adaptive: bool = False             # ASAM: the ascent scaled by |w| (Kwon et al. 2021)
    rdrop_alpha: float = 0.0               # > 0: R-Drop, two dropout passes + alpha * symmetric KL (Liang et al. 2021)
    clip_grad_norm: float | None = None    # clip the gradient's global norm before each step

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

    hflip: bool = False                    # horizontal flip with probability 0.5
    crop_padding: float = 0.0              # pad by this fraction of the side, crop back at a random offset
    padding_mode: str | None = None        # constant | nearest | reflect | wrap; None: the data's fill, else reflect
    rotation: float = 0.0                  # degrees, uniform in [-r, r]
    translate: float = 0.0                 # fraction of the side
    shear: float = 0.0                     # degrees
    zoom: float = 0.0                      # scale uniform in [1 - z, 1 + z]
    cutout: float = 0.0                    # side of the erased square, as a fraction of the image side
    erasing: float = 0.0                   # random-erasing probability (Zhong et al.: 0.5)
    pca_colour: float = 0.0                # std of the AlexNet PCA colour shift (fitted on training pixels)
    mixup_alpha: float = 0.0               # MixUp Beta(alpha, alpha)
    cutmix_alpha: float = 0.0              # CutMix Beta(alpha, alpha); with mixup_alpha too: switch 50/50
    tta: str | None = None                 # test-time augmentation set: flips | five_crop | ten_crop | scales
    randaugment: int = 0                   # > 0: RandAugment, 2 ops per image at this magnitude of 31 (Cubuk et al.)
    trivialaugment: float = 0.0            # > 0: TrivialAugmentWide on this share of the images (Mueller & Hutter)
    autoaugment: str | None = None         # imagenet | cifar10: AutoAugment's policy (Cubuk et al. 2019)
    augmix: int = 0                        # > 0: AugMix with this severity (Hendrycks et al. 2020)
    augmix_jsd: float = 0.0                # > 0 (with augmix): the Jensen-Shannon consistency loss's weight
    resized_crop: float = 0.0              # > 0: random resized crop, area in [this, 1] of the image (Szegedy 2015)
    blur_sigma: float = 0.0                # > 0: Gaussian blur 3x3, sigma uniform in [0.1, this]
    manifold_mixup_alpha: float = 0.0      # > 0: Manifold MixUp Beta(alpha, alpha) at a hidden layer (Verma 2019)

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
        return any((self.hflip, self.crop_padding, self.rotation, self.translate, self.shear, self.zoom,
                    self.cutout, self.erasing, self.pca_colour, self.mixup_alpha, self.cutmix_alpha,
                    self.randaugment, self.trivialaugment, self.autoaugment, self.augmix, self.resized_crop,
                    self.blur_sigma))


@dataclass(frozen=True)
class Recipe:
    """One named configuration the study trains once per seed."""

    name: str = "baseline"
    description: str = ""
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
