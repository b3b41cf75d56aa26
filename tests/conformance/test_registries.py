"""The registries are complete and covered: what makes "tested the day it is registered" true.

For each family: (a) the conformance cases (tests/_helpers/conformance_cases.py,
the ``CASES`` of that family's suite) have exactly the registry's names, so a
registered technique without a case fails here (and in its suite); (b) every
public class of the package's ``__all__`` that is a technique of the family (a
subclass of its base) is a registry value, so a technique exported without
being registered fails here too.  Plus: values are techniques, each registered
once, under the Keras-style snake case of its class name, and ``REGISTRY`` is public.
"""
from __future__ import annotations

import inspect
import re
import types
from dataclasses import dataclass
from typing import Callable

import pytest
from _helpers import conformance_cases as cases

import regularkit.augment as A
import regularkit.averaging as AV
import regularkit.constraints as C
import regularkit.noise as N
import regularkit.penalties as P
import regularkit.preprocess as PP
import regularkit.train as T
import regularkit.train.callbacks as CB
from regularkit.averaging._config import AveragerConfig
from regularkit.preprocess.base import Preprocessor


def takes_a_model(cls) -> bool:
    """An averager: its constructor's first argument is the model (or the models) it averages."""
    first = list(inspect.signature(cls.__init__).parameters)[1:2]
    return first in (["model"], ["models"])


@dataclass(frozen=True)
class Family:
    package: types.ModuleType  # whose __all__ lists the public classes
    registry: dict
    cases: dict
    is_technique: Callable[[type], bool]
    aliases: tuple[tuple[str, type], ...] = ()  # registered names that are not the class name in snake case


def subclass_of(*bases):
    return lambda cls: issubclass(cls, bases) and cls not in bases


FAMILIES = {
    # WeightPenalty is an abstract base; ActivityPenalty is a base and a technique itself
    "penalties": Family(P, P.REGISTRY, cases.PENALTY_CASES,
                        lambda cls: subclass_of(P.WeightPenalty)(cls) or issubclass(cls, P.ActivityPenalty),
                        aliases=(("activity", P.ActivityPenalty),)),
    "constraints": Family(C, C.REGISTRY, cases.CONSTRAINT_CASES, subclass_of(C.Constraint)),
    "noise": Family(N, N.REGISTRY, cases.NOISE_CASES, subclass_of(N.Stochastic)),
    "augment": Family(A, A.REGISTRY, cases.AUGMENT_CASES, subclass_of(A.Augmentation)),
    "preprocess": Family(PP, PP.REGISTRY, cases.PREPROCESS_CASES, subclass_of(Preprocessor)),
    "averaging": Family(AV, AV.REGISTRY, cases.AVERAGING_CASES,
                        lambda cls: subclass_of(AveragerConfig)(cls) or takes_a_model(cls)),
    "callbacks": Family(T, CB.REGISTRY, cases.CALLBACK_CASES, subclass_of(CB.Callback)),
}


def snake_case(name: str) -> str:
    """Keras' ``to_snake_case``: ``MixUpCutMix`` -> ``mix_up_cut_mix``, ``PCAColor`` -> ``pca_color``."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def case_mismatch(registry: dict, cases_: dict) -> tuple[list[str], list[str]]:
    """(registered names without a case, cases for names not registered)."""
    return sorted(set(registry) - set(cases_)), sorted(set(cases_) - set(registry))


def unregistered(package, is_technique, registry: dict) -> list[str]:
    """Public classes of ``package.__all__`` that are techniques of the family but not registry values."""
    registered = set(registry.values())
    return sorted(name for name in package.__all__
                  if inspect.isclass(obj := getattr(package, name)) and is_technique(obj) and obj not in registered)


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    return FAMILIES[request.param]


def test_every_registered_name_has_a_conformance_case_and_no_case_is_orphaned(family):
    missing, orphaned = case_mismatch(family.registry, family.cases)
    assert missing == [], f"registered without a conformance case in tests/_helpers/conformance_cases.py: {missing}"
    assert orphaned == [], f"conformance cases for names that are not registered: {orphaned}"
    assert all(family.cases[name] for name in family.registry), "a case with no variant tests nothing"


def test_every_public_technique_is_registered(family):
    assert unregistered(family.package, family.is_technique, family.registry) == []


def test_registry_values_are_techniques_registered_once(family):
    values = list(family.registry.values())
    assert all(inspect.isclass(v) and family.is_technique(v) for v in values), values
    assert len(set(values)) == len(values)
    assert "REGISTRY" in family.package.__all__ and family.package.REGISTRY is family.registry


def test_names_are_the_keras_snake_case_of_the_class(family):
    aliases = dict(family.aliases)
    for name, cls in family.registry.items():
        assert name == snake_case(cls.__name__) or aliases.get(name) is cls, (name, cls.__name__)


def test_every_case_builds_the_registered_class():
    """A case filed under a name must test that name's class, not a neighbour's."""
    built = {
        "penalties": lambda c: c.build(cases.penalty_model()),
        "constraints": lambda c: c(),
        "noise": lambda c: c.make(seed=0),
        "augment": lambda c: c.build(),
        "preprocess": lambda c: c.build(),
        "averaging": lambda c: c.build(cases.averaging_model()),
        "callbacks": lambda c: c.build(),
    }
    assert set(built) == set(FAMILIES)
    for key, fam in FAMILIES.items():
        for name, variants in fam.cases.items():
            for label, case in variants.items():
                assert type(built[key](case)) is fam.registry[name], (key, name, label)


# --------------------------------------------------------------------------- the checkers can fail
def test_the_checkers_find_a_missing_case_an_orphan_and_an_unregistered_technique():
    class Base: ...

    class Registered(Base): ...

    class Forgotten(Base): ...

    package = types.SimpleNamespace(__all__=["Base", "Registered", "Forgotten", "helper"], Base=Base,
                                    Registered=Registered, Forgotten=Forgotten, helper=len)
    registry = {"registered": Registered, "forgotten_case": Forgotten}
    assert case_mismatch(registry, {"registered": {}, "stale": {}}) == (["forgotten_case"], ["stale"])
    assert unregistered(package, subclass_of(Base), {"registered": Registered}) == ["Forgotten"]
    assert unregistered(package, subclass_of(Base), registry) == []


def test_a_registered_name_without_a_case_fails_its_suite():
    entries = cases.params({"covered": object, "new_technique": object}, {"covered": {"": "a case"}})
    assert [p.id for p in entries] == ["covered", "new_technique"]
    assert cases.require(entries[0].values[0]) == ("covered", "a case")
    with pytest.raises(pytest.fail.Exception, match="'new_technique' is registered but has no conformance case"):
        cases.require(entries[1].values[0])


def test_snake_case_is_keras_spelling():
    assert [snake_case(n) for n in ("MixUpCutMix", "PCAColor", "DropConnectConv2d", "EMA", "L2", "OneOf")] == [
        "mix_up_cut_mix", "pca_color", "drop_connect_conv2d", "ema", "l2", "one_of"]
