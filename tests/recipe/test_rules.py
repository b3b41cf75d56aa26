"""Which recipes run on which data and model: refused with a reason before training, or warned about."""
import pytest
from torch import nn

from regularkit.study import StudyConfig, resolve
from regularkit.recipe.rules import check_recipes, describe_data

ALL = ("baseline", "l2", "dropout", "gaussian-noise", "mixup", "cutout", "flip-crop", "cutmix", "tta", "batchnorm",
       "drop-path", "dropconnect", "activity-l1", "dropout+max-norm", "input-dropout-free")


def recipes(cfg, names):
    return resolve([n for n in names if n != "input-dropout-free"], cfg.base_recipe())


def verdict(cfg, names, *, kind, shape, probe=None, flips=None):
    return check_recipes(recipes(cfg, names), cfg.base_recipe(), kind=kind, input_shape=shape, probe=probe,
                         flips=flips, data_name="toy")


def test_image_only_augmentations_are_refused_on_vectors_and_sequences():
    cfg = StudyConfig()
    for kind, shape in (("vectors", (64,)), ("sequences", (3, 100))):
        v = verdict(cfg, ALL, kind=kind, shape=shape)
        assert set(v.refused) == {"cutout", "flip-crop", "cutmix", "tta", "drop-path"}
        assert "augments images (augment.cutout)" in v.refused["cutout"]
        assert describe_data(kind, shape) in v.refused["cutout"]
        assert "built-in resnet, which needs images" in v.refused["drop-path"]
    assert verdict(cfg, ALL, kind="images", shape=(1, 8, 8)).refused == {}


def test_user_model_rules_refuse_architecture_knobs_and_missing_layers():
    cfg = StudyConfig(model="my_models.py:build")
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # no dropout, no hidden Linear, no activation
    v = verdict(cfg, ALL, kind="images", shape=(1, 8, 8), probe=plain)
    assert "your model has none" in v.refused["dropout"]
    assert "batch norm" in v.refused["batchnorm"]
    assert "none besides its head" in v.refused["dropconnect"]
    assert "no activation modules" in v.refused["activity-l1"]
    assert "changes the architecture" in v.refused["dropout+max-norm"]
    for ok in ("baseline", "l2", "gaussian-noise", "mixup", "cutout", "flip-crop", "cutmix", "tta"):
        assert ok not in v.refused


def test_flips_against_the_declaration_are_warned_not_refused():
    cfg = StudyConfig()
    v = verdict(cfg, ("flip-crop", "tta", "cutout"), kind="images", shape=(1, 8, 8), flips=())
    assert v.refused == {} and set(v.warnings) == {"flip-crop", "tta"}
    assert "toy declares that no flip preserves its classes" in v.warnings["flip-crop"][0]
    assert verdict(cfg, ("flip-crop",), kind="images", shape=(1, 8, 8), flips=("horizontal",)).warnings == {}
    assert verdict(cfg, ("flip-crop",), kind="images", shape=(1, 8, 8), flips=None).warnings == {}


@pytest.mark.parametrize("shape, text", [((64,), "vectors of 64 features"), ((3, 100), "sequences 3 x 100"),
                                         ((1, 8, 8), "images 1 x 8 x 8")])
def test_describe_data(shape, text):
    kind = text.split(" ")[0]
    assert describe_data(kind, shape) == text


def test_bottleneck_is_refused_where_there_is_no_dense_layer_to_factor():
    from regularkit.config import replace
    cfg = StudyConfig(model="resnet")
    r = replace(resolve(["baseline"], cfg.base_recipe())[0], {"name": "bn", "model.bottleneck": 4})
    v = check_recipes([r], cfg.base_recipe(), kind="images", input_shape=(1, 8, 8), probe=None, flips=None,
                      data_name="toy")
    assert "built-in resnet has none" in v.refused["bn"]
    cfg = StudyConfig(model="f.py:build")
    probe = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
    v = verdict(cfg, ("bottleneck",), kind="images", shape=(1, 8, 8), probe=probe)
    assert "changes the architecture (model.bottleneck)" in v.refused["bottleneck"]
