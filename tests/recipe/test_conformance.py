"""Fail closed: every recipe field says what it does and does it; every named recipe changes the run.

A field that nothing reads would train the baseline under a recipe's name (issue 21).  The checks:

1. Metadata (:func:`metadata_problems`): every field of :class:`~regularkit.train.config.Recipe` but
   the four parts carries a valid :class:`~regularkit.train.knobs.Knob` (a site, a factory rule, a
   refusal where it is refused, an example value).
2. Wiring (:func:`unread`): each field's example (with the fields it ``needs``) changes the assembled
   run, on a built-in model and, where its factory rule lets it apply, on a user's model; where the
   rule refuses it, the study's refusal is the field's own.  A field added without wiring is reported
   (:func:`test_an_unread_field_is_caught`), so is one without metadata.
3. Catalog: every named recipe (:data:`~regularkit.recipe.catalog.CATALOG`) assembles to something
   other than the baseline on the first built-in model it applies to, and on a user's factory (or is
   refused there with a reason its fields declare); its strength is a field it overrides.

"What the run is" (:func:`signature`): the model (modules and initial weights), the optimizer's groups
and schedule, epochs, the loss, loss terms, after-step hooks, callbacks, batch transform, training
step, the models evaluated, and the TTA set that the study's evaluation reads.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import types
import typing

import pytest
import torch
from torch import nn

from regularkit.config import expand_dotted, from_dict
from regularkit.data.splits import Splits
from regularkit.penalties import L1
from regularkit.recipe.assemble import assemble
from regularkit.recipe.catalog import CATALOG
from regularkit.recipe.resolve import resolve
from regularkit.recipe.rules import check_recipes
from regularkit.train.config import ModelConfig, Recipe, RegConfig
from regularkit.train.knobs import ADAPT, ARCHITECTURE, LOSS, OUTSIDE, REFUSED, knob, knob_of, walk

g = torch.Generator().manual_seed(0)
SPLITS = Splits(torch.rand(48, 1, 12, 12, generator=g), torch.arange(48) % 4, torch.rand(16, 1, 12, 12, generator=g),
                torch.arange(16) % 4, torch.rand(16, 1, 12, 12, generator=g), torch.arange(16) % 4, 4, (1, 12, 12),
                kind="images", fill="constant")
BASE = Recipe(optim=dataclasses.replace(Recipe().optim, epochs=6, batch_size=8))


def build(input_shape, num_classes):
    """The user's factory (``--model user.py:build``): a dropout layer, hidden Linears, ReLUs and a head."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 16), nn.ReLU(), nn.Dropout(0.0),
                         nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, num_classes))


FACTORY_BASE = dataclasses.replace(BASE, model=ModelConfig(kind="factory", factory="user.py:build"))


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
    parts = assemble(recipe, SPLITS, seed=0, factory=build if recipe.model.kind == "factory" else None)
    groups = [{k: v for k, v in group.items() if k != "params"} for group in parts.optimizer.param_groups]
    return {"model": describe(parts.model), "optimizer": [type(parts.optimizer).__name__, describe(groups)],
            "scheduler": describe(parts.scheduler), "epochs": parts.epochs, "loss_fn": describe(parts.loss_fn),
            "loss_terms": describe(parts.loss_terms), "after_step": describe(parts.after_step),
            "callbacks": describe(parts.callbacks), "batch_transform": describe(parts.batch_transform),
            "step": describe(parts.step), "eval_model": parts.eval_model is not None,
            "final_model": parts.final_model is not None, "tta": recipe.augment.tta}


def _apply(obj, nested: dict):
    """``obj`` with the nested overrides, part by part (a subclass part keeps its class and its extra fields)."""
    changes = {}
    for name, value in nested.items():
        current = getattr(obj, name)
        if isinstance(value, dict) and dataclasses.is_dataclass(current):
            changes[name] = _apply(current, value)
        elif isinstance(value, dict):  # a part that is None (reg.early_stopping): built from the dict
            changes[name] = from_dict(_optional_part(type(obj), name), value)
        else:
            changes[name] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(obj, **changes)


def _optional_part(cls, name: str):
    hint = typing.get_type_hints(cls)[name]
    return next(a for a in typing.get_args(hint) if dataclasses.is_dataclass(a))


def with_overrides(base, overrides: dict):
    return _apply(base, expand_dotted(overrides))


def knobs(base: Recipe):
    """``(dotted, knob)`` of every field with metadata (the four parts of a Recipe are containers)."""
    return [(dotted, knob_of(f)) for dotted, f, _, _ in walk(base) if knob_of(f) is not None]


def metadata_problems(base: Recipe) -> list[str]:
    out = []
    for dotted, f, _, _ in walk(base):
        if dotted in ("model", "optim", "reg", "augment"):
            continue
        k = knob_of(f)
        out += [f"{dotted}: no metadata; declare it with train.knobs.knob(...)"] if k is None else k.problems(dotted)
    return out


def _for_factory(needs: dict) -> dict:
    """The context a field needs, minus the architecture a factory cannot take (drop_path needs no resnet there)."""
    arch = {d for d, k in knobs(BASE) if k.factory == ARCHITECTURE}
    return {d: v for d, v in needs.items() if d not in arch}


def unread(base: Recipe, only: tuple[str, ...] | None = None) -> list[str]:
    """The fields (of ``only``, if given) whose example changes nothing in the run assembled on ``base``'s
    model (on a factory: those whose factory rule lets them apply, with what they need)."""
    out = []
    factory = base.model.kind == "factory"
    rule = {d: k.factory for d, k in knobs(base)}
    for dotted, k in knobs(base):
        if k.example is None or (only is not None and dotted not in only):
            continue
        needs = _for_factory(k.needs) if factory else k.needs
        if factory and (rule[dotted] in (ARCHITECTURE, REFUSED) or REFUSED in {rule.get(d) for d in needs}):
            continue
        before, after = with_overrides(base, needs), with_overrides(base, {**needs, dotted: k.example})
        if signature(after) == signature(before):
            out.append(dotted)
    return out


def refusal(recipe: Recipe, base: Recipe) -> str | None:
    verdict = check_recipes([recipe], base, kind="images", input_shape=(1, 12, 12),
                            probe=build((1, 12, 12), 4) if base.model.kind == "factory" else None, flips=None,
                            data_name="toy")
    return verdict.refused.get(recipe.name)


def test_every_field_has_valid_metadata():
    assert metadata_problems(BASE) == []
    assert {k.factory for _, k in knobs(BASE)} == {ADAPT, ARCHITECTURE, REFUSED, OUTSIDE}


def test_every_field_changes_the_assembled_run_on_a_built_in_model():
    assert unread(BASE) == []


def test_every_applicable_field_changes_the_assembled_run_on_a_user_factory():
    assert unread(FACTORY_BASE) == []


@pytest.mark.parametrize("dotted", sorted(d for d, k in knobs(BASE) if k.factory in (ARCHITECTURE, REFUSED)
                                          and k.example is not None))
def test_a_field_the_factory_cannot_take_is_refused_with_its_own_reason(dotted):
    k = dict(knobs(BASE))[dotted]
    recipe = dataclasses.replace(with_overrides(FACTORY_BASE, {**_for_factory(k.needs), dotted: k.example}),
                                 name="r")
    why = refusal(recipe, FACTORY_BASE)
    expected = f"changes the architecture ({dotted})" if k.factory == ARCHITECTURE else k.refusal
    assert why is not None and expected in why


def test_values_the_factory_cannot_take_are_refused():
    for dotted, k in knobs(BASE):
        for value in k.refused_values:
            recipe = dataclasses.replace(with_overrides(FACTORY_BASE, {dotted: value}), name="r")
            assert refusal(recipe, FACTORY_BASE) == k.refusal


def test_an_unread_field_is_caught():
    """A field added with metadata but no wiring is reported; with a builder it is wired, with nothing else."""
    unwired = dataclasses.make_dataclass("RegConfig", [("dummy", float, knob(0.0, LOSS, example=1.0))],
                                         bases=(RegConfig,), frozen=True)
    assert "reg.dummy" in [d for d, _ in knobs(dataclasses.replace(BASE, reg=unwired()))]
    assert unread(dataclasses.replace(BASE, reg=unwired()), only=("reg.dummy",)) == ["reg.dummy"]
    wired = dataclasses.make_dataclass(
        "RegConfig", [("dummy", float, knob(0.0, LOSS, example=1.0, build=lambda r, m: L1(r.reg.dummy)))],
        bases=(RegConfig,), frozen=True)
    assert unread(dataclasses.replace(BASE, reg=wired()), only=("reg.dummy",)) == []


def test_a_field_without_metadata_or_with_bad_metadata_is_caught():
    bare = dataclasses.make_dataclass("RegConfig", [("dummy", float, 0.0)], bases=(RegConfig,), frozen=True)
    assert metadata_problems(dataclasses.replace(BASE, reg=bare())) == [
        "reg.dummy: no metadata; declare it with train.knobs.knob(...)"]
    bad = dataclasses.make_dataclass("RegConfig", [("dummy", float, knob(0.0, "loss_term", factory=REFUSED))],
                                     bases=(RegConfig,), frozen=True)
    problems = " | ".join(metadata_problems(dataclasses.replace(BASE, reg=bad())))
    for part in ("site 'loss_term' is not one of", "needs its refusal", "give an example value"):
        assert part in problems


NAMED = sorted(set(CATALOG) - {"baseline", "seed-ensemble"})  # those two are the baseline by construction


def _builtin_base(name: str) -> Recipe | None:
    """The first built-in model (mlp, cnn) on which the recipe is not refused."""
    for kind in ("mlp", "cnn"):
        base = dataclasses.replace(BASE, model=ModelConfig(kind=kind, widths=(32,), channels=(8, 16)))
        if refusal(resolve([name], base)[0], base) is None:
            return base
    return None


@pytest.mark.parametrize("name", NAMED)
def test_every_named_recipe_changes_the_run_on_a_built_in_model(name):
    base = _builtin_base(name)
    assert base is not None, f"{name} applies to no built-in model"
    assert signature(resolve([name], base)[0]) != signature(base), f"{name} trains the baseline"


@pytest.mark.parametrize("name", NAMED)
def test_every_named_recipe_changes_the_run_on_a_user_factory_or_is_refused_by_its_fields(name):
    recipe = resolve([name], FACTORY_BASE)[0]
    why = refusal(recipe, FACTORY_BASE)
    if why is None:
        assert signature(recipe) != signature(FACTORY_BASE), f"{name} trains the user's model unchanged"
        return
    overridden = set(expand_dotted_keys(CATALOG[name].overrides))
    declared = {k.refusal for d, k in knobs(BASE) if d in overridden and k.refusal}
    arch = [d for d, k in knobs(BASE) if d in overridden and k.factory == ARCHITECTURE]
    assert why in declared or (arch and why.startswith(f"it changes the architecture ({', '.join(arch)})")), why


def expand_dotted_keys(overrides: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in expand_dotted(overrides).items():
        out.append(prefix + key)
        if isinstance(value, dict):
            out += expand_dotted_keys(value, f"{prefix}{key}.")
    return out


@pytest.mark.parametrize("name", sorted(n for n, e in CATALOG.items() if e.strength is not None))
def test_a_strength_is_a_field_its_recipe_sets(name):
    entry = CATALOG[name]
    overridden = set(expand_dotted_keys(entry.overrides))
    assert entry.strength.field in overridden
    assert {f for f, _ in entry.strength.coupled} <= overridden
