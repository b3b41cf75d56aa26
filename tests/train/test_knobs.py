"""The metadata every recipe field carries, and the rules read from it."""
import dataclasses

import pytest

from regularkit.train.config import AugmentConfig, ModelConfig, Recipe, RegConfig
from regularkit.train.knobs import (
    ADAPT,
    ARCHITECTURE,
    LOSS,
    MODEL,
    OUTSIDE,
    REFUSED,
    Knob,
    factory_refusal,
    is_on,
    knob,
    knob_of,
    walk,
)

BASE = ModelConfig(kind="factory", factory="f.py:build")


def test_knob_stores_its_metadata_on_the_field_and_keeps_the_default():
    cls = dataclasses.make_dataclass("C", [("x", float, knob(0.5, LOSS, example=1.0))], frozen=True)
    (f,) = dataclasses.fields(cls)
    assert cls().x == 0.5 and knob_of(f) == Knob(LOSS, example=1.0)
    assert not is_on(f, 0.5) and is_on(f, 0.0)  # "on" is "differs from the default", 0 included
    tuples = dataclasses.make_dataclass("T", [("w", tuple, knob(default_factory=lambda: (1, 2), site=MODEL,
                                                                 factory=ADAPT, example=(3,)))])
    (w,) = dataclasses.fields(tuples)
    assert tuples().w == (1, 2) and not is_on(w, (1, 2)) and is_on(w, (3,))


def test_walk_names_every_field_dotted_parts_first_and_sees_a_subclass_field():
    names = [d for d, _, _, _ in walk(Recipe())]
    assert names[:4] == ["name", "description", "model", "model.kind"]
    # reg.early_stopping is None by default: its fields are walked through its type, with values None
    es = [(d, v) for d, _, v, _ in walk(Recipe()) if d.startswith("reg.early_stopping.")]
    assert ("reg.early_stopping.patience", None) in es and len(es) == 7
    extra = dataclasses.make_dataclass("RegConfig", [("dummy", float, 0.0)], bases=(RegConfig,), frozen=True)
    recipe = dataclasses.replace(Recipe(), reg=extra())
    assert "reg.dummy" in [d for d, _, _, _ in walk(recipe)]
    assert "reg.dummy" not in [d for d, _, _, _ in walk(Recipe)]  # the class itself has no such field


def test_factory_refusal_groups_architecture_changes_then_names_the_first_refused_knob():
    cfg = dataclasses.replace(BASE, widths=(8,), activation="tanh", batchnorm=True)
    assert factory_refusal(cfg, BASE) == ("it changes the architecture (model.widths, model.activation), "
                                          "which your factory decides")
    assert factory_refusal(dataclasses.replace(BASE, batchnorm=True), BASE).startswith("it adds batch norm")
    assert factory_refusal(dataclasses.replace(BASE, dropout=0.3, dropout_kind="alpha"), BASE).startswith(
        "alpha dropout belongs with SELU units")
    assert factory_refusal(dataclasses.replace(BASE, dropout=0.3, dropout_kind="classic"), BASE) is None
    assert factory_refusal(dataclasses.replace(BASE, dropconnect=0.3, init="he_normal"), BASE) is None


def test_the_rules_of_the_model_fields():
    rules = {f.name: knob_of(f).factory for f in dataclasses.fields(ModelConfig)}
    assert {n for n, r in rules.items() if r == ARCHITECTURE} == {"kind", "factory", "widths", "channels",
                                                                  "activation", "bottleneck"}
    assert {n for n, r in rules.items() if r == REFUSED} == {"batchnorm", "drop_path", "drop_block",
                                                             "drop_block_size"}
    assert OUTSIDE not in rules.values()
    image = [f.name for f in dataclasses.fields(AugmentConfig) if knob_of(f).image_only]
    assert "mixup_alpha" not in image and "manifold_mixup_alpha" not in image and "cutmix_alpha" in image


@pytest.mark.parametrize("meta, problem", [
    ({"site": "loss_term"}, "site 'loss_term' is not one of"),
    ({"site": LOSS, "factory": "maybe"}, "factory rule 'maybe' is not one of"),
    ({"site": MODEL}, "a model field needs a factory rule other than 'outside'"),
    ({"site": LOSS, "factory": ADAPT}, "a model field needs a factory rule other than 'outside'"),
    ({"site": MODEL, "factory": REFUSED}, "needs its refusal"),
    ({"site": "batch", "build": lambda r, m: None}, "build is for the sites loss, step, after_step"),
])
def test_bad_metadata_is_named(meta, problem):
    k = Knob(**{"example": 1.0, **meta})
    assert any(problem in p for p in k.problems("reg.x")), k.problems("reg.x")
    assert Knob(LOSS).problems("reg.x") == ["reg.x: give an example value that switches it on (or a note why "
                                            "it has none)"]
    assert Knob(LOSS, example=1.0).problems("reg.x") == []
