"""Fail closed: every recipe field changes the assembled run, and every named recipe differs from the baseline.

A field that nothing reads would train the baseline under a recipe's name (issue 21).  Two checks:

1. ``FIELD_VALUES`` gives every leaf field of :class:`~regularkit.train.config.Recipe` a non-default
   value (with the fields it needs, e.g. ``augment.augmix`` for ``augment.augmix_jsd``); the run
   assembled with it must differ from the run assembled without it.  A new field without an entry
   here fails :func:`test_every_field_has_a_value`; one with an entry but no wiring fails
   :func:`test_every_field_changes_the_assembled_run` (shown by :func:`test_an_unread_field_is_caught`).
2. Every named recipe (``study.recipes.RECIPES``) assembles to something other than the baseline on the
   first built-in model it applies to (the seed ensemble, the baseline by construction, excepted).

"What the run is" (:func:`signature`): the model (modules and initial weights), the optimizer's groups
and schedule, epochs, the loss, loss terms, after-step hooks, callbacks, batch transform, training
step, the models evaluated, and the TTA set that ``execute`` reads.
"""
from __future__ import annotations

import dataclasses
import hashlib
import types

import pytest
import torch
from torch import nn

from regularkit.config import expand_dotted, from_dict, merge, to_dict
from regularkit.data.splits import Splits
from regularkit.study.applicability import check_recipes
from regularkit.study.assemble import assemble
from regularkit.study.recipes import RECIPES
from regularkit.train.config import ModelConfig, Recipe, RegConfig

g = torch.Generator().manual_seed(0)
SPLITS = Splits(torch.rand(48, 1, 12, 12, generator=g), torch.arange(48) % 4, torch.rand(16, 1, 12, 12, generator=g),
                torch.arange(16) % 4, torch.rand(16, 1, 12, 12, generator=g), torch.arange(16) % 4, 4, (1, 12, 12),
                kind="images", fill="constant")

# every leaf field -> the overrides that switch it on (other fields it needs listed first, as context)
FIELD_VALUES: dict[str, dict] = {
    "model.kind": {"model.kind": "resnet"},
    "model.widths": {"model.widths": [64]},
    "model.channels": {"model.kind": "cnn", "model.channels": [8]},
    "model.activation": {"model.activation": "tanh"},
    "model.dropout": {"model.dropout": 0.3},
    "model.input_dropout": {"model.input_dropout": 0.2},
    "model.dropout_kind": {"model.dropout": 0.3, "model.dropout_kind": "classic"},
    "model.batchnorm": {"model.batchnorm": True},
    "model.drop_path": {"model.kind": "resnet", "model.drop_path": 0.2},
    "model.dropconnect": {"model.dropconnect": 0.3},
    "model.init": {"model.init": "he_normal"},
    "model.bias_init": {"model.bias_init": 0.1},
    "model.output_bias": {"model.output_bias": "prior"},
    "model.bottleneck": {"model.bottleneck": 4},
    "model.drop_block": {"model.kind": "cnn", "model.drop_block": 0.1},
    "model.drop_block_size": {"model.kind": "cnn", "model.drop_block": 0.1, "model.drop_block_size": 5},
    "model.spectral_norm": {"model.spectral_norm": True},
    "optim.optimizer": {"optim.optimizer": "adamw"},
    "optim.lr": {"optim.lr": 0.01},
    "optim.momentum": {"optim.momentum": 0.5},
    "optim.weight_decay": {"optim.weight_decay": 1e-3},
    "optim.schedule": {"optim.schedule": "cosine"},
    "optim.step_size": {"optim.schedule": "step", "optim.step_size": 3},
    "optim.gamma": {"optim.schedule": "step", "optim.gamma": 0.5},
    "optim.epochs": {"optim.epochs": 7},
    "optim.batch_size": {"model.drop_block": 0.1, "model.kind": "cnn", "optim.batch_size": 16},
    "reg.l2": {"reg.l2": 1e-3},
    "reg.l1": {"reg.l1": 1e-4},
    "reg.max_norm": {"reg.max_norm": 2.0},
    "reg.activity_l1": {"reg.activity_l1": 1e-4},
    "reg.label_smoothing": {"reg.label_smoothing": 0.1},
    "reg.input_noise": {"reg.input_noise": 0.3},
    "reg.early_stopping": {"reg.early_stopping": {"patience": 3}},
    "reg.early_stopping.monitor": {"reg.early_stopping": {"monitor": "val_error"}},
    "reg.early_stopping.mode": {"reg.early_stopping": {"mode": "max"}},
    "reg.early_stopping.patience": {"reg.early_stopping": {"patience": 9}},
    "reg.early_stopping.min_delta": {"reg.early_stopping": {"min_delta": 0.01}},
    "reg.early_stopping.start_from_epoch": {"reg.early_stopping": {"start_from_epoch": 2}},
    "reg.early_stopping.baseline": {"reg.early_stopping": {"baseline": 1.0}},
    "reg.early_stopping.restore_best_weights": {"reg.early_stopping": {"restore_best_weights": False}},
    "reg.ema_decay": {"reg.ema_decay": 0.99},
    "reg.swa_start": {"reg.swa_start": 0.5},
    "reg.swa_lr": {"reg.swa_start": 0.5, "reg.swa_lr": 0.01},
    "reg.snapshot_cycles": {"reg.snapshot_cycles": 2},
    "reg.confidence_penalty": {"reg.confidence_penalty": 0.1},
    "reg.sam_rho": {"reg.sam_rho": 0.05},
    "reg.sam_adaptive": {"reg.sam_rho": 0.5, "reg.sam_adaptive": True},
    "reg.rdrop_alpha": {"model.dropout": 0.3, "reg.rdrop_alpha": 1.0},
    "reg.clip_grad_norm": {"reg.clip_grad_norm": 1.0},
    "augment.hflip": {"augment.hflip": True},
    "augment.crop_padding": {"augment.crop_padding": 0.125},
    "augment.padding_mode": {"augment.crop_padding": 0.125, "augment.padding_mode": "reflect"},
    "augment.rotation": {"augment.rotation": 10.0},
    "augment.translate": {"augment.translate": 0.1},
    "augment.shear": {"augment.shear": 5.0},
    "augment.zoom": {"augment.zoom": 0.1},
    "augment.cutout": {"augment.cutout": 0.5},
    "augment.erasing": {"augment.erasing": 0.5},
    "augment.pca_colour": {"augment.pca_colour": 0.1},
    "augment.mixup_alpha": {"augment.mixup_alpha": 0.2},
    "augment.cutmix_alpha": {"augment.cutmix_alpha": 1.0},
    "augment.tta": {"augment.tta": "flips"},
    "augment.randaugment": {"augment.randaugment": 9},
    "augment.trivialaugment": {"augment.trivialaugment": 1.0},
    "augment.autoaugment": {"augment.autoaugment": "cifar10"},
    "augment.augmix": {"augment.augmix": 3},
    "augment.augmix_jsd": {"augment.augmix": 3, "augment.augmix_jsd": 12.0},
    "augment.resized_crop": {"augment.resized_crop": 0.25},
    "augment.blur_sigma": {"augment.blur_sigma": 2.0},
    "augment.manifold_mixup_alpha": {"augment.manifold_mixup_alpha": 2.0},
}
#: Fields that are not knobs of a run: the recipe's name and description, the factory spec.
NOT_KNOBS = {"name", "description", "model.factory"}


def leaves(cls, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        hint = f.type if not isinstance(f.type, str) else eval(f.type, vars(__import__(cls.__module__, fromlist=["x"])))
        inner = [a for a in getattr(hint, "__args__", ()) if dataclasses.is_dataclass(a)]
        sub = hint if dataclasses.is_dataclass(hint) else (inner[0] if inner else None)
        out.append(prefix + f.name)
        if sub is not None:
            out += leaves(sub, f"{prefix}{f.name}.")
    return out


def describe(obj, depth: int = 0):
    """A stable description of a hook: type and configuration, never an address."""
    if depth > 4 or obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [describe(o, depth + 1) for o in obj]
    if isinstance(obj, dict):
        return {str(k): describe(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, torch.Tensor):
        return hashlib.sha256(obj.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
    if isinstance(obj, types.MethodType):
        return [obj.__qualname__, describe(obj.__self__, depth + 1)]
    if isinstance(obj, types.FunctionType):
        cells = [c.cell_contents for c in (obj.__closure__ or ())]
        return [obj.__qualname__, describe(cells, depth + 1)]
    if isinstance(obj, nn.Module):
        return [repr(obj), describe(dict(obj.state_dict()), depth + 1)]
    if hasattr(obj, "get_config"):
        return [type(obj).__name__, describe(obj.get_config(), depth + 1)]
    if hasattr(obj, "__dict__"):
        return [type(obj).__name__, describe({k: v for k, v in vars(obj).items() if not k.startswith("_")
                                              and not isinstance(v, (nn.Module, torch.optim.Optimizer))},
                                             depth + 1)]
    return type(obj).__name__


def signature(recipe: Recipe) -> dict:
    parts = assemble(recipe, SPLITS, seed=0)
    groups = [{k: v for k, v in group.items() if k != "params"} for group in parts.optimizer.param_groups]
    return {"model": describe(parts.model), "optimizer": [type(parts.optimizer).__name__, describe(groups)],
            "scheduler": describe(parts.scheduler), "epochs": parts.epochs, "loss_fn": describe(parts.loss_fn),
            "loss_terms": describe(parts.loss_terms), "after_step": describe(parts.after_step),
            "callbacks": describe(parts.callbacks), "batch_transform": describe(parts.batch_transform),
            "step": describe(parts.step), "eval_model": parts.eval_model is not None,
            "final_model": parts.final_model is not None, "tta": recipe.augment.tta}


def with_overrides(base: Recipe, overrides: dict) -> Recipe:
    return from_dict(Recipe, merge(to_dict(base), expand_dotted(overrides)))


BASE = Recipe(optim=dataclasses.replace(Recipe().optim, epochs=6, batch_size=8))


def test_every_field_has_a_value():
    missing = [f for f in leaves(Recipe) if f not in FIELD_VALUES and f not in NOT_KNOBS
               and not dataclasses.is_dataclass(getattr(Recipe, f.split(".")[0], None))]
    missing = [f for f in missing if f not in ("model", "optim", "reg", "augment")]
    assert missing == [], "give each new field a value in FIELD_VALUES and wire it in study/assemble.py"
    assert set(FIELD_VALUES) <= set(leaves(Recipe))


@pytest.mark.parametrize("field", sorted(FIELD_VALUES))
def test_every_field_changes_the_assembled_run(field):
    overrides = FIELD_VALUES[field]
    context = {k: v for k, v in overrides.items() if k != field and not field.startswith(k + ".")}
    if field.startswith("reg.early_stopping."):
        context = {"reg.early_stopping": {"patience": 5}}
    before, after = with_overrides(BASE, context), with_overrides(BASE, {**context, **overrides})
    assert signature(after) != signature(before), f"{field} changes nothing in the assembled run"


def test_an_unread_field_is_caught():
    """A field added without wiring: the check above fails for it."""
    Extra = dataclasses.make_dataclass("RegConfig", [("dummy", float, 0.0)], bases=(RegConfig,), frozen=True)
    before = dataclasses.replace(BASE, reg=Extra())
    after = dataclasses.replace(BASE, reg=Extra(dummy=1.0))
    assert signature(after) == signature(before)  # nobody reads reg.dummy: the conformance check would fail


def _base_for(recipe_overrides: dict) -> Recipe | None:
    """The first built-in model (mlp, cnn) on which the recipe is not refused."""
    for kind in ("mlp", "cnn"):
        base = dataclasses.replace(BASE, model=ModelConfig(kind=kind, widths=(32,), channels=(8, 16)))
        recipe = dataclasses.replace(with_overrides(base, recipe_overrides), name="r")
        verdict = check_recipes([recipe], base, kind="images", input_shape=(1, 12, 12), probe=None, flips=None,
                                data_name="toy")
        if "r" not in verdict.refused:
            return base
    return None


@pytest.mark.parametrize("name", sorted(set(RECIPES) - {"baseline", "seed-ensemble"}))
def test_every_named_recipe_assembles_to_something_else_than_the_baseline(name):
    overrides = RECIPES[name][1]
    base = _base_for(overrides)
    assert base is not None, f"{name} applies to no built-in model"
    assert signature(with_overrides(base, overrides)) != signature(base), f"{name} trains the baseline"
