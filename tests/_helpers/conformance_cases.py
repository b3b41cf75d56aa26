"""The conformance cases: how to build every registered technique of every family, one or more variants each.

Each family's ``*_CASES`` dict has exactly the keys of that family's ``REGISTRY``
(tests/conformance/test_registries.py fails otherwise); a value maps a variant
label (``""`` for the main case) to a case.  The family suites in
tests/conformance/ parametrize over the *registry* with :func:`params`, so a
newly registered technique is run through every check the day it is registered,
and one without a case fails there as well (:func:`require`).

Every case is built fresh for each test (factories, never shared instances),
with a configuration that makes it actually do something (drop, project, move
pixels), so "output differs under another seed" and "value > 0" can be asserted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
from torch import nn

import regularkit.augment as A
import regularkit.averaging as AV
import regularkit.constraints as C
import regularkit.noise as N
import regularkit.penalties as P
import regularkit.preprocess as PP
import regularkit.train.callbacks as CB

#: number of classes of the mixing augmentations and of the targets the augment suite feeds them
K = 5

#: devices every family is checked on; CUDA only where there is one
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason="needs CUDA"))]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def params(registry: dict, cases: dict) -> list:
    """``pytest.param((name, case))`` for every registered name and each of its variants, ids ``name[-variant]``.

    A registered name without a case still gets one param, with ``case=None``,
    which :func:`require` turns into a failure naming it.
    """
    out = []
    for name in sorted(registry):
        for label, case in (cases.get(name) or {"": None}).items():
            out.append(pytest.param((name, case), id=f"{name}-{label}" if label else name))
    return out


def require(param: tuple[str, Any]) -> tuple[str, Any]:
    """The ``(name, case)`` of a :func:`params` entry; fails the test when the name has no case."""
    name, case = param
    if case is None:
        pytest.fail(f"{name!r} is registered but has no conformance case in tests/_helpers/conformance_cases.py")
    return name, case


def state_of(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter and buffer, to compare against after a call (a seeded layer's
    random stream, its ``_extra_state``, moves forward with every draw: that is not a weight mutation)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items() if not k.endswith("_extra_state")}


def assert_same_state(module: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = {k: v for k, v in module.state_dict().items() if not k.endswith("_extra_state")}
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert torch.equal(after[k], v), f"{k} was changed"


# --------------------------------------------------------------------------- penalties
def penalty_model() -> nn.Module:
    """Linear -> BatchNorm -> ReLU -> Linear: weights, biases and normalisation parameters."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


@dataclass(frozen=True)
class PenaltyCase:
    """``build(model) -> penalty``; ``weights_only``: only Linear/Conv weights get a gradient."""

    build: Callable[[nn.Module], Any]
    weights_only: bool = True


PENALTY_CASES = {
    "l2": {"": PenaltyCase(lambda m: P.L2(0.1)), "half": PenaltyCase(lambda m: P.L2(0.1, convention="half")),
           "n": PenaltyCase(lambda m: P.L2(0.1, n=7)),
           "module_types": PenaltyCase(lambda m: P.L2(0.1, modules=P.DEFAULT_MODULES)),
           "epoch": PenaltyCase(lambda m: P.L2(0.1, schedule_unit="epoch"))},
    "l1": {"": PenaltyCase(lambda m: P.L1(0.1))},
    "elastic_net": {"": PenaltyCase(lambda m: P.ElasticNet(0.1, 0.2))},
    "lp": {"": PenaltyCase(lambda m: P.Lp(3.0, 0.1)), "root": PenaltyCase(lambda m: P.Lp(3.0, 0.1, root=True))},
    "activity": {"": PenaltyCase(lambda m: P.ActivityPenalty([m[0], m[3]], l1=0.1, l2=0.01), weights_only=False),
                 "sum": PenaltyCase(lambda m: P.ActivityPenalty(m[0], l2=0.1, reduction="sum", schedule_unit="epoch"),
                                    weights_only=False)},
}

# --------------------------------------------------------------------------- constraints
CONSTRAINT_CASES = {
    "max_norm": {"": lambda: C.MaxNorm(1.0)},
    "unit_norm": {"": lambda: C.UnitNorm()},
    "non_neg": {"": lambda: C.NonNeg()},
    "min_max_norm": {"": lambda: C.MinMaxNorm(0.5, 1.0)},
    "bias_sign": {"": lambda: C.BiasSign(), "non_positive": lambda: C.BiasSign("non_positive")},
    "orthonormal": {"": lambda: C.Orthonormal()},
}


# --------------------------------------------------------------------------- noise
@dataclass(frozen=True)
class NoiseCase:
    """``build(seed=..., generator=...)``, an input, and the output eval mode must give (its test-time rule)."""

    build: Callable[..., N.Stochastic]
    x: Callable[[], torch.Tensor]
    eval_output: Callable[[nn.Module, torch.Tensor], torch.Tensor] = lambda layer, x: x

    def make(self, **kw) -> N.Stochastic:
        torch.manual_seed(0)  # layers with weights draw their initialisation from the global RNG
        return self.build(**kw)


def _randn(*shape):
    return lambda: torch.randn(*shape, generator=gen(11)) + 3.0  # no exact zeros: a dropped unit shows


def _linear_eval(layer, x):
    return nn.functional.linear(x, layer.weight, layer.bias)


def _conv_eval(layer, x):
    return nn.Conv2d.forward(layer, x)


NOISE_CASES = {
    "dropout": {"": NoiseCase(lambda **kw: N.Dropout(0.5, **kw), _randn(8, 6)),
                "channels": NoiseCase(lambda **kw: N.Dropout(0.5, noise_shape=(None, 1), **kw), _randn(64, 10)),
                "classic_channels": NoiseCase(lambda **kw: N.Dropout(0.4, classic=True, noise_shape=(None, 1), **kw),
                                              _randn(8, 6), lambda layer, x: x * 0.6)},
    "drop_connect": {"": NoiseCase(lambda **kw: N.DropConnect(0.5, **kw), _randn(8, 6)),
                     "classic": NoiseCase(lambda **kw: N.DropConnect(0.5, classic=True, **kw), _randn(8, 6),
                                          lambda layer, x: x * 0.5)},
    "drop_connect_linear": {
        "": NoiseCase(lambda **kw: N.DropConnectLinear(6, 4, p=0.5, **kw), _randn(8, 6), _linear_eval),
        "per_sample": NoiseCase(lambda **kw: N.DropConnectLinear(6, 4, p=0.5, per_sample=True, **kw), _randn(8, 6),
                                _linear_eval),
        "weights_only_relu": NoiseCase(
            lambda **kw: N.DropConnectLinear(6, 4, p=0.5, mask_bias=False, activation="relu", **kw), _randn(8, 6),
            lambda layer, x: _linear_eval(layer, x).relu())},
    "drop_connect_conv2d": {"": NoiseCase(lambda **kw: N.DropConnectConv2d(2, 3, 3, p=0.5, **kw), _randn(2, 2, 5, 5),
                                          _conv_eval),
                            "per_sample_reflect": NoiseCase(
                                lambda **kw: N.DropConnectConv2d(2, 3, 3, padding=1, padding_mode="reflect",
                                                                 bias=False, p=0.5, per_sample=True, **kw),
                                _randn(3, 2, 5, 5), _conv_eval)},
    "drop_path": {"": NoiseCase(lambda **kw: N.DropPath(0.5, **kw), _randn(32, 3)),
                  "classic": NoiseCase(lambda **kw: N.DropPath(0.5, classic=True, **kw), _randn(32, 3),
                                       lambda layer, x: x * 0.5),
                  "timm_unscaled": NoiseCase(lambda **kw: N.DropPath(0.5, scale_by_keep=False, **kw), _randn(32, 3))},
    "gaussian_noise": {"": NoiseCase(lambda **kw: N.GaussianNoise(0.5, **kw), _randn(8, 6))},
    "gaussian_dropout": {"": NoiseCase(lambda **kw: N.GaussianDropout(0.5, **kw), _randn(8, 6))},
}


# --------------------------------------------------------------------------- noise: DropBlock, alpha dropout (issue 22)
NOISE_CASES.update({
    "drop_block2d": {"": NoiseCase(lambda **kw: N.DropBlock2d(0.3, 3, **kw), _randn(4, 3, 9, 9)),
                     "exact_batchwise": NoiseCase(lambda **kw: N.DropBlock2d(0.3, 4, fast=False, batchwise=True, **kw),
                                                  _randn(4, 3, 9, 7))},
    "alpha_dropout": {"": NoiseCase(lambda **kw: N.AlphaDropout(0.3, **kw), _randn(8, 6)),
                      "channels": NoiseCase(lambda **kw: N.AlphaDropout(0.3, noise_shape=(None, None, 1, 1), **kw),
                                            _randn(8, 6, 2, 2))},
})


# --------------------------------------------------------------------------- augment
@dataclass(frozen=True)
class AugmentCase:
    """``build()``; ``coarse``: parameters are a few discrete values (two samples may coincide);
    ``pipeline``: built from other ops (their own cases check per-sample variety)."""

    build: Callable[[], A.Augmentation]
    coarse: bool = False
    pipeline: bool = False


def _pca():
    return A.PCAColor(std=0.5).fit(torch.rand(8, 3, 6, 6, generator=gen(99)))


# each op is configured so that it changes (almost) every sample
AUGMENT_CASES = {
    "horizontal_flip": {"": AugmentCase(lambda: A.HorizontalFlip(p=0.5), coarse=True)},
    "vertical_flip": {"": AugmentCase(lambda: A.VerticalFlip(p=0.5), coarse=True)},
    "random_crop": {"": AugmentCase(lambda: A.RandomCrop(padding=3)),
                    "reflect": AugmentCase(lambda: A.RandomCrop(padding=(2, 3), padding_mode="reflect")),
                    "wrap": AugmentCase(lambda: A.RandomCrop(padding=2, padding_mode="wrap"))},
    "random_affine": {"": AugmentCase(lambda: A.RandomAffine(30, 0.2, 10, (0.8, 1.2), fill_mode="reflect")),
                      "wrap": AugmentCase(lambda: A.RandomAffine(30, 0.2, fill_mode="wrap")),
                      "cval": AugmentCase(lambda: A.RandomAffine(45, fill_mode="constant", cval=0.5))},
    "random_scale_crop": {"": AugmentCase(lambda: A.RandomScaleCrop((1.0, 1.5)))},
    "color_jitter": {"": AugmentCase(lambda: A.ColorJitter(0.4, 0.4, 0.2))},
    "pca_color": {"": AugmentCase(_pca)},
    "cutout": {"": AugmentCase(lambda: A.Cutout(3))},
    "random_erasing": {"": AugmentCase(lambda: A.RandomErasing(p=1.0, scale=(0.1, 0.4))),
                       "random": AugmentCase(lambda: A.RandomErasing(p=1.0, value="random"))},
    "mix_up": {"": AugmentCase(lambda: A.MixUp(1.0, num_classes=K))},
    "cut_mix": {"": AugmentCase(lambda: A.CutMix(1.0, num_classes=K))},
    "mix_up_cut_mix": {"": AugmentCase(lambda: A.MixUpCutMix(0.8, 1.0, num_classes=K, switch_prob=0.5))},
    "random_gaussian_noise": {"": AugmentCase(lambda: A.RandomGaussianNoise(0.1))},
    "compose": {"": AugmentCase(lambda: A.Compose([A.RandomCrop(padding=2), A.HorizontalFlip(), A.MixUp(num_classes=K)],
                                                  p=[1, 1, 0.7]), pipeline=True),
                # a plain callable x -> x between ops (torch.fliplr: channels reversed, any dtype, picklable)
                "callable": AugmentCase(lambda: A.Compose([A.RandomCrop(padding=2), torch.fliplr, A.VerticalFlip()],
                                                          p=[1, 0.5, 1]), pipeline=True)},
    "one_of": {"": AugmentCase(lambda: A.OneOf([A.MixUp(num_classes=K), A.CutMix(num_classes=K)], p=[0.5, 0.5]),
                               pipeline=True)},
    "image_data_generator": {"": AugmentCase(
        lambda: A.ImageDataGenerator(rotation_range=20, width_shift_range=0.2, height_shift_range=2, shear_range=10,
                                     zoom_range=0.2, channel_shift_range=0.1, horizontal_flip=True,
                                     data_format="channels_first"), pipeline=True)},
    # --- the AutoAugment family, random resized crop, Gaussian blur (issue 22, item 2 and 7) ---
    "rand_augment": {"": AugmentCase(lambda: A.RandAugment()),
                     "bilinear": AugmentCase(lambda: A.RandAugment(3, 15, fill=0.5, interpolation="bilinear"))},
    "trivial_augment_wide": {"": AugmentCase(lambda: A.TrivialAugmentWide())},
    "auto_augment": {"": AugmentCase(lambda: A.AutoAugment()),
                     "cifar10": AugmentCase(lambda: A.AutoAugment("cifar10"))},
    "aug_mix": {"": AugmentCase(lambda: A.AugMix()),
                "fixed_depth": AugmentCase(lambda: A.AugMix(severity=5, mixture_width=2, chain_depth=2,
                                                            all_ops=False, interpolation="nearest"))},
    "random_resized_crop": {"": AugmentCase(lambda: A.RandomResizedCrop()),
                            "no_antialias": AugmentCase(lambda: A.RandomResizedCrop(scale=(0.3, 0.9),
                                                                                    antialias=False))},
    "gaussian_blur": {"": AugmentCase(lambda: A.GaussianBlur(3)),
                      "wide": AugmentCase(lambda: A.GaussianBlur((5, 9), (0.5, 3.0)))},
}


# --------------------------------------------------------------------------- preprocess
@dataclass(frozen=True)
class PreprocessCase:
    """``build()``, training data of the shape it expects, and whether it learns statistics in ``fit``."""

    build: Callable[[], Any]
    data: Callable[[], torch.Tensor] = lambda: torch.rand(40, 3, 4, 4, generator=gen(5)) * 3 + 1
    fits: bool = True


def _correlated() -> torch.Tensor:
    return torch.rand(60, 8, generator=gen(6)) @ torch.rand(8, 8, generator=gen(7))


PREPROCESS_CASES = {
    "standardize": {"": PreprocessCase(lambda: PP.Standardize()),
                    "per_feature": PreprocessCase(lambda: PP.Standardize(per="feature")),
                    "samplewise": PreprocessCase(lambda: PP.Standardize("samplewise"), fits=False)},
    "min_max": {"": PreprocessCase(lambda: PP.MinMax((-1.0, 1.0)))},
    "rescale": {"": PreprocessCase(lambda: PP.Rescale(1 / 255), fits=False)},
    "pca_whiten": {"": PreprocessCase(lambda: PP.PCAWhiten(n_components=5), _correlated)},
    # more samples (64) than features (48): a full-rank fit, without the N <= D warning
    "zca_whiten": {"": PreprocessCase(lambda: PP.ZCAWhiten(eps=1e-2),
                                      data=lambda: torch.rand(64, 3, 4, 4, generator=gen(5)) * 3 + 1)},
}


# --------------------------------------------------------------------------- averaging
def averaging_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def _members(model):
    torch.manual_seed(1)
    other = averaging_model()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn(p.shape, generator=gen(2), dtype=p.dtype))
    return [model, other.to(next(model.parameters()))]


@dataclass(frozen=True)
class AveragingCase:
    """``build(model)``; ``update(averager, model)`` feeds it the live model's current weights (one step or
    epoch); ``averaged(averager)`` is the network to evaluate; ``copies``: whether it holds its own copy of the
    weights (an :class:`Ensemble` holds its members themselves); ``target``: what ``from_config`` is given."""

    build: Callable[[nn.Module], Any]
    update: Callable[[Any, nn.Module], None]
    averaged: Callable[[Any], nn.Module]
    copies: bool = True
    target: Callable[[nn.Module], Any] = lambda model: model


AVERAGING_CASES = {
    "ema": {"": AveragingCase(lambda m: AV.EMA(m, decay=0.7), lambda a, m: a.update(m), lambda a: a.module),
            "warmup_average": AveragingCase(lambda m: AV.EMA(m, decay=0.9, warmup=True, buffers="average"),
                                            lambda a, m: a.update(m), lambda a: a.module),
            # EMA is an nn.Module whose forward is the average's: evaluated as itself, as an owner would
            "as_module": AveragingCase(lambda m: AV.EMA(m, decay=0.7), lambda a, m: a.update(m), lambda a: a)},
    "swa": {"": AveragingCase(lambda m: AV.SWA(m, start_epoch=2, lr=0.05, anneal_epochs=1),
                              lambda a, m: a.update(m), lambda a: a.module)},
    "snapshot_ensemble": {"": AveragingCase(lambda m: AV.SnapshotEnsemble(m, cycles=4, epochs_per_cycle=1, lr_max=0.1),
                                            lambda a, m: a.step(m), lambda a: a.ensemble())},
    "ensemble": {"": AveragingCase(lambda m: AV.Ensemble(_members(m)), lambda a, m: None, lambda a: a.eval(),
                                   copies=False, target=_members),
                 "logits": AveragingCase(lambda m: AV.Ensemble(_members(m), "logits"), lambda a, m: None,
                                         lambda a: a.eval(), copies=False, target=_members)},
}


# --------------------------------------------------------------------------- callbacks
@dataclass(frozen=True)
class CallbackCase:
    """``build()``, the per-epoch metrics of a run it stops before the end, and the weights the model holds
    after ``on_train_end`` when every epoch sets them to its own number (the restored epoch's)."""

    build: Callable[[], CB.Callback]
    metrics: tuple[dict[str, float], ...]
    final_weight: float


CALLBACK_CASES = {
    "early_stopping": {
        # best 0.7 at epoch 4, then two epochs without improvement: stop at 6, restore 4
        "": CallbackCase(lambda: CB.EarlyStopping(patience=2),
                         tuple({"val_loss": v} for v in (1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.71, 0.6)), 4.0),
        # epoch 1 unmonitored, 0.4 misses the baseline, 0.6 and 0.65 improve by more than min_delta, then three
        # epochs without: stop at 7, restore 4
        "max_baseline": CallbackCase(lambda: CB.EarlyStopping("val_acc", mode="max", patience=3, min_delta=0.01,
                                                              baseline=0.5, start_from_epoch=1),
                                     tuple({"val_acc": v} for v in (0.9, 0.4, 0.6, 0.65, 0.655, 0.66, 0.5, 0.7)),
                                     4.0),
    },
}
