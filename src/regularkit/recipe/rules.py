"""Which recipes can run on this data and this model, decided before any training.

A recipe is refused, with its reason, when it cannot mean anything here.  The rules for a
field are read from its metadata (:mod:`regularkit.train.knobs`, declared in
:mod:`regularkit.train.config`): ``image_only``, the ``factory`` rule, ``classes_only``; what
is left here is what only the data or the model can tell:

* image-only augmentations (flips, crops, affine warps, Cutout, random erasing,
  CutMix, PCA colour, flip/crop test-time augmentation) on vectors or sequences
  (Gaussian input noise and MixUp work on any shape);
* the built-in CNN and ResNet on anything but images;
* on the user's model, knobs that have to be placed inside it (batch norm,
  stochastic depth, dropout rates when it has no dropout layer, ...): the fields'
  factory rules, and what the model lacks (:func:`regularkit.models.adapt.inapplicable`);
* an activity penalty on a model with no activation modules to watch;
* a snapshot ensemble with more cycles than epochs;
* on a regression task (:func:`regression_reason`), what only means something for classes
  (the fields with a ``classes_only`` reason): label smoothing, CutMix (it mixes labels by
  pasted area), test-time augmentation (flips and crops of images; tables have none), the
  class-prior output bias, the confidence penalty, R-Drop, AugMix's consistency, Manifold MixUp.  Penalties,
  constraints, the dropout family, noise, early stopping, EMA / SWA / snapshots, MixUp (of
  inputs and targets), ensembles, ``--tune`` and ``--combine`` apply.

A recipe that flips images against the data's declaration (``Dataset.flips``:
digits declares that no flip preserves a class, Fashion-MNIST only the
horizontal one) is not refused -- seeing it hurt is a lesson -- but warned
about in the table and the report.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from torch import nn

from regularkit.errors import RegularkitError
from regularkit.metrics.sparsity import activation_modules
from regularkit.models.adapt import inapplicable
from regularkit.models.manifold_mixup import mixing_stages
from regularkit.train.config import AugmentConfig, ModelConfig, Recipe
from regularkit.train.knobs import is_on, knob_of, walk

__all__ = ["IMAGE_ONLY", "Applicability", "check_recipes", "describe_data", "image_fields", "regression_reason"]

#: AugmentConfig fields that only make sense on images (N x C x H x W): read from their metadata.
IMAGE_ONLY = tuple(f.name for f in dataclasses.fields(AugmentConfig) if knob_of(f).image_only)
_IMAGE_MODELS = ("cnn", "resnet")


@dataclass(frozen=True)
class Applicability:
    """Per recipe name: why it cannot run (``refused``) and what to watch (``warnings``)."""

    refused: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)


def describe_data(kind: str, input_shape: tuple[int, ...]) -> str:
    """``"images 1 x 8 x 8"``, ``"vectors of 64 features"``, ``"sequences 3 x 100"``."""
    if kind == "vectors":
        return f"vectors of {input_shape[0]} features" if len(input_shape) == 1 else f"vectors {input_shape}"
    return f"{kind} {' x '.join(str(s) for s in input_shape)}"


def image_fields(recipe: Recipe, sites: tuple[str, ...] | None = None) -> list[str]:
    """The dotted image-only fields ``recipe`` switches on (only those acting at ``sites``, if given)."""
    return [dotted for dotted, f, value, _ in walk(recipe) if knob_of(f) is not None and knob_of(f).image_only
            and (sites is None or knob_of(f).site in sites) and is_on(f, value)]


def _model_reason(cfg: ModelConfig, base: ModelConfig) -> str | None:
    """Knobs a built-in model does not have (so the recipe would train the baseline under its name)."""
    if cfg.drop_block and cfg.kind == "mlp":
        return "it drops blocks of convolutional feature maps and the built-in mlp has none"
    if cfg.kind == "resnet" and cfg.activation != "relu":
        return f"it changes the hidden unit to {cfg.activation} and the built-in resnet is ReLU only"
    if cfg.kind == "resnet" and cfg.dropout_kind != "inverted":
        return f"it asks for {cfg.dropout_kind} dropout and the built-in resnet's head dropout is inverted only"
    return None


def _reason(recipe: Recipe, base: Recipe, kind: str, data: str, probe: nn.Module | None) -> str | None:
    fields = image_fields(recipe)
    if fields and kind != "images":
        return f"it augments images ({', '.join(fields)}) and the data are {data}"
    if recipe.model.kind in _IMAGE_MODELS and kind != "images":
        return f"it uses the built-in {recipe.model.kind}, which needs images, and the data are {data}"
    if recipe.model.kind == "resnet" and recipe.model.bottleneck is not None:
        return "it factors hidden dense layers and the built-in resnet has none (its head is its only Linear)"
    why = _model_reason(recipe.model, base.model)
    if why is not None:
        return why
    if recipe.augment.manifold_mixup_alpha and recipe.model.kind == "factory" and probe is not None:
        try:
            mixing_stages(probe)
        except RegularkitError as exc:
            return f"it mixes at a hidden layer: {exc}"
    if base.model.kind == "factory" and probe is not None:  # a recipe that changes the kind changes the architecture
        why = inapplicable(recipe.model, base.model, probe)
        if why is not None:
            return why
    if recipe.reg.activity_l1 and probe is not None and not activation_modules(probe):
        return "it penalizes hidden activations and the model has no activation modules (nn.ReLU, ...) to watch"
    if recipe.reg.snapshot_cycles is not None and recipe.reg.snapshot_cycles > recipe.optim.epochs:
        return f"it needs {recipe.reg.snapshot_cycles} cosine cycles and the study trains {recipe.optim.epochs} epochs"
    return None


def regression_reason(recipe: Recipe) -> str | None:
    """Why ``recipe`` cannot run on a regression task, or ``None`` (see the module docstring)."""
    return next((knob_of(f).classes_only for _, f, value, _ in walk(recipe)
                 if knob_of(f) is not None and knob_of(f).classes_only and is_on(f, value)), None)


def _flip_warnings(recipe: Recipe, flips: tuple[str, ...] | None, name: str) -> list[str]:
    if flips is None:
        return []
    a, out = recipe.augment, []
    if (a.hflip or a.tta in ("flips", "ten_crop")) and "horizontal" not in flips:
        allowed = "that no flip preserves" if not flips else f"that only {' and '.join(flips)} flips preserve"
        out.append(f"horizontal flips may change the class: {name} declares {allowed} its classes")
    return out


def check_recipes(recipes: list[Recipe], base: Recipe, *, kind: str, input_shape: tuple[int, ...],
                  probe: nn.Module | None, flips: tuple[str, ...] | None, data_name: str,
                  task: str = "classification") -> Applicability:
    """Refusals and warnings for each recipe on data of ``kind`` and the probe model (see the module doc)."""
    data = describe_data(kind, tuple(input_shape))
    refused, warnings = {}, {}
    for r in recipes:
        why = _reason(r, base, kind, data, probe)
        if task == "regression":
            why = regression_reason(r) or why
        if why is not None:
            refused[r.name] = why
        notes = _flip_warnings(r, flips, data_name)
        if notes:
            warnings[r.name] = notes
    return Applicability(refused=refused, warnings=warnings)
