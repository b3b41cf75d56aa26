"""The named recipes of the study: one literal registry, plus recipes from TOML.

A recipe is a base configuration (model, optimizer, epochs: chosen by the
study) plus the overrides listed here.  Strengths are set for the default
study (digits, a small training set, an MLP); a TOML file can define new
recipes or override these::

    [recipes.l2-strong]
    description = "coupled L2, ten times the default"
    "reg.l2" = 1e-2

    [recipes.wide-dropout]
    model = { widths = [1024, 1024], dropout = 0.5 }
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping

from regularkit._util.checks import check_positive
from regularkit.config import expand_dotted, load_toml, merge, replace
from regularkit.errors import RegularkitError
from regularkit.search.distributions import Categorical, Distribution, Int, LogUniform, Uniform
from regularkit.search.space import SearchSpace
from regularkit.train.config import Recipe

# name -> (description, overrides of the base recipe).  Keep it one literal dict.
RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("no regularization", {}),
    # --- parameter norm penalties and constraints (decks 000, 001, 003, 004)
    "l2": ("coupled L2 penalty (lambda/2)*sum(w^2) in the loss, lambda = 1e-2", {"reg.l2": 1e-2}),
    "weight-decay": ("weight decay in the optimizer, 1e-2 (equals l2 with SGD; decoupled with --optimizer adamw)",
                     {"optim.weight_decay": 1e-2}),
    "l1": ("L1 penalty lambda*sum|w|, lambda = 3e-4 (sparse weights)", {"reg.l1": 3e-4}),
    "elastic-net": ("L1 1e-4 + L2 5e-3", {"reg.l1": 1e-4, "reg.l2": 5e-3}),
    "max-norm": ("per-unit max-norm constraint ||w_j|| <= 2, projected after each step", {"reg.max_norm": 2.0}),
    "activity-l1": ("L1 penalty 1e-4 on hidden activations (representational sparsity)", {"reg.activity_l1": 1e-4}),
    "early-stopping": ("stop when val loss stalls for 10 epochs, restore the best weights",
                       {"reg.early_stopping": {"monitor": "val_loss", "mode": "min", "patience": 10}}),
    # --- initialization (decks 001, 003)
    "init-he": ("He normal initialization, biases 0", {"model.init": "he_normal"}),
    "init-glorot": ("Glorot normal initialization, biases 0", {"model.init": "glorot_normal"}),
    "init-lecun": ("LeCun normal initialization, biases 0", {"model.init": "lecun_normal"}),
    "relu-bias": ("He normal, hidden biases 0.1 so ReLU units start active", {"model.init": "he_normal",
                                                                            "model.bias_init": 0.1}),
    "class-prior-bias": ("output bias set to the class prior, softmax(b) = p(y)", {"model.output_bias": "prior"}),
    # --- hidden units (deck 003 "Generalizations of ReLu"; Goodfellow et al. 2016, 6.3); MLP and CNN
    "leaky-relu": ("leaky ReLU max(0, z) + 0.01 min(0, z) as the hidden unit", {"model.activation": "leaky_relu"}),
    "prelu": ("parametric ReLU: the leaky slope learned, one per layer from 0.25 (He et al. 2015)",
              {"model.activation": "prelu"}),
    "abs-relu": ("absolute value rectification |z| = max(0, z) - min(0, z) (Jarrett et al. 2009)",
                 {"model.activation": "abs_relu"}),
    "softplus": ("softplus log(1 + exp(z)), a smooth ReLU", {"model.activation": "softplus"}),
    "bottleneck": ("linear bottleneck: each hidden Linear W = U V of rank 16 (Goodfellow et al. 6.3.3)",
                   {"model.bottleneck": 16}),
    # --- noise (decks 000, 002, 003, 004)
    "dropout": ("inverted dropout 0.3 on hidden units", {"model.dropout": 0.3}),
    "dropout-cookbook": ("inverted dropout: keep 0.8 on inputs, 0.5 on hidden units (deck 003)",
                         {"model.dropout": 0.5, "model.input_dropout": 0.2}),
    "dropout-classic": ("classic dropout 0.3 (no scaling in training, x keep at test)",
                        {"model.dropout": 0.3, "model.dropout_kind": "classic"}),
    "dropout+max-norm": ("Srivastava et al.'s MLP: ReLU 3 x 1024, dropout 0.2/0.5, max-norm 3",
                         {"model.widths": [1024, 1024, 1024], "model.dropout": 0.5, "model.input_dropout": 0.2,
                          "reg.max_norm": 3.0}),
    "dropconnect": ("DropConnect 0.3 on the hidden layers' weights", {"model.dropconnect": 0.3}),
    "gaussian-noise": ("additive Gaussian noise on training inputs, std 0.3", {"reg.input_noise": 0.3}),
    "batchnorm": ("batch norm before each nonlinearity, with dropout 0.3", {"model.batchnorm": True,
                                                                          "model.dropout": 0.3}),
    "batchnorm-no-dropout": ("batch norm before each nonlinearity, no dropout", {"model.batchnorm": True}),
    "drop-path": ("residual CNN with stochastic depth, last block drops 0.2 (linear rule)",
                  {"model.kind": "resnet", "model.channels": [16, 32], "model.drop_path": 0.2,
                   "model.batchnorm": True}),
    # --- targets and averaging (decks 002, 003, 004)
    "label-smoothing": ("label smoothing alpha = 0.1, uniform formula (1-a)y + a/K", {"reg.label_smoothing": 0.1}),
    "ema": ("Polyak/EMA weights w_test = 0.995 w_test + 0.005 w, evaluated instead of w", {"reg.ema_decay": 0.995}),
    "swa": ("stochastic weight averaging over the last quarter, BN recalibrated", {"reg.swa_start": 0.75}),
    "snapshot-ensemble": ("5 cyclic cosine cycles, the 5 snapshots averaged", {"reg.snapshot_cycles": 5}),
    # --- data augmentation and test-time augmentation (decks 000, 002, 004); image data
    "flip-crop": ("horizontal flips and random crops (pad 1/8 of the side, filled as the data declares)",
                  {"augment.hflip": True, "augment.crop_padding": 0.125}),
    "affine": ("random rotation 10 deg, shift 0.1, shear 5 deg, zoom 0.1: one affine warp",
               {"augment.rotation": 10.0, "augment.translate": 0.1, "augment.shear": 5.0, "augment.zoom": 0.1}),
    "cutout": ("Cutout: a square of half the side erased (DeVries & Taylor 2017)", {"augment.cutout": 0.5}),
    "random-erasing": ("random erasing with p = 0.5 (Zhong et al. 2017)", {"augment.erasing": 0.5}),
    "mixup": ("MixUp, alpha = 0.2 (Zhang et al. 2018)", {"augment.mixup_alpha": 0.2}),
    "cutmix": ("CutMix, alpha = 1 (Yun et al. 2019)", {"augment.cutmix_alpha": 1.0}),
    "pca-colour": ("AlexNet PCA colour jitter, std 0.1, eigenvectors from training pixels",
                   {"augment.pca_colour": 0.1}),
    "tta": ("flips and crops in training; test error also with flip TTA (logits averaged)",
            {"augment.hflip": True, "augment.crop_padding": 0.125, "augment.tta": "flips"}),
    "seed-ensemble": ("the baseline; read its seed-ens column: the average of its seeds' predictions",
                      {}),
    # --- beyond the lectures: the peers' modern regularizers (issue 22)
    "dropblock": ("DropBlock 0.1, 3 x 3 blocks of the later conv stages, ramped from 0 (Ghiasi et al. 2018)",
                  {"model.drop_block": 0.1, "model.drop_block_size": 3}),
    "alpha-dropout": ("self-normalizing net: SELU units, LeCun-normal weights, alpha dropout 0.05 "
                      "(Klambauer et al. 2017)", {"model.activation": "selu", "model.init": "lecun_normal",
                                                 "model.dropout_kind": "alpha", "model.dropout": 0.05}),
    "confidence-penalty": ("confidence penalty: loss - 0.1 H(p(y|x)) (Pereyra et al. 2017)",
                           {"reg.confidence_penalty": 0.1}),
    "spectral-norm": ("spectral normalization W / sigma(W) of every hidden layer (Miyato et al. 2018)",
                      {"model.spectral_norm": True}),
    "manifold-mixup": ("Manifold MixUp at a random hidden layer, alpha = 2 (Verma et al. 2019)",
                       {"augment.manifold_mixup_alpha": 2.0}),
    "sam": ("sharpness-aware minimization, rho = 0.05 (Foret et al. 2021): two passes per step",
            {"reg.sam_rho": 0.05}),
    "asam": ("adaptive SAM, rho = 0.5, the ascent scaled by |w| (Kwon et al. 2021)",
             {"reg.sam_rho": 0.5, "reg.sam_adaptive": True}),
    "rdrop": ("R-Drop: dropout 0.3 and two passes kept consistent, alpha = 1 (Liang et al. 2021); compare "
              "with the dropout recipe", {"model.dropout": 0.3, "reg.rdrop_alpha": 1.0}),
    "randaugment": ("RandAugment: 2 ops per image at magnitude 9 of 31 (Cubuk et al. 2020)",
                    {"augment.randaugment": 9}),
    "trivialaugment": ("TrivialAugmentWide: one op per image at a random magnitude (Mueller & Hutter 2021)",
                       {"augment.trivialaugment": 1.0}),
    "autoaugment": ("AutoAugment's CIFAR-10 policy (Cubuk et al. 2019)", {"augment.autoaugment": "cifar10"}),
    "augmix": ("AugMix severity 3 with the Jensen-Shannon consistency, lambda = 12 (Hendrycks et al. 2020)",
               {"augment.augmix": 3, "augment.augmix_jsd": 12.0}),
    "random-resized-crop": ("random resized crop back to the input size, area in [0.25, 1], ratio 3/4-4/3 "
                            "(Szegedy et al. 2015)", {"augment.resized_crop": 0.25}),
    "gaussian-blur": ("Gaussian blur 3 x 3, sigma uniform in [0.1, 2] per image", {"augment.blur_sigma": 2.0}),
}

#: What a recipe name may be (it is part of run keys and file names).
RECIPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")

DEFAULT_RECIPES = ("baseline", "l2", "dropout", "early-stopping", "gaussian-noise", "label-smoothing")


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


# name -> the strength --tune searches.  Recipes without one (the baseline, initializations, the
# architecture swaps, the seed ensemble) are trained as they are.  Keep it one literal dict.
STRENGTHS: dict[str, Strength] = {
    "l2": Strength("reg.l2", 1e-5, 1e-1, log=True),
    "weight-decay": Strength("optim.weight_decay", 1e-5, 1e-1, log=True),
    "l1": Strength("reg.l1", 1e-6, 1e-2, log=True),
    "elastic-net": Strength("reg.l1", 1e-6, 1e-2, log=True, coupled=(("reg.l2", 50.0),)),
    "max-norm": Strength("reg.max_norm", 0.5, 10.0, log=True),
    "activity-l1": Strength("reg.activity_l1", 1e-6, 1e-2, log=True),
    "early-stopping": Strength("reg.early_stopping.patience", 2, 40, log=True, integer=True),
    "bottleneck": Strength("model.bottleneck", 2, 128, log=True, integer=True),
    "dropout": Strength("model.dropout", 0.0, 0.7),
    "dropout-cookbook": Strength("model.dropout", 0.1, 0.7),
    "dropout-classic": Strength("model.dropout", 0.0, 0.7),
    "dropout+max-norm": Strength("model.dropout", 0.1, 0.7),
    "dropconnect": Strength("model.dropconnect", 0.0, 0.7),
    "gaussian-noise": Strength("reg.input_noise", 0.01, 1.0, log=True),
    "batchnorm": Strength("model.dropout", 0.0, 0.7),
    "drop-path": Strength("model.drop_path", 0.0, 0.5),
    "label-smoothing": Strength("reg.label_smoothing", 0.0, 0.3),
    "ema": Strength("reg.ema_decay", 0.9, 0.999),
    "swa": Strength("reg.swa_start", 0.5, 0.9),
    "snapshot-ensemble": Strength("reg.snapshot_cycles", 2, 8, integer=True),
    "flip-crop": Strength("augment.crop_padding", 0.0, 0.25),
    # the whole warp scales with the rotation, in the recipe's ratios (10 deg: shift 0.1, shear 5 deg, zoom 0.1)
    "affine": Strength("augment.rotation", 0.0, 30.0, coupled=(("augment.translate", 0.01), ("augment.shear", 0.5),
                                                              ("augment.zoom", 0.01))),
    "cutout": Strength("augment.cutout", 0.1, 0.7),
    "random-erasing": Strength("augment.erasing", 0.1, 1.0),
    "mixup": Strength("augment.mixup_alpha", 0.05, 2.0, log=True),
    "cutmix": Strength("augment.cutmix_alpha", 0.1, 2.0, log=True),
    "pca-colour": Strength("augment.pca_colour", 0.01, 0.5, log=True),
    "tta": Strength("augment.crop_padding", 0.0, 0.25),
    "dropblock": Strength("model.drop_block", 0.02, 0.3),
    "alpha-dropout": Strength("model.dropout", 0.0, 0.2),
    "confidence-penalty": Strength("reg.confidence_penalty", 0.01, 1.0, log=True),
    "manifold-mixup": Strength("augment.manifold_mixup_alpha", 0.1, 4.0, log=True),
    "sam": Strength("reg.sam_rho", 0.01, 0.5, log=True),
    "asam": Strength("reg.sam_rho", 0.05, 2.0, log=True),
    "rdrop": Strength("reg.rdrop_alpha", 0.1, 10.0, log=True),
    "randaugment": Strength("augment.randaugment", 1, 30, integer=True),
    "trivialaugment": Strength("augment.trivialaugment", 0.1, 1.0),
    "augmix": Strength("augment.augmix_jsd", 1.0, 30.0, log=True),
    "random-resized-crop": Strength("augment.resized_crop", 0.05, 0.8, log=True),
    "gaussian-blur": Strength("augment.blur_sigma", 0.2, 3.0, log=True),
}


def strength_for(name: str, extra: Mapping[str, tuple] | None = None) -> Strength | None:
    """The strength ``--tune`` searches for recipe ``name`` (a recipe file's own, else :data:`STRENGTHS`)."""
    if extra is not None and name in extra:
        return extra[name][2] if len(extra[name]) > 2 else None
    return STRENGTHS.get(name)


def _numeric_field(dotted: str, where: str) -> None:
    """Refuse a dotted name that is not a numeric field of :class:`Recipe` (``reg.l3``, ``model``,
    ``optim.optimizer``)."""
    node: Any = Recipe
    for i, part in enumerate(dotted.split(".")):
        hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else {}
        if part not in hints:
            known = ", ".join(sorted(hints)) or "none: it is a number"
            raise RegularkitError(f"{where} field {dotted!r}: {'.'.join(dotted.split('.')[:i]) or 'a recipe'} has "
                                  f"no field {part!r} (fields: {known})")
        node = hints[part]
        if typing.get_origin(node) in (typing.Union, types.UnionType):
            node = next(a for a in typing.get_args(node) if a is not type(None))
    if node not in (int, float):
        raise RegularkitError(f"{where} field {dotted!r} is not a number (a strength is searched over a range)")


def _strength_from_toml(name: str, table: Any, path) -> Strength:
    """``strength = {field = "reg.l2", log_uniform = [1e-5, 1e-1]}`` (or uniform, or int with log)."""
    where = f"recipe {name!r} in {str(path)!r}: strength"
    if not isinstance(table, dict) or not isinstance(table.get("field"), str):
        raise RegularkitError(f"{where} must be a table with a field name, e.g. {{field = \"reg.l2\", "
                              f"log_uniform = [1e-5, 1e-1]}}, got {table!r}")
    coupled = table.get("coupled", {})
    if not isinstance(coupled, dict) or not all(isinstance(k, str) for k in coupled):
        raise RegularkitError(f"{where}.coupled must be a table {{\"reg.l2\" = 50.0}} of fields and ratios, "
                              f"got {coupled!r}")
    for dotted in (table["field"], *coupled):
        _numeric_field(dotted, where)
    ratios = tuple((k, check_positive(f"{where}.coupled.{k}", v)) for k, v in coupled.items())
    dist = SearchSpace.from_dict({table["field"]: {k: v for k, v in table.items() if k not in ("field", "coupled")}}
                                 )[table["field"]]
    if isinstance(dist, Categorical):
        raise RegularkitError(f"{where} must be a range (uniform, log_uniform or int), got categorical")
    return Strength(table["field"], dist.low, dist.high, log=dist.log, integer=isinstance(dist, Int), coupled=ratios)


def load_recipe_file(path) -> dict[str, tuple]:
    """Recipes defined in a TOML file's ``[recipes.NAME]`` tables: name -> (description, overrides, strength).

    A table may declare its strength for ``--tune``:
    ``strength = {field = "reg.l2", log_uniform = [1e-5, 1e-1]}``.
    """
    data = load_toml(path)
    tables = data.get("recipes")
    if not isinstance(tables, dict) or not tables:
        raise RegularkitError(f"{str(path)!r} has no [recipes.NAME] tables")
    other = sorted(set(data) - {"recipes"})
    if other:
        raise RegularkitError(f"{str(path)!r} holds {other[0]!r} beside [recipes.NAME] tables; a recipe file holds "
                              "only recipes")
    out = {}
    for name, table in tables.items():
        if not RECIPE_NAME.fullmatch(name):
            raise RegularkitError(f"recipe name {name!r} in {str(path)!r} must be 1-64 letters, digits, '-', '_', '.' "
                                  "or '+'")
        if not isinstance(table, dict):
            raise RegularkitError(f"recipe {name!r} in {str(path)!r} must be a table, got {table!r}")
        table = dict(table)
        description = table.pop("description", "")
        if not isinstance(description, str):
            raise RegularkitError(f"recipe {name!r} in {str(path)!r}: description must be text, got {description!r}")
        strength = _strength_from_toml(name, table.pop("strength"), path) if "strength" in table else None
        out[name] = (description, table, strength)
    return out


def resolve(names, base: Recipe, *, extra: Mapping[str, tuple[str, dict]] | None = None) -> list[Recipe]:
    """The Recipe objects for ``names``: base plus each recipe's overrides, validated."""
    registry = {**RECIPES, **(extra or {})}
    recipes = []
    for name in names:
        if name not in registry:
            raise RegularkitError(f"unknown recipe {name!r}; choose from {', '.join(registry)}")
        description, overrides = registry[name][:2]
        merged = merge(expand_dotted(overrides), {"name": name, "description": description})
        recipes.append(replace(base, merged, where=f"recipe {name!r}"))
    return recipes
