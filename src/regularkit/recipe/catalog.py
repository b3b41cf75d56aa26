"""The catalog: every named recipe of the study in one literal dict, with its strength for ``--tune``.

A recipe is a base configuration (model, optimizer, epochs: chosen by the study) plus the
overrides of its :class:`Entry`.  Strengths are set for the default study (digits, a small
training set, an MLP).  What each overridden field does -- where it acts, where it cannot
apply -- is said once, on the field (:mod:`regularkit.train.config`); this file only names
combinations of values.  A new technique is one entry here (and, when it needs a new knob,
one field with its metadata there)::

    "rdrop": Entry("R-Drop ...", {"model.dropout": 0.3, "reg.rdrop_alpha": 1.0},
                   Strength("reg.rdrop_alpha", 0.1, 10.0, log=True)),

tests/recipe/test_conformance.py checks that every entry assembles to something other than the
baseline, on the built-in models and on a user's model (or is refused there with the field's reason).
A TOML file can define more recipes (:func:`regularkit.recipe.resolve.load_recipe_file`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

from regularkit.search.distributions import Distribution, Int, LogUniform, Uniform
from regularkit.train.config import Recipe

__all__ = ["Entry", "Strength", "CATALOG", "DEFAULT_RECIPES", "RECIPE_NAME", "RECIPES", "STRENGTHS",
           "field_value", "strength_for"]


def field_value(recipe: Recipe, dotted: str) -> Any:
    """The value of the dotted field ``dotted`` ("reg.l2") in ``recipe``; None below an unset part
    (``reg.early_stopping.patience`` of a recipe without early stopping)."""
    node: Any = recipe
    for part in dotted.split("."):
        if node is None:
            return None
        node = getattr(node, part)
    return node


@dataclass(frozen=True)
class Strength:
    """A recipe's main strength: the dotted field ``--tune`` searches, over ``[low, high]``.

    ``log``: searched in log10 units (penalties, noise scales, Beta alphas: a decade each gets
    the same share of the trials, the lecture's ``10**uniform(a, b)``); ``integer``: whole numbers.
    """

    field: str
    low: float
    high: float
    log: bool = False
    integer: bool = False
    #: other fields that follow the strength in a fixed ratio: {"reg.l2": 50.0} sets l2 = 50 x the value
    #: (cs231n's elastic net, lambda * sum(beta * w^2 + |w|): one strength, the mix kept)
    coupled: tuple[tuple[str, float], ...] = ()

    def expand(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` plus the coupled fields, when ``params`` holds this strength's field."""
        out = dict(params)
        if self.field in out:
            out.update({name: ratio * out[self.field] for name, ratio in self.coupled})
        return out

    def distribution(self) -> Distribution:
        if self.integer:
            return Int(int(self.low), int(self.high), log=self.log)
        return (LogUniform if self.log else Uniform)(self.low, self.high)

    def value(self, recipe: Recipe) -> Any:
        """The strength's value in ``recipe`` (follows the dotted path)."""
        return field_value(recipe, self.field)

    def to_dict(self) -> dict[str, Any]:
        out = {"field": self.field, **self.distribution().to_toml()}
        if self.coupled:
            out["coupled"] = dict(self.coupled)
        return out


class Entry(NamedTuple):
    """One named recipe: what it is, the dotted overrides of the base recipe, the strength ``--tune``
    searches (None: trained as it is -- the baseline, initializations, architecture swaps)."""

    description: str
    overrides: dict[str, Any]
    strength: Strength | None = None


# name -> Entry(description, overrides, strength).  Keep it one literal dict.
CATALOG: dict[str, Entry] = {
    "baseline": Entry("no regularization", {}),
    # --- parameter norm penalties and constraints (decks 000, 001, 003, 004)
    "l2": Entry("coupled L2 penalty (lambda/2)*sum(w^2) in the loss, lambda = 1e-2",
        {"reg.l2": 1e-2}, Strength("reg.l2", 1e-5, 1e-1, log=True)),
    "weight-decay": Entry("weight decay in the optimizer, 1e-2 (equals l2 with SGD; decoupled with --optimizer adamw)",
        {"optim.weight_decay": 1e-2}, Strength("optim.weight_decay", 1e-5, 1e-1, log=True)),
    "l1": Entry("L1 penalty lambda*sum|w|, lambda = 3e-4 (sparse weights)",
        {"reg.l1": 3e-4}, Strength("reg.l1", 1e-6, 1e-2, log=True)),
    "elastic-net": Entry("L1 1e-4 + L2 5e-3",
        {"reg.l1": 1e-4, "reg.l2": 5e-3}, Strength("reg.l1", 1e-6, 1e-2, log=True, coupled=(("reg.l2", 50.0),))),
    "max-norm": Entry("per-unit max-norm constraint ||w_j|| <= 2, projected after each step",
        {"reg.max_norm": 2.0}, Strength("reg.max_norm", 0.5, 10.0, log=True)),
    "activity-l1": Entry("L1 penalty 1e-4 on hidden activations (representational sparsity)",
        {"reg.activity_l1": 1e-4}, Strength("reg.activity_l1", 1e-6, 1e-2, log=True)),
    "early-stopping": Entry("stop when val loss stalls for 10 epochs, restore the best weights",
        {"reg.early_stopping": {"monitor": "val_loss", "mode": "min", "patience": 10}},
        Strength("reg.early_stopping.patience", 2, 40, log=True, integer=True)),
    # --- initialization (decks 001, 003)
    "init-he": Entry("He normal initialization, biases 0", {"model.init": "he_normal"}),
    "init-glorot": Entry("Glorot normal initialization, biases 0", {"model.init": "glorot_normal"}),
    "init-lecun": Entry("LeCun normal initialization, biases 0", {"model.init": "lecun_normal"}),
    "relu-bias": Entry("He normal, hidden biases 0.1 so ReLU units start active",
        {"model.init": "he_normal", "model.bias_init": 0.1}),
    "class-prior-bias": Entry("output bias set to the class prior, softmax(b) = p(y)", {"model.output_bias": "prior"}),
    # --- hidden units (deck 003 "Generalizations of ReLu"; Goodfellow et al. 2016, 6.3); MLP and CNN
    "leaky-relu": Entry("leaky ReLU max(0, z) + 0.01 min(0, z) as the hidden unit", {"model.activation": "leaky_relu"}),
    "prelu": Entry("parametric ReLU: the leaky slope learned, one per layer from 0.25 (He et al. 2015)",
        {"model.activation": "prelu"}),
    "abs-relu": Entry("absolute value rectification |z| = max(0, z) - min(0, z) (Jarrett et al. 2009)",
        {"model.activation": "abs_relu"}),
    "softplus": Entry("softplus log(1 + exp(z)), a smooth ReLU", {"model.activation": "softplus"}),
    "bottleneck": Entry("linear bottleneck: each hidden Linear W = U V of rank 16 (Goodfellow et al. 6.3.3)",
        {"model.bottleneck": 16}, Strength("model.bottleneck", 2, 128, log=True, integer=True)),
    # --- noise (decks 000, 002, 003, 004)
    "dropout": Entry("inverted dropout 0.3 on hidden units",
        {"model.dropout": 0.3}, Strength("model.dropout", 0.0, 0.7)),
    "dropout-cookbook": Entry("inverted dropout: keep 0.8 on inputs, 0.5 on hidden units (deck 003)",
        {"model.dropout": 0.5, "model.input_dropout": 0.2}, Strength("model.dropout", 0.1, 0.7)),
    "dropout-classic": Entry("classic dropout 0.3 (no scaling in training, x keep at test)",
        {"model.dropout": 0.3, "model.dropout_kind": "classic"}, Strength("model.dropout", 0.0, 0.7)),
    "dropout+max-norm": Entry("Srivastava et al.'s MLP: ReLU 3 x 1024, dropout 0.2/0.5, max-norm 3",
        {"model.widths": [1024, 1024, 1024], "model.dropout": 0.5, "model.input_dropout": 0.2, "reg.max_norm": 3.0},
        Strength("model.dropout", 0.1, 0.7)),
    "dropconnect": Entry("DropConnect 0.3 on the hidden layers' weights",
        {"model.dropconnect": 0.3}, Strength("model.dropconnect", 0.0, 0.7)),
    "gaussian-noise": Entry("additive Gaussian noise on training inputs, std 0.3",
        {"reg.input_noise": 0.3}, Strength("reg.input_noise", 0.01, 1.0, log=True)),
    "batchnorm": Entry("batch norm before each nonlinearity, with dropout 0.3",
        {"model.batchnorm": True, "model.dropout": 0.3}, Strength("model.dropout", 0.0, 0.7)),
    "batchnorm-no-dropout": Entry("batch norm before each nonlinearity, no dropout", {"model.batchnorm": True}),
    "drop-path": Entry("residual CNN with stochastic depth, last block drops 0.2 (linear rule)",
        {"model.kind": "resnet", "model.channels": [16, 32], "model.drop_path": 0.2, "model.batchnorm": True},
        Strength("model.drop_path", 0.0, 0.5)),
    # --- targets and averaging (decks 002, 003, 004)
    "label-smoothing": Entry("label smoothing alpha = 0.1, uniform formula (1-a)y + a/K",
        {"reg.label_smoothing": 0.1}, Strength("reg.label_smoothing", 0.0, 0.3)),
    "ema": Entry("Polyak/EMA weights w_test = 0.995 w_test + 0.005 w, evaluated instead of w",
        {"reg.ema_decay": 0.995}, Strength("reg.ema_decay", 0.9, 0.999)),
    "swa": Entry("stochastic weight averaging over the last quarter, BN recalibrated",
        {"reg.swa_start": 0.75}, Strength("reg.swa_start", 0.5, 0.9)),
    "snapshot-ensemble": Entry("5 cyclic cosine cycles, the 5 snapshots averaged",
        {"reg.snapshot_cycles": 5}, Strength("reg.snapshot_cycles", 2, 8, integer=True)),
    # --- data augmentation and test-time augmentation (decks 000, 002, 004); image data
    "flip-crop": Entry("horizontal flips and random crops (pad 1/8 of the side, filled as the data declares)",
        {"augment.hflip": True, "augment.crop_padding": 0.125}, Strength("augment.crop_padding", 0.0, 0.25)),
    # the whole warp scales with the rotation, in the recipe's ratios (10 deg: shift 0.1, shear 5 deg, zoom 0.1)
    "affine": Entry("random rotation 10 deg, shift 0.1, shear 5 deg, zoom 0.1: one affine warp",
        {"augment.rotation": 10.0, "augment.translate": 0.1, "augment.shear": 5.0, "augment.zoom": 0.1},
        Strength("augment.rotation", 0.0, 30.0, coupled=(("augment.translate", 0.01), ("augment.shear", 0.5),
                                                          ("augment.zoom", 0.01)))),
    "cutout": Entry("Cutout: a square of half the side erased (DeVries & Taylor 2017)",
        {"augment.cutout": 0.5}, Strength("augment.cutout", 0.1, 0.7)),
    "random-erasing": Entry("random erasing with p = 0.5 (Zhong et al. 2017)",
        {"augment.erasing": 0.5}, Strength("augment.erasing", 0.1, 1.0)),
    "mixup": Entry("MixUp, alpha = 0.2 (Zhang et al. 2018)",
        {"augment.mixup_alpha": 0.2}, Strength("augment.mixup_alpha", 0.05, 2.0, log=True)),
    "cutmix": Entry("CutMix, alpha = 1 (Yun et al. 2019)",
        {"augment.cutmix_alpha": 1.0}, Strength("augment.cutmix_alpha", 0.1, 2.0, log=True)),
    "pca-colour": Entry("AlexNet PCA colour jitter, std 0.1, eigenvectors from training pixels",
        {"augment.pca_colour": 0.1}, Strength("augment.pca_colour", 0.01, 0.5, log=True)),
    "tta": Entry("flips and crops in training; test error also with flip TTA (logits averaged)",
        {"augment.hflip": True, "augment.crop_padding": 0.125, "augment.tta": "flips"},
        Strength("augment.crop_padding", 0.0, 0.25)),
    "seed-ensemble": Entry("the baseline; read its seed-ens column: the average of its seeds' predictions", {}),
    # --- beyond the lectures: the peers' modern regularizers (issue 22)
    "dropblock": Entry("DropBlock 0.1, 3 x 3 blocks of the later conv stages, ramped from 0 (Ghiasi et al. 2018)",
        {"model.drop_block": 0.1, "model.drop_block_size": 3}, Strength("model.drop_block", 0.02, 0.3)),
    "alpha-dropout": Entry("self-normalizing net: SELU units, LeCun-normal weights, alpha dropout 0.05 "
                           "(Klambauer et al. 2017)",
        {"model.activation": "selu", "model.init": "lecun_normal", "model.dropout_kind": "alpha",
         "model.dropout": 0.05},
        Strength("model.dropout", 0.0, 0.2)),
    "confidence-penalty": Entry("confidence penalty: loss - 0.1 H(p(y|x)) (Pereyra et al. 2017)",
        {"reg.confidence_penalty": 0.1}, Strength("reg.confidence_penalty", 0.01, 1.0, log=True)),
    "spectral-norm": Entry("spectral normalization W / sigma(W) of every hidden layer (Miyato et al. 2018)",
        {"model.spectral_norm": True}),
    "manifold-mixup": Entry("Manifold MixUp at a random hidden layer, alpha = 2 (Verma et al. 2019)",
        {"augment.manifold_mixup_alpha": 2.0}, Strength("augment.manifold_mixup_alpha", 0.1, 4.0, log=True)),
    "sam": Entry("sharpness-aware minimization, rho = 0.05 (Foret et al. 2021): two passes per step",
        {"reg.sam_rho": 0.05}, Strength("reg.sam_rho", 0.01, 0.5, log=True)),
    "asam": Entry("adaptive SAM, rho = 0.5, the ascent scaled by |w| (Kwon et al. 2021)",
        {"reg.sam_rho": 0.5, "reg.sam_adaptive": True}, Strength("reg.sam_rho", 0.05, 2.0, log=True)),
    "rdrop": Entry("R-Drop: dropout 0.3 and two passes kept consistent, alpha = 1 (Liang et al. 2021); compare "
                   "with the dropout recipe",
        {"model.dropout": 0.3, "reg.rdrop_alpha": 1.0},
        Strength("reg.rdrop_alpha", 0.1, 10.0, log=True)),
    "randaugment": Entry("RandAugment: 2 ops per image at magnitude 9 of 31 (Cubuk et al. 2020)",
        {"augment.randaugment": 9}, Strength("augment.randaugment", 1, 30, integer=True)),
    "trivialaugment": Entry("TrivialAugmentWide: one op per image at a random magnitude (Mueller & Hutter 2021)",
        {"augment.trivialaugment": 1.0}, Strength("augment.trivialaugment", 0.1, 1.0)),
    "autoaugment": Entry("AutoAugment's CIFAR-10 policy (Cubuk et al. 2019)", {"augment.autoaugment": "cifar10"}),
    "augmix": Entry("AugMix severity 3 with the Jensen-Shannon consistency, lambda = 12 (Hendrycks et al. 2020)",
        {"augment.augmix": 3, "augment.augmix_jsd": 12.0}, Strength("augment.augmix_jsd", 1.0, 30.0, log=True)),
    "random-resized-crop": Entry("random resized crop back to the input size, area in [0.25, 1], ratio 3/4-4/3 "
                                 "(Szegedy et al. 2015)",
        {"augment.resized_crop": 0.25},
        Strength("augment.resized_crop", 0.05, 0.8, log=True)),
    "gaussian-blur": Entry("Gaussian blur 3 x 3, sigma uniform in [0.1, 2] per image",
        {"augment.blur_sigma": 2.0}, Strength("augment.blur_sigma", 0.2, 3.0, log=True)),
    # alpha, not T: alpha is how much the teacher's word counts (0 is the baseline), T only reshapes it
    "distill": Entry("self-distillation from the baseline's seed ensemble: alpha = 0.5 on its averaged training "
                     "predictions at T = 4 (Hinton et al. 2015); needs baseline",
        {"reg.distill_alpha": 0.5, "reg.distill_temperature": 4.0}, Strength("reg.distill_alpha", 0.1, 1.0)),
}

#: What a recipe name may be (it is part of run keys and file names).
RECIPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")

DEFAULT_RECIPES = ("baseline", "l2", "dropout", "early-stopping", "gaussian-noise", "label-smoothing")

#: Read-only views of the catalog under their old names (name -> (description, overrides); name -> strength).
RECIPES: dict[str, tuple[str, dict[str, Any]]] = {name: e[:2] for name, e in CATALOG.items()}
STRENGTHS: dict[str, Strength] = {name: e.strength for name, e in CATALOG.items() if e.strength is not None}


def strength_for(name: str, extra: Mapping[str, tuple] | None = None) -> Strength | None:
    """The strength ``--tune`` searches for recipe ``name`` (a recipe file's own, else the catalog's)."""
    if extra is not None and name in extra:
        return extra[name][2] if len(extra[name]) > 2 else None
    return CATALOG[name].strength if name in CATALOG else None
