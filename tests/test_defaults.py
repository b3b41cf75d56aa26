"""Every documented default, asserted once: one test per family (penalties, constraints, noise layers,
augmentations, callbacks, losses).

Each family has a table of the defaults its docstrings and docs/ pages state (with the source they
follow: the paper, Keras, torch).  The test checks the table against (a) the constructor's signature,
(b) what an instance built with the required arguments only stores (its ``get_config()``), and (c) the
behaviour the headline default promises, against a formula or a count.  A registered technique that is
missing from its table fails (d), so a new one gets its defaults written down the day it is registered.
"""
from __future__ import annotations

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import regularkit.augment as A
import regularkit.constraints as C
import regularkit.losses as L
import regularkit.noise as N
import regularkit.penalties as P
import regularkit.train.callbacks as CB
from regularkit.penalties import keras as K
from regularkit.train import TrainState

NO_CONFIG = {"generator", "device", "dtype"}  # runtime objects, never part of a config


def signature_defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def check_family(registry: dict, documented: dict, required: dict, resolved: dict | None = None) -> None:
    """(a) signature == table, (b) the instance's config holds the table's values, (d) the table covers the
    registry.  ``resolved``: class -> {argument: value the constructor resolves the default to}."""
    resolved = resolved or {}
    assert set(registry.values()) <= set(documented), "registered without documented defaults: " + ", ".join(
        sorted(c.__name__ for c in set(registry.values()) - set(documented)))
    for cls, table in documented.items():
        assert signature_defaults(cls) == table, cls.__name__
        config = cls(**required.get(cls, {})).get_config()
        stored = {k: config[k] for k in table if k not in NO_CONFIG}
        assert stored == {k: resolved.get(cls, {}).get(k, v) for k, v in table.items() if k not in NO_CONFIG}, \
            cls.__name__


# --------------------------------------------------------------------------- penalties
# docs/penalties.md: the selection rule, per-step schedules, and the fused gradient path taken by fit
SELECTION = {"n": None, "modules": None, "pattern": None, "schedule_unit": "step", "fused": True}
PENALTIES = {
    P.L2: {"strength": 1e-4, "convention": "half", **SELECTION},  # the one L2 convention: lam/2 ||w||^2 (torch weight_decay)
    P.L1: {"strength": 1e-4, **SELECTION},
    P.ElasticNet: {"l1": 1e-4, "l2": 1e-4, "convention": "half", **SELECTION},  # the one L2 convention
    P.Lp: {"p": 2.0, "strength": 1e-4, "root": False, **SELECTION},
    P.ActivityPenalty: {"l1": 0.0, "l2": 0.0, "reduction": "mean", "schedule_unit": "step"},  # Keras 3 scaling
}
KERAS_SHORTCUTS = {K.l1: {"l1": 0.01}, K.l2: {"l2": 0.01}, K.l1_l2: {"l1": 0.01, "l2": 0.01}}  # keras.regularizers


def test_penalty_defaults():
    layer = nn.Linear(3, 2)
    check_family(P.REGISTRY, PENALTIES, {P.ActivityPenalty: {"modules": layer}})
    for fn, table in KERAS_SHORTCUTS.items():
        assert signature_defaults(fn) == table, fn.__name__
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    w = [model[0].weight.detach(), model[2].weight.detach()]  # the weights; biases are never penalized
    sq, ab = sum(float((p ** 2).sum()) for p in w), sum(float(p.abs().sum()) for p in w)
    assert P.L2()(model).item() == pytest.approx(1e-4 * sq / 2, rel=1e-6)
    assert P.L1()(model).item() == pytest.approx(1e-4 * ab, rel=1e-6)
    assert P.ElasticNet()(model).item() == pytest.approx(1e-4 * (sq / 2 + ab), rel=1e-6)
    assert P.Lp()(model).item() == pytest.approx(1e-4 * sq, rel=1e-6)
    assert K.l2()(model[0].weight).item() == pytest.approx(0.01 * float((w[0] ** 2).sum()), rel=1e-6)


# --------------------------------------------------------------------------- constraints
CONSTRAINTS = {
    C.MaxNorm: {"max_value": 2.0},                                     # Keras MaxNorm(max_value=2)
    C.UnitNorm: {}, C.NonNeg: {}, C.Orthonormal: {},
    C.MinMaxNorm: {"min_value": 0.0, "max_value": 1.0, "rate": 1.0},   # Keras MinMaxNorm
    C.BiasSign: {"sign": "non_negative"},
}
KERNELS = {C.max_norm: {"max_value": 2.0}, C.max_norm_scale: {"max_value": 2.0},
           C.min_max_norm: {"min_value": 0.0, "max_value": 1.0, "rate": 1.0},
           C.min_max_norm_scale: {"min_value": 0.0, "max_value": 1.0, "rate": 1.0},
           C.bias_sign: {"sign": "non_negative"}}


def test_constraint_defaults():
    check_family(C.REGISTRY, CONSTRAINTS, {})
    for fn, table in KERNELS.items():
        assert signature_defaults(fn) == table, fn.__name__
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4], [-1.0, 0.0]], dtype=torch.float64)  # row norms 5, 0.5, 1
    norms = C.MaxNorm()(w).norm(dim=1)
    torch.testing.assert_close(norms, torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64), rtol=1e-6, atol=0)
    torch.testing.assert_close(C.MinMaxNorm()(w).norm(dim=1), torch.tensor([1.0, 0.5, 1.0], dtype=torch.float64),
                               rtol=1e-6, atol=0)
    assert torch.equal(C.BiasSign()(w), w.clamp(min=0))
    torch.testing.assert_close(C.max_norm_scale(w).flatten(), torch.tensor([2 / 5, 1, 1], dtype=torch.float64),
                               rtol=1e-6, atol=0)
    torch.testing.assert_close(C.min_max_norm_scale(w).flatten(), torch.tensor([1 / 5, 1, 1], dtype=torch.float64),
                               rtol=1e-6, atol=0)


# --------------------------------------------------------------------------- noise layers
RANDOM = {"seed": None, "generator": None}
NOISE = {
    N.Dropout: {"p": 0.5, "noise_shape": None, "classic": False, **RANDOM},          # torch.nn.Dropout(p=0.5)
    N.DropConnect: {"p": 0.5, "classic": False, **RANDOM},
    N.DropConnectLinear: {"bias": True, "p": 0.5, "per_sample": False, "classic": False, "mask_bias": True,
                          "activation": None, "inference": "mean", "samples": 100, **RANDOM,
                          "device": None, "dtype": None},                         # docs/noise.md
    N.DropConnectConv2d: {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True,
                          "padding_mode": "zeros", "p": 0.5, "per_sample": False, "classic": False,
                          "mask_bias": True, **RANDOM, "device": None, "dtype": None},
    N.DropPath: {"p": 0.0, "scale_by_keep": None, "classic": False, **RANDOM},     # timm DropPath(drop_prob=0.)
    N.GaussianNoise: {**RANDOM}, N.GaussianDropout: {**RANDOM},
    N.DropBlock2d: {"drop_prob": 0.1, "block_size": 7, "gamma_scale": 1.0, "batchwise": False, "fast": True,
                    **RANDOM},                                                      # timm DropBlock2d
    N.AlphaDropout: {"p": 0.1, "noise_shape": None, **RANDOM},                       # Klambauer et al.: 0.05-0.1
}


def test_noise_layer_defaults():
    check_family(N.REGISTRY, NOISE, {
        N.DropConnectLinear: {"in_features": 2, "out_features": 3},
        N.DropConnectConv2d: {"in_channels": 1, "out_channels": 2, "kernel_size": 3},
        N.GaussianNoise: {"std": 0.1}, N.GaussianDropout: {"p": 0.1}},
        resolved={N.DropPath: {"scale_by_keep": True},  # None means True (inverted) unless classic
                  N.DropConnectConv2d: {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)}})  # torch's pairs
    assert signature_defaults(N.dropout) == {"training": True, "noise_shape": None, "classic": False,
                                             "generator": None}
    x = torch.ones(400, 500)
    out = N.Dropout(seed=0)(x)
    assert abs(float((out == 0).float().mean()) - 0.5) < 0.006 and set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(N.DropPath(seed=0)(x), x)  # p = 0: nothing dropped in training
    assert torch.equal(N.dropout(x, 0.5, generator=torch.Generator().manual_seed(0)),
                       N.dropout(x, 0.5, True, generator=torch.Generator().manual_seed(0)))  # training by default


# --------------------------------------------------------------------------- augmentations
MIXING = {"p": 1.0, "label_smoothing": 0.0, "per_sample": True, "pairing": "shuffle", "seed": None}
AUGMENTATIONS = {
    A.HorizontalFlip: {"p": 0.5, "seed": None}, A.VerticalFlip: {"p": 0.5, "seed": None},
    A.RandomCrop: {"size": None, "padding": 0, "padding_mode": "constant", "fill": 0.0, "seed": None},
    A.RandomAffine: {"degrees": 0.0, "translate": 0.0, "shear": 0.0, "scale": (1.0, 1.0), "fill_mode": "constant",
                     "cval": 0.0, "interpolation": "bilinear", "seed": None},
    A.RandomScaleCrop: {"scale": (1.0, 1.25), "fill_mode": "nearest", "cval": 0.0, "interpolation": "bilinear",
                        "seed": None},
    A.ColorJitter: {"brightness": 0.0, "contrast": 0.0, "channel_shift": 0.0, "per_channel_shift": True,
                    "clip": None, "seed": None},
    A.PCAColor: {"std": 0.1, "literal": False, "seed": None},                          # Krizhevsky et al. 2012
    A.Cutout: {"p": 1.0, "value": 0.0, "seed": None},                                  # DeVries & Taylor 2017
    A.RandomErasing: {"p": 0.5, "scale": (0.02, 0.4), "ratio": (0.3, 1 / 0.3), "value": 0.0,
                      "seed": None},                                                   # Zhong et al. 2017
    A.MixUp: {"alpha": 1.0, **MIXING, "targets": "classes"}, A.CutMix: {"alpha": 1.0, **MIXING, "targets": "classes"},
    A.MixUpCutMix: {"mixup_alpha": 1.0, "cutmix_alpha": 1.0, "switch_prob": 0.5, **MIXING},  # timm's Mixup
    A.RandomGaussianNoise: {"std": 0.1, "p": 1.0, "clip": None, "seed": None},
    A.Compose: {"p": None, "seed": None}, A.OneOf: {"p": None, "per_sample": True, "seed": None},
    A.RandAugment: {"num_ops": 2, "magnitude": 9, "num_magnitude_bins": 31, "fill": 0.0,
                    "interpolation": "nearest", "seed": None},                         # torchvision v2 (Cubuk et al. 2020)
    A.TrivialAugmentWide: {"num_magnitude_bins": 31, "fill": 0.0, "interpolation": "nearest",
                           "seed": None},                                              # Müller & Hutter 2021
    A.AutoAugment: {"policy": "imagenet", "fill": 0.0, "interpolation": "nearest", "seed": None},  # torchvision v2
    A.AugMix: {"severity": 3, "mixture_width": 3, "chain_depth": -1, "alpha": 1.0, "all_ops": True, "fill": 0.0,
               "interpolation": "bilinear", "seed": None},                             # torchvision v2 AugMix
    A.RandomResizedCrop: {"size": None, "scale": (0.08, 1.0), "ratio": (3 / 4, 4 / 3), "antialias": True,
                          "seed": None},                                               # Szegedy et al. 2015; torchvision
    A.GaussianBlur: {"kernel_size": 3, "sigma": (0.1, 2.0), "seed": None},             # torchvision v2 GaussianBlur
    A.ImageDataGenerator: {                                                            # keras ImageDataGenerator
        "featurewise_center": False, "samplewise_center": False, "featurewise_std_normalization": False,
        "samplewise_std_normalization": False, "zca_whitening": False, "zca_epsilon": 1e-6, "rotation_range": 0.0,
        "width_shift_range": 0.0, "height_shift_range": 0.0, "shear_range": 0.0, "zoom_range": 0.0,
        "channel_shift_range": 0.0, "fill_mode": "nearest", "cval": 0.0, "horizontal_flip": False,
        "vertical_flip": False, "rescale": None, "preprocessing_function": None, "data_format": "channels_last",
        "seed": None},
}


def test_augmentation_defaults():
    flip = A.HorizontalFlip()
    check_family(A.REGISTRY, AUGMENTATIONS, {
        A.Cutout: {"size": 2}, A.MixUp: {"num_classes": 3}, A.CutMix: {"num_classes": 3},
        A.MixUpCutMix: {"num_classes": 3}, A.Compose: {"ops": [flip]}, A.OneOf: {"ops": [flip]}})
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4000, 1, 32, 64, generator=g) + 1.0
    erased = (A.RandomErasing()(x, generator=g) != x).flatten(1).any(1)
    assert abs(float(erased.float().mean()) - 0.5) < 4 * math.sqrt(0.25 / 4000)  # p = 0.5
    cut = A.Cutout(4).make_params(x[:500], g)
    assert ((cut["bottom"] - cut["top"]) > 0).all()  # p = 1: every sample gets its (clipped) square
    lam = A.MixUp(num_classes=3).make_params(torch.empty(20000, 1, 1, 1), g)["lam"]
    assert abs(float(lam.mean()) - 0.5) < 0.01 and abs(float(lam.var()) - 1 / 12) < 0.005  # Beta(1, 1): uniform


# --------------------------------------------------------------------------- callbacks
CALLBACKS = {CB.EarlyStopping: {"monitor": "val_loss", "mode": "min", "patience": 5, "min_delta": 0.0,
                                "restore_best_weights": True, "start_from_epoch": 0, "baseline": None}}


def test_callback_defaults():
    check_family(CB.REGISTRY, CALLBACKS, {})
    es, model = CB.EarlyStopping(), nn.Linear(1, 1)
    state = TrainState(model=model)
    assert (state.epoch, state.metrics, state.history) == (0, {}, [])
    es.on_train_begin(state)
    stop = None
    for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.6, 0.7, 0.8, 0.9, 1.0], 1):
        state.epoch, state.metrics = epoch, {"val_loss": loss}
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        if es.on_epoch_end(state).stop:
            stop = epoch
            break
    es.on_train_end(state)
    assert stop == 7 and es.best_epoch == 2  # five epochs without a lower val_loss after epoch 2
    assert model.weight.item() == 2.0  # the best weights are restored by default


# --------------------------------------------------------------------------- losses
LOSSES = {
    L.cross_entropy: {"label_smoothing": 0.0, "formula": "uniform", "confidence_penalty": 0.0, "reduction": "mean"},
    L.CrossEntropy: {"label_smoothing": 0.0, "formula": "uniform", "confidence_penalty": 0.0, "reduction": "mean"},
    L.entropy: {"reduction": "none"}, L.confidence_penalty: {"beta": 0.1, "reduction": "mean"},
    L.multiclass_hinge: {"margin": 1.0, "reduction": "mean"},  # cs231n's delta = 1 (docs/losses.md)
    L.MultiClassHinge: {"margin": 1.0, "reduction": "mean"},
    L.binary_cross_entropy_with_logits: {"reduction": "mean"}, L.mse: {"reduction": "mean"},
    L.mae: {"reduction": "mean"}, L.kl_divergence: {"reduction": "mean"},
}


def test_loss_defaults():
    for fn, table in LOSSES.items():
        assert signature_defaults(fn) == table, fn.__name__
    ce, hinge = L.CrossEntropy(), L.MultiClassHinge()
    assert (ce.label_smoothing, ce.formula, ce.reduction, hinge.margin, hinge.reduction) == (
        0.0, "uniform", "mean", 1.0, "mean")
    logits, y = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3, 0, 1])
    torch.testing.assert_close(ce(logits, y), F.cross_entropy(logits, y))  # no smoothing, the mean over examples
    torch.testing.assert_close(L.cross_entropy(logits, y), F.cross_entropy(logits, y))
    scores = torch.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])  # deck 003's example
    classes = torch.tensor([0, 1, 2])
    torch.testing.assert_close(hinge(scores, classes), torch.tensor((2.9 + 0.0 + 12.9) / 3))
    torch.testing.assert_close(L.multiclass_hinge(scores, classes), torch.tensor((2.9 + 0.0 + 12.9) / 3))
