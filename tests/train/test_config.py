"""Optimizer groups, schedules, and recipe validation messages."""


import pytest
import torch
from torch import nn

from regularkit.config import from_dict, from_toml, replace, to_dict, to_toml
from regularkit.errors import RegularkitError
from regularkit.train import EarlyStoppingConfig, ModelConfig, OptimConfig, Recipe, RegConfig
from regularkit.train.config import AugmentConfig


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize("build,msg", [
    (lambda: OptimConfig(weight_decay=-1.0), "weight_decay must be >= 0, got -1.0"),
    (lambda: OptimConfig(lr=0), "lr must be > 0, got 0"),
    (lambda: ModelConfig(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (lambda: ModelConfig(dropout=-0.1), r"dropout must be in \[0, 1\), got -0.1"),
    (lambda: ModelConfig(widths=(8, 8), dropout=(0.1,)), "dropout has 1 rates but the model has 2 hidden layers"),
    (lambda: ModelConfig(kind="transformer"),
     "model.kind must be one of 'mlp', 'cnn', 'resnet', 'factory'; got 'transformer'"),
    (lambda: RegConfig(l2=-0.5), "l2 must be >= 0, got -0.5"),
    (lambda: RegConfig(max_norm=0.0), "max_norm must be > 0, got 0.0"),
    (lambda: RegConfig(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\), got 1.0"),
    (lambda: OptimConfig(epochs=2.5), "epochs must be an integer, got 2.5"),
    (lambda: ModelConfig(activation="swish"),
     "model.activation must be one of 'relu', 'tanh', 'sigmoid', 'gelu', 'leaky_relu', 'prelu', 'abs_relu', "
     "'softplus', 'selu'; got 'swish'"),
    (lambda: ModelConfig(bottleneck=0), "model.bottleneck must be >= 1, got 0"),
    (lambda: ModelConfig(bottleneck=2.5), "model.bottleneck must be an integer, got 2.5"),
])
def test_invalid_values_name_themselves(build, msg):
    with pytest.raises(RegularkitError, match=msg):
        build()


def test_recipe_round_trips_through_dict_and_toml():
    r = Recipe(name="x", model=ModelConfig(widths=(32, 16), dropout=(0.5, 0.25)),
               reg=RegConfig(l2=1e-3, max_norm=3.0, early_stopping=EarlyStoppingConfig(patience=3)))
    assert from_dict(Recipe, to_dict(r)) == r
    assert from_toml(Recipe, to_toml(r)) == r


def test_nested_and_dotted_overrides():
    r = replace(Recipe(), {"optim.lr": 0.2, "reg": {"early_stopping": {"patience": 2}}, "model.widths": [8]})
    assert r.optim.lr == 0.2 and r.model.widths == (8,)
    assert r.reg.early_stopping.patience == 2 and r.reg.early_stopping.mode == "min"
    assert from_toml(Recipe, to_toml(r)) == r


def test_unknown_field_is_named():
    with pytest.raises(RegularkitError, match="unknown field 'l3' in recipe.reg"):
        replace(Recipe(), {"reg.l3": 1.0}, where="recipe")


def test_new_hidden_units_and_bottleneck_round_trip():
    r = replace(Recipe(), {"model.activation": "abs_relu", "model.bottleneck": 8})
    assert r.model.activation == "abs_relu" and r.model.bottleneck == 8
    assert ModelConfig().bottleneck is None  # off by default
    assert from_dict(Recipe, to_dict(r)) == r and from_toml(Recipe, to_toml(r)) == r
    assert ModelConfig(kind="cnn", bottleneck=1).bottleneck == 1


def test_two_fields_that_each_build_the_training_step_are_refused():
    with pytest.raises(RegularkitError, match="sam_rho and rdrop_alpha each replace the training step"):
        RegConfig(sam_rho=0.05, rdrop_alpha=1.0)  # inside one part: its own check
    with pytest.raises(RegularkitError, match=r"^reg.sam_rho and augment.augmix_jsd each set the training step; "
                                              r"use one of them, got 2$"):
        Recipe(reg=RegConfig(sam_rho=0.05), augment=AugmentConfig(augmix=3, augmix_jsd=12.0))
    with pytest.raises(RegularkitError, match="reg.rdrop_alpha and reg.clip_grad_norm each set the training step"):
        Recipe(reg=RegConfig(rdrop_alpha=1.0, clip_grad_norm=1.0))
    Recipe(reg=RegConfig(sam_rho=0.05, sam_adaptive=True))  # an option of the step, not a second step


def test_augmentation_is_active_when_a_batch_field_is_switched_on():
    assert not AugmentConfig().active()
    assert AugmentConfig(hflip=True).active() and AugmentConfig(mixup_alpha=0.2).active()
    # evaluation (TTA), the step (AugMix's consistency needs augmix, which is on) and the model (manifold
    # mixing) are not the batch transform
    assert not AugmentConfig(tta="flips").active() and not AugmentConfig(manifold_mixup_alpha=2.0).active()
