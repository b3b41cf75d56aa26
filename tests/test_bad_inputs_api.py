"""Bad input to the public API: one table, one contract (issue 14).

Every row is ``(id, call, expected message regex)``.  The contract for each:
``call()`` raises :class:`~regularkit.errors.RegularkitError` (never a raw torch or
Python error, never a silent acceptance), its message matches the regex (it names
the argument and the value received) and is one line, and the shared inputs the
calls are given (tensors, arrays, a model) are left exactly as they were.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from regularkit.augment import Cutout, HorizontalFlip, MixUp, RandomCrop, RandomErasing
from regularkit.constraints import BiasSign, MaxNorm, MinMaxNorm
from regularkit.data.arrays import from_arrays, from_torch
from regularkit.data.datasets import limit_train_set, load_dataset, load_npz
from regularkit.data.sampling import kfold_indices, stratified_subset, train_val_split
from regularkit.data.schema import Dataset
from regularkit.data.splits import make_splits
from regularkit.errors import RegularkitError
from regularkit.losses import CrossEntropy, cross_entropy, multiclass_hinge
from regularkit.metrics.calibration import calibration_bins, expected_calibration_error
from regularkit.models import CNN, MLP, LowRankLinear, ResNet, build_model
from regularkit.noise import DropConnect, Dropout, DropPath, GaussianNoise
from regularkit.penalties import L1, L2, ElasticNet, Lp
from regularkit.preprocess import MinMax, PCAWhiten, Rescale, Standardize, ZCAWhiten
from regularkit.search.distributions import Categorical, Int, LogUniform, Uniform
from regularkit.search.space import SearchSpace
from regularkit.targets import check_class_indices, smooth_targets, to_soft_targets
from regularkit.train import EarlyStopping, evaluate, fit
from regularkit.train.config import (
    AugmentConfig,
    EarlyStoppingConfig,
    ModelConfig,
    OptimConfig,
    Recipe,
    RegConfig,
)

# --------------------------------------------------------------------------- shared inputs
# Every object a row passes in is made here, once, and registered: the test compares them
# before and after each call, so a refused call that modified its input fails the row.
SHARED: list = []


def shared(obj):
    SHARED.append(obj)
    return obj


def _with(t, index, value):
    t = t.clone() if isinstance(t, torch.Tensor) else t.copy()
    t[index] = value
    return t


_g = torch.Generator().manual_seed(0)
X = shared(torch.randn(12, 4, generator=_g))
Y = shared(torch.arange(12) % 3)
X_NAN = shared(_with(X, (1, 2), math.nan))
X_INF = shared(_with(X, (0, 0), math.inf))
X_WIDE = shared(torch.randn(12, 5, generator=_g))
X_LONG = shared(torch.ones(12, 4, dtype=torch.long))
X_EMPTY = shared(torch.zeros(0, 4))
Y_EMPTY = shared(torch.zeros(0, dtype=torch.long))
Y_BIG = shared(Y + 5)
Y_NEG = shared(Y - 1)
Y_FLOAT = shared(Y.float())
Y_SOFT5 = shared(torch.full((12, 5), 0.2))
Y_SOFT_NAN = shared(_with(torch.full((12, 3), 1 / 3), (0, 0), math.nan))
Y_ONEHOT_LONG = shared(torch.nn.functional.one_hot(Y, 3))
Y_3D = shared(torch.zeros(12, 3, 1))
torch.manual_seed(0)
MODEL = shared(MLP((4,), 3, widths=(8,)))

P = shared(torch.tensor([[0.7, 0.3], [0.2, 0.8]]))
P_NAN = shared(torch.tensor([[math.nan, 0.5], [0.5, 0.5]]))
P_SUM = shared(torch.tensor([[0.7, 0.7], [0.2, 0.8]]))
P_NEG = shared(torch.tensor([[1.2, -0.2], [0.2, 0.8]]))
Y2 = shared(torch.tensor([0, 1]))
LOGITS = shared(torch.randn(3, 4, generator=_g))
Y3 = shared(torch.tensor([0, 1, 2]))

_rng = np.random.default_rng(0)
NX = shared(_rng.random((6, 2), dtype=np.float32))
NY = shared(np.array([0, 1, 0, 1, 0, 1]))
NXT = shared(_rng.random((2, 2), dtype=np.float32))
NYT = shared(np.array([0, 1]))
NX_NAN = shared(_with(NX, (0, 0), np.nan))
NXT_INF = shared(_with(NXT, (1, 1), np.inf))
NY_BIG = shared(_with(NY, 5, 5))
NYT_NEG = shared(_with(NYT, 1, -1))
NY_FLOAT = shared(NY.astype(np.float64))
NY_ONE = shared(np.zeros(6, dtype=np.int64))
NX10 = shared(_rng.random((10, 2), dtype=np.float32))
NX10_NAN = shared(_with(NX10, (3, 1), np.nan))
NY10 = shared(np.arange(10) % 2)


def run_fit(x=X, y=Y, model=MODEL, **kw):
    args = {"optimizer": torch.optim.SGD(model.parameters(), lr=0.1), "epochs": 1, "batch_size": 4, **kw}
    fit(model, (x, y), **args)


def dataset(**kw):
    args = {"name": "t", "x_train": NX, "y_train": NY, "x_test": NXT, "y_test": NYT, "num_classes": 2, **kw}
    return Dataset(**args)


def valid_dataset():
    """A dataset of copies: construction marks its arrays read-only, and the shared ones must stay as they are."""
    return dataset(x_train=NX.copy(), y_train=NY.copy(), x_test=NXT.copy(), y_test=NYT.copy())


TEST_SPLIT = r"must not watch the test split: early stopping \(or any choice\) monitoring the test split is refused"
LABEL_KIND = r"y must be class indices \(N,\) of an integer dtype or soft targets N x K of a float dtype"

# --------------------------------------------------------------------------- the table
ROWS = [
    # ---- fit
    ("fit-empty-dataset", lambda: run_fit(X_EMPTY, Y_EMPTY), r"train: x and y are empty \(0 rows\)"),
    ("fit-nan-x", lambda: run_fit(X_NAN), r"train: x holds 1 non-finite values \(NaN or inf\)"),
    ("fit-inf-x", lambda: run_fit(X_INF), r"train: x holds 1 non-finite values"),
    ("fit-nan-soft-targets", lambda: run_fit(y=Y_SOFT_NAN), r"train: y holds 1 non-finite values"),
    ("fit-nan-val-x", lambda: run_fit(eval_sets={"val": (X_NAN, Y)}), r"val: x holds 1 non-finite values"),
    ("fit-labels-out-of-range", lambda: run_fit(y=Y_BIG),
     r"train: y holds class index 7, out of range for the model's 3 outputs"),
    ("fit-labels-negative", lambda: run_fit(y=Y_NEG), r"train: y holds class index -1, out of range"),
    ("fit-val-labels-out-of-range", lambda: run_fit(eval_sets={"val": (X, Y_BIG)}),
     r"val: y holds class index 7, out of range for the model's 3 outputs"),
    ("fit-float-labels", lambda: run_fit(y=Y_FLOAT), LABEL_KIND + r", got shape \(12,\) and dtype torch.float32"),
    ("fit-2d-integer-labels", lambda: run_fit(y=Y_ONEHOT_LONG), LABEL_KIND + r", got shape \(12, 3\)"),
    ("fit-3d-labels", lambda: run_fit(y=Y_3D), LABEL_KIND + r", got shape \(12, 3, 1\)"),
    ("fit-soft-targets-wrong-k", lambda: run_fit(y=Y_SOFT5),
     r"train: soft targets y have 5 columns but the model gives 3 outputs"),
    ("fit-length-mismatch", lambda: run_fit(y=Y[:5]), r"train: x has 12 rows but y has 5"),
    ("fit-val-length-mismatch", lambda: run_fit(eval_sets={"val": (X, Y[:3])}), r"val: x has 12 rows but y has 3"),
    ("fit-wrong-input-shape", lambda: run_fit(X_WIDE),
     r"train: the model fails on a batch of shape \(4, 5\) \(samples of shape \(5,\), dtype torch.float32\): "
     r"RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    ("fit-wrong-input-dtype", lambda: run_fit(X_LONG), r"train: the model fails on a batch of shape \(4, 4\) "
                                                       r"\(samples of shape \(4,\), dtype torch.int64\)"),
    ("fit-epochs-str", lambda: run_fit(epochs="3"), r"epochs must be an integer, got '3'"),
    ("fit-epochs-float", lambda: run_fit(epochs=2.0), r"epochs must be an integer, got 2.0"),
    ("fit-epochs-zero", lambda: run_fit(epochs=0), r"epochs must be >= 1, got 0"),
    ("fit-batch-size-bool", lambda: run_fit(batch_size=True), r"batch_size must be an integer, got True"),
    ("fit-batch-size-str", lambda: run_fit(batch_size="32"), r"batch_size must be an integer, got '32'"),
    ("fit-batch-size-zero", lambda: run_fit(batch_size=0), r"batch_size must be >= 1, got 0"),
    ("fit-optimizer-none", lambda: run_fit(optimizer=None), r"optimizer must be a torch.optim.Optimizer, got None"),
    ("fit-optimizer-name", lambda: run_fit(optimizer="sgd"), r"optimizer must be a torch.optim.Optimizer, got 'sgd'"),
    ("fit-optimizer-class", lambda: run_fit(optimizer=torch.optim.SGD),
     r"optimizer must be a torch.optim.Optimizer, got the class SGD"),
    ("fit-scheduler-not-one", lambda: run_fit(scheduler=0.5), r"scheduler must have a step\(\) method .*got 0.5"),
    ("fit-loss-fn-not-callable", lambda: run_fit(loss_fn="cross_entropy"),
     r"loss_fn must be callable, got 'cross_entropy'"),
    ("fit-loss-terms-not-callable", lambda: run_fit(loss_terms=[1.0]), r"loss_terms\[0\] must be callable, got 1.0"),
    ("fit-loss-terms-not-a-list", lambda: run_fit(loss_terms=L2(1e-4)),
     r"loss_terms must be a list of callables term\(model\) -> tensor, got a L2"),
    ("fit-after-step-not-callable", lambda: run_fit(after_step=[3]), r"after_step\[0\] must be callable, got 3"),
    ("fit-batch-transform-not-callable", lambda: run_fit(batch_transform="mixup"),
     r"batch_transform must be callable, got 'mixup'"),
    ("fit-callback-not-one", lambda: run_fit(callbacks=["early_stopping"]),
     r"callbacks\[0\] must be a callback \(on_train_begin, on_epoch_end, on_train_end\), got 'early_stopping'"),
    ("fit-callbacks-not-a-list", lambda: run_fit(callbacks=EarlyStopping()),
     r"callbacks must be a list of callbacks, got an EarlyStopping"),
    ("fit-on-epoch-not-callable", lambda: run_fit(on_epoch=1), r"on_epoch must be callable, got 1"),
    ("fit-seed-str", lambda: run_fit(seed="0"), r"seed must be an integer, got '0'"),
    ("fit-drop-last-str", lambda: run_fit(drop_last="false"), r"drop_last must be true or false, got 'false'"),
    ("fit-channels-last-str", lambda: run_fit(channels_last="no"), r"channels_last must be true or false, got 'no'"),
    ("fit-max-loss-str", lambda: run_fit(max_loss="1e4"), r"max_loss must be a number, got '1e4'"),
    ("fit-max-loss-negative", lambda: run_fit(max_loss=-1.0), r"max_loss must be > 0, got -1.0"),
    ("fit-precision", lambda: run_fit(precision="fp8"), r"precision must be one of 'fp32', 'bf16', 'fp16'; got 'fp8'"),
    ("fit-device-name", lambda: run_fit(device="gpu"),
     r"device must be a torch.device or a name like 'cpu' or 'cuda:0', got 'gpu'"),
    ("fit-x-numpy", lambda: run_fit(NX10),
     r"train: x must be a torch.Tensor or a streamed split \(regularkit.data.streaming.Streamed\), got a ndarray"),
    ("fit-train-not-a-pair", lambda: fit(MODEL, X, optimizer=torch.optim.SGD(MODEL.parameters(), lr=0.1), epochs=1,
                                         batch_size=4), r"train must be a pair \(x, y\) of tensors, got a Tensor"),
    ("fit-eval-sets-not-a-dict", lambda: run_fit(eval_sets=[(X, Y)]),
     r"eval_sets must be a dict \{split name: \(x, y\)\}, got a list"),
    ("fit-eval-set-name", lambda: run_fit(eval_sets={1: (X, Y)}), r"eval_sets keys must be split names .*got 1"),
    ("fit-model-none", lambda: fit(None, (X, Y), optimizer=torch.optim.SGD(MODEL.parameters(), lr=0.1), epochs=1,
                                   batch_size=4), r"model must be a torch.nn.Module, got None"),
    # ---- evaluate
    ("evaluate-empty", lambda: evaluate(MODEL, X_EMPTY, Y_EMPTY), r"evaluate: x and y are empty \(0 rows\)"),
    ("evaluate-nan", lambda: evaluate(MODEL, X_NAN, Y), r"evaluate: x holds 1 non-finite values"),
    ("evaluate-labels-out-of-range", lambda: evaluate(MODEL, X, Y_BIG),
     r"evaluate: y holds class index 7, out of range for the model's 3 outputs"),
    ("evaluate-float-labels", lambda: evaluate(MODEL, X, Y_FLOAT), r"evaluate: " + LABEL_KIND),
    ("evaluate-length-mismatch", lambda: evaluate(MODEL, X, Y[:3]), r"evaluate: x has 12 rows but y has 3"),
    ("evaluate-wrong-input-shape", lambda: evaluate(MODEL, X_WIDE, Y),
     r"evaluate: the model fails on a batch of shape \(12, 5\) \(samples of shape \(5,\)"),
    ("evaluate-batch-size-str", lambda: evaluate(MODEL, X, Y, batch_size="8"),
     r"batch_size must be an integer, got '8'"),
    ("evaluate-batch-size-zero", lambda: evaluate(MODEL, X, Y, batch_size=0), r"batch_size must be >= 1, got 0"),
    ("evaluate-model-none", lambda: evaluate(None, X, Y), r"model must be a torch.nn.Module, got None"),
    ("evaluate-device", lambda: evaluate(MODEL, X, Y, device=3.5), r"device must be a torch.device .*got 3.5"),
    # ---- EarlyStopping
    ("early-stopping-baseline-str", lambda: EarlyStopping(baseline="x"), r"baseline must be a number, got 'x'"),
    ("early-stopping-baseline-bool", lambda: EarlyStopping(baseline=True), r"baseline must be a number, got True"),
    ("early-stopping-baseline-nan", lambda: EarlyStopping(baseline=math.nan), r"baseline must be finite, got nan"),
    ("early-stopping-monitor-int", lambda: EarlyStopping(monitor=3), r"monitor must be a non-empty string, got 3"),
    ("early-stopping-monitor-empty", lambda: EarlyStopping(monitor=""), r"monitor must be a non-empty string, got ''"),
    ("early-stopping-monitor-test-loss", lambda: EarlyStopping(monitor="test_loss"),
     r"monitor " + TEST_SPLIT + r", got 'test_loss'"),
    ("early-stopping-monitor-test-error", lambda: EarlyStopping(monitor="test_error", mode="min"),
     r"monitor " + TEST_SPLIT + r", got 'test_error'"),
    ("early-stopping-mode", lambda: EarlyStopping(mode="minimum"), r"mode must be one of 'min', 'max'; got 'minimum'"),
    ("early-stopping-patience-str", lambda: EarlyStopping(patience="3"), r"patience must be an integer, got '3'"),
    ("early-stopping-patience-float", lambda: EarlyStopping(patience=2.5), r"patience must be an integer, got 2.5"),
    ("early-stopping-patience-negative", lambda: EarlyStopping(patience=-1), r"patience must be >= 0, got -1"),
    ("early-stopping-min-delta-str", lambda: EarlyStopping(min_delta="0.1"), r"min_delta must be a number, got '0.1'"),
    ("early-stopping-min-delta-negative", lambda: EarlyStopping(min_delta=-0.1), r"min_delta must be >= 0, got -0.1"),
    ("early-stopping-restore-str", lambda: EarlyStopping(restore_best_weights="false"),
     r"restore_best_weights must be true or false, got 'false'"),
    ("early-stopping-start-str", lambda: EarlyStopping(start_from_epoch="1"),
     r"start_from_epoch must be an integer, got '1'"),
    # ---- ModelConfig
    ("model-config-kind", lambda: ModelConfig(kind="rnn"), r"model.kind must be one of .*; got 'rnn'"),
    ("model-config-factory-int", lambda: ModelConfig(kind="factory", factory=3),
     r"model.factory must be a non-empty string, got 3"),
    ("model-config-widths-int", lambda: ModelConfig(widths=64), r"model.widths must be a non-empty list of integers, "
                                                               r"got 64"),
    ("model-config-widths-empty", lambda: ModelConfig(widths=()), r"model.widths must be a non-empty list .*got \(\)"),
    ("model-config-widths-zero", lambda: ModelConfig(widths=(0,)), r"model.widths must be >= 1, got 0"),
    ("model-config-widths-negative", lambda: ModelConfig(widths=(-3,)), r"model.widths must be >= 1, got -3"),
    ("model-config-widths-float", lambda: ModelConfig(widths=(64.0,)), r"model.widths must be an integer, got 64.0"),
    ("model-config-channels-bool", lambda: ModelConfig(channels=(True,)),
     r"model.channels must be an integer, got True"),
    ("model-config-channels-empty", lambda: ModelConfig(channels=()), r"model.channels must be a non-empty list"),
    ("model-config-activation", lambda: ModelConfig(activation="swish"), r"model.activation must be one of .*'swish'"),
    ("model-config-dropout-str", lambda: ModelConfig(dropout="0.5"), r"dropout must be a number, got '0.5'"),
    ("model-config-dropout-one", lambda: ModelConfig(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    ("model-config-dropout-rates", lambda: ModelConfig(widths=(8, 8), dropout=(0.1,)),
     r"dropout has 1 rates but the model has 2 hidden layers"),
    ("model-config-batchnorm-str", lambda: ModelConfig(batchnorm="false"),
     r"model.batchnorm must be true or false, got 'false'"),
    ("model-config-batchnorm-int", lambda: ModelConfig(batchnorm=1), r"model.batchnorm must be true or false, got 1"),
    ("model-config-init", lambda: ModelConfig(init="xavier"),
     r"model.init must be one of 'glorot_normal'.*; got 'xavier'"),
    ("model-config-bias-init-str", lambda: ModelConfig(bias_init="0.1"), r"bias_init must be a number, got '0.1'"),
    ("model-config-bottleneck-str", lambda: ModelConfig(bottleneck="4"),
     r"model.bottleneck must be an integer, got '4'"),
    ("model-config-dropout-kind", lambda: ModelConfig(dropout_kind="old"),
     r"model.dropout_kind must be one of .*'old'"),
    # ---- OptimConfig
    ("optim-config-optimizer", lambda: OptimConfig(optimizer="adam"),
     r"optimizer must be one of 'sgd', 'adamw'; got 'adam'"),
    ("optim-config-lr-str", lambda: OptimConfig(lr="0.1"), r"lr must be a number, got '0.1'"),
    ("optim-config-lr-bool", lambda: OptimConfig(lr=True), r"lr must be a number, got True"),
    ("optim-config-lr-negative", lambda: OptimConfig(lr=-0.1), r"lr must be > 0, got -0.1"),
    ("optim-config-momentum-str", lambda: OptimConfig(momentum="0.9"), r"momentum must be a number, got '0.9'"),
    ("optim-config-weight-decay-negative", lambda: OptimConfig(weight_decay=-1.0), r"weight_decay must be >= 0"),
    ("optim-config-epochs-float", lambda: OptimConfig(epochs=3.0), r"epochs must be an integer, got 3.0"),
    ("optim-config-batch-size-bool", lambda: OptimConfig(batch_size=True), r"batch_size must be an integer, got True"),
    ("optim-config-schedule", lambda: OptimConfig(schedule="linear"), r"schedule must be one of .*; got 'linear'"),
    ("optim-config-step-size-zero", lambda: OptimConfig(step_size=0), r"step_size must be >= 1, got 0"),
    ("optim-config-gamma-str", lambda: OptimConfig(gamma="0.1"), r"gamma must be a number, got '0.1'"),
    # ---- RegConfig / EarlyStoppingConfig
    ("reg-config-l2-str", lambda: RegConfig(l2="1e-4"), r"l2 must be a number, got '1e-4'"),
    ("reg-config-l1-bool", lambda: RegConfig(l1=True), r"l1 must be a number, got True"),
    ("reg-config-max-norm-zero", lambda: RegConfig(max_norm=0.0), r"max_norm must be > 0, got 0.0"),
    ("reg-config-label-smoothing-str", lambda: RegConfig(label_smoothing="0.1"),
     r"label_smoothing must be a number, got '0.1'"),
    ("reg-config-label-smoothing-one", lambda: RegConfig(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\)"),
    ("reg-config-early-stopping-dict", lambda: RegConfig(early_stopping={"patience": 3}),
     r"early_stopping must be an EarlyStoppingConfig or None, got a dict"),
    ("reg-config-early-stopping-true", lambda: RegConfig(early_stopping=True),
     r"early_stopping must be an EarlyStoppingConfig or None, got True"),
    ("reg-config-ema-decay-one", lambda: RegConfig(ema_decay=1.0), r"ema_decay must be in \(0.0, 1.0\), got 1.0"),
    ("reg-config-snapshot-cycles-float", lambda: RegConfig(snapshot_cycles=2.0),
     r"snapshot_cycles must be an integer, got 2.0"),
    ("early-stopping-config-monitor-test-loss", lambda: EarlyStoppingConfig(monitor="test_loss"),
     r"early_stopping.monitor " + TEST_SPLIT + r", got 'test_loss'"),
    ("early-stopping-config-monitor-test-error", lambda: EarlyStoppingConfig(monitor="test_error"),
     r"early_stopping.monitor " + TEST_SPLIT + r", got 'test_error'"),
    ("early-stopping-config-monitor-int", lambda: EarlyStoppingConfig(monitor=1),
     r"early_stopping.monitor must be a non-empty string, got 1"),
    ("early-stopping-config-mode", lambda: EarlyStoppingConfig(mode="up"), r"early_stopping.mode must be one of"),
    ("early-stopping-config-patience-str", lambda: EarlyStoppingConfig(patience="5"),
     r"patience must be an integer, got '5'"),
    ("early-stopping-config-baseline-str", lambda: EarlyStoppingConfig(baseline="x"),
     r"early_stopping.baseline must be a number, got 'x'"),
    ("early-stopping-config-restore-str", lambda: EarlyStoppingConfig(restore_best_weights="false"),
     r"early_stopping.restore_best_weights must be true or false, got 'false'"),
    # ---- AugmentConfig / Recipe
    ("augment-config-hflip-str", lambda: AugmentConfig(hflip="false"), r"hflip must be true or false, got 'false'"),
    ("augment-config-hflip-int", lambda: AugmentConfig(hflip=1), r"hflip must be true or false, got 1"),
    ("augment-config-crop-padding-str", lambda: AugmentConfig(crop_padding="0.1"),
     r"crop_padding must be a number, got '0.1'"),
    ("augment-config-padding-mode", lambda: AugmentConfig(padding_mode="mirror"), r"padding_mode must be one of"),
    ("augment-config-zoom-one", lambda: AugmentConfig(zoom=1.0), r"zoom must be in \[0.0, 1.0\), got 1.0"),
    ("augment-config-tta", lambda: AugmentConfig(tta=True), r"tta must be one of .*; got True"),
    ("recipe-name-int", lambda: Recipe(name=1), r"recipe.name must be a non-empty string, got 1"),
    ("recipe-name-empty", lambda: Recipe(name=""), r"recipe.name must be a non-empty string, got ''"),
    ("recipe-description-int", lambda: Recipe(description=3), r"recipe.description must be a string, got 3"),
    ("recipe-model-dict", lambda: Recipe(model={"kind": "mlp"}), r"recipe.model must be a ModelConfig, got a dict"),
    ("recipe-reg-str", lambda: Recipe(reg="l2"), r"recipe.reg must be a RegConfig, got 'l2'"),
    ("recipe-augment-wrong-config", lambda: Recipe(augment=OptimConfig()),
     r"recipe.augment must be an AugmentConfig, got an OptimConfig"),
    # ---- models
    ("mlp-widths-zero", lambda: MLP((4,), 3, widths=(0,)), r"widths must be >= 1, got 0"),
    ("mlp-widths-empty", lambda: MLP((4,), 3, widths=()), r"widths must be a non-empty list of integers, got \(\)"),
    ("mlp-widths-negative", lambda: MLP((4,), 3, widths=(-3,)), r"widths must be >= 1, got -3"),
    ("mlp-widths-float", lambda: MLP((4,), 3, widths=(8.0,)), r"widths must be an integer, got 8.0"),
    ("mlp-num-classes-zero", lambda: MLP((4,), 0), r"num_classes must be >= 1, got 0"),
    ("mlp-num-classes-str", lambda: MLP((4,), "10"), r"num_classes must be an integer, got '10'"),
    ("mlp-input-shape-empty", lambda: MLP((), 3), r"input_shape must be a non-empty list of integers, got \(\)"),
    ("mlp-input-shape-negative", lambda: MLP((-4,), 3), r"input_shape must be >= 1, got -4"),
    ("mlp-input-shape-float", lambda: MLP((4.0,), 3), r"input_shape must be an integer, got 4.0"),
    ("mlp-input-shape-int", lambda: MLP(4, 3), r"input_shape must be a non-empty list of integers, got 4"),
    ("mlp-dropout-one", lambda: MLP((4,), 3, widths=(8,), dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    ("mlp-dropout-str", lambda: MLP((4,), 3, dropout="0.5"), r"dropout must be a number, got '0.5'"),
    ("mlp-dropout-rates", lambda: MLP((4,), 3, widths=(8, 8), dropout=(0.1,)),
     r"dropout has 1 rates but the model has 2 hidden layers"),
    ("mlp-input-dropout", lambda: MLP((4,), 3, input_dropout=1.5), r"input_dropout must be in \[0, 1\), got 1.5"),
    ("mlp-dropconnect", lambda: MLP((4,), 3, dropconnect=1.0), r"dropconnect must be in \[0, 1\), got 1.0"),
    ("mlp-batchnorm-str", lambda: MLP((4,), 3, batchnorm="false"), r"batchnorm must be true or false, got 'false'"),
    ("mlp-activation", lambda: MLP((4,), 3, activation="swish"), r"activation must be one of .*; got 'swish'"),
    ("mlp-dropout-kind", lambda: MLP((4,), 3, dropout_kind="old"), r"dropout_kind must be one of .*; got 'old'"),
    ("cnn-widths-zero", lambda: CNN((1, 8, 8), 3, widths=(0,)), r"widths must be >= 1, got 0"),
    ("cnn-widths-empty", lambda: CNN((1, 8, 8), 3, widths=()), r"widths must be a non-empty list"),
    ("cnn-channels-negative", lambda: CNN((1, 8, 8), 3, channels=(-3,)), r"channels must be >= 1, got -3"),
    ("cnn-channels-float", lambda: CNN((1, 8, 8), 3, channels=(4.0,)), r"channels must be an integer, got 4.0"),
    ("cnn-num-classes-zero", lambda: CNN((1, 8, 8), 0), r"num_classes must be >= 1, got 0"),
    ("cnn-num-classes-str", lambda: CNN((1, 8, 8), "10"), r"num_classes must be an integer, got '10'"),
    ("cnn-input-shape-2d", lambda: CNN((8, 8), 3), r"the CNN needs images C x H x W, got input shape \(8, 8\)"),
    ("cnn-input-shape-negative", lambda: CNN((1, -8, 8), 3), r"input_shape must be >= 1, got -8"),
    ("cnn-input-shape-zero", lambda: CNN((0, 8, 8), 3), r"input_shape must be >= 1, got 0"),
    ("cnn-input-shape-float", lambda: CNN((1, 8.0, 8), 3), r"input_shape must be an integer, got 8.0"),
    ("cnn-dropout-one", lambda: CNN((1, 8, 8), 3, dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    ("resnet-widths-zero", lambda: ResNet((1, 8, 8), 3, widths=(0,)), r"widths must be >= 1, got 0"),
    ("resnet-widths-empty", lambda: ResNet((1, 8, 8), 3, widths=()), r"widths must name at least one stage, got \(\)"),
    ("resnet-widths-float", lambda: ResNet((1, 8, 8), 3, widths=(4.5,)), r"widths must be an integer, got 4.5"),
    ("resnet-num-classes-str", lambda: ResNet((1, 8, 8), "10"), r"num_classes must be an integer, got '10'"),
    ("resnet-input-shape-empty", lambda: ResNet((), 3), r"the resnet needs images C x H x W, got input shape \(\)"),
    ("resnet-input-shape-negative", lambda: ResNet((1, 8, -8), 3), r"input_shape must be >= 1, got -8"),
    ("resnet-dropout-one", lambda: ResNet((1, 8, 8), 3, dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    ("resnet-drop-path-str", lambda: ResNet((1, 8, 8), 3, drop_path="0.1"), r"drop_path must be a number, got '0.1'"),
    ("resnet-batchnorm-str", lambda: ResNet((1, 8, 8), 3, batchnorm="false"),
     r"batchnorm must be true or false, got 'false'"),
    ("low-rank-linear-rank-zero", lambda: LowRankLinear(4, 3, 0), r"rank must be >= 1, got 0"),
    ("low-rank-linear-bias-str", lambda: LowRankLinear(4, 3, 2, bias="false"),
     r"bias must be true or false, got 'false'"),
    ("build-model-num-classes", lambda: build_model(ModelConfig(widths=(4,)), (4,), 0), r"num_classes must be >= 1"),
    # ---- Dataset
    ("dataset-nan-x", lambda: dataset(x_train=NX_NAN), r"t: x_train holds 1 non-finite values \(NaN or inf\)"),
    ("dataset-inf-x", lambda: dataset(x_test=NXT_INF), r"t: x_test holds 1 non-finite values"),
    ("dataset-labels-out-of-range", lambda: dataset(y_train=NY_BIG), r"t: y_train holds label 5, outside \[0, 2\)"),
    ("dataset-labels-negative", lambda: dataset(y_test=NYT_NEG), r"t: y_test holds label -1, outside \[0, 2\)"),
    ("dataset-float-labels", lambda: dataset(y_train=NY_FLOAT),
     r"t: x_train must be float32 and y_train int64, got float32 and float64"),
    ("dataset-length-mismatch", lambda: dataset(y_train=NY[:3]), r"t: x_train has 6 samples but y_train has shape"),
    ("dataset-one-class", lambda: dataset(y_train=NY_ONE), r"t: y_train holds a single class \(0\); a classifier "
                                                           r"needs at least 2"),
    ("dataset-num-classes-one", lambda: dataset(num_classes=1), r"num_classes must be >= 2, got 1"),
    ("dataset-num-classes-str", lambda: dataset(num_classes="2"), r"num_classes must be an integer, got '2'"),
    ("dataset-x-list", lambda: dataset(x_train=[[0.0, 1.0]] * 6), r"t: x_train must be a NumPy array, got list"),
    ("dataset-name-int", lambda: dataset(name=3), r"name must be a non-empty string, got 3"),
    ("dataset-classes-str", lambda: dataset(classes="ab"), r"t: classes must be a tuple of class names .*got 'ab'"),
    ("dataset-empty-train", lambda: dataset(x_train=NX[:0], y_train=NY[:0]), r"t: x_train is empty \(0 samples\)"),
    # ---- preprocess
    ("standardize-fit-nan", lambda: Standardize().fit(X_NAN), r"Standardize.fit: x holds 1 non-finite values"),
    ("standardize-fit-inf", lambda: Standardize().fit(X_INF), r"Standardize.fit: x holds 1 non-finite values"),
    ("standardize-fit-empty", lambda: Standardize().fit(X_EMPTY), r"Standardize.fit needs a batch N x ... with N >= 1"),
    ("standardize-transform-before-fit", lambda: Standardize().transform(X), r"Standardize is not fitted"),
    ("standardize-transform-other-shape", lambda: Standardize().fit(X).transform(X_WIDE),
     r"Standardize was fitted on samples of shape \(4,\), got \(5,\)"),
    ("standardize-with-mean-str", lambda: Standardize(with_mean="false"), r"with_mean must be true or false"),
    ("minmax-fit-nan", lambda: MinMax().fit(X_NAN), r"MinMax.fit: x holds 1 non-finite values"),
    ("minmax-fit-inf", lambda: MinMax().fit(X_INF), r"MinMax.fit: x holds 1 non-finite values"),
    ("minmax-fit-empty", lambda: MinMax().fit(X_EMPTY), r"MinMax.fit needs a batch N x ... with N >= 1"),
    ("minmax-transform-before-fit", lambda: MinMax().transform(X), r"MinMax is not fitted"),
    ("minmax-transform-other-shape", lambda: MinMax().fit(X).transform(X_WIDE), r"MinMax was fitted on samples"),
    ("minmax-range-str", lambda: MinMax(("0", "1")), r"feature_range must be a number, got '0'"),
    ("rescale-factor-str", lambda: Rescale("1/255"), r"factor must be a number, got '1/255'"),
    ("rescale-fit-nan", lambda: Rescale(0.5).fit(X_NAN), r"Rescale.fit: x holds 1 non-finite values"),
    ("rescale-fit-empty", lambda: Rescale(0.5).fit(X_EMPTY), r"Rescale.fit needs a batch"),
    ("pca-fit-nan", lambda: PCAWhiten().fit(X_NAN), r"PCAWhiten.fit: x holds 1 non-finite values"),
    ("pca-fit-inf", lambda: PCAWhiten().fit(X_INF), r"PCAWhiten.fit: x holds 1 non-finite values"),
    ("pca-fit-empty", lambda: PCAWhiten().fit(X_EMPTY), r"PCAWhiten.fit needs a batch"),
    ("pca-transform-before-fit", lambda: PCAWhiten().transform(X), r"PCAWhiten is not fitted"),
    ("pca-transform-other-shape", lambda: PCAWhiten().fit(X).transform(X_WIDE), r"PCAWhiten was fitted on samples"),
    ("pca-n-components-float", lambda: PCAWhiten(n_components=2.5), r"n_components must be an integer, got 2.5"),
    ("pca-n-components-str", lambda: PCAWhiten(n_components="2"), r"n_components must be an integer, got '2'"),
    ("zca-fit-nan", lambda: ZCAWhiten().fit(X_NAN), r"ZCAWhiten.fit: x holds 1 non-finite values"),
    ("zca-fit-inf", lambda: ZCAWhiten().fit(X_INF), r"ZCAWhiten.fit: x holds 1 non-finite values"),
    ("zca-fit-empty", lambda: ZCAWhiten().fit(X_EMPTY), r"ZCAWhiten.fit needs a batch"),
    ("zca-transform-before-fit", lambda: ZCAWhiten().transform(X), r"ZCAWhiten is not fitted"),
    ("zca-transform-other-shape", lambda: ZCAWhiten().fit(X).transform(X_WIDE), r"ZCAWhiten was fitted on samples"),
    # ---- metrics
    ("ece-labels-out-of-range", lambda: expected_calibration_error(P, Y3[1:]),
     r"class index 2 in y is out of range for the 2 columns of probs"),
    ("ece-labels-negative", lambda: expected_calibration_error(P, Y_NEG[:2]), r"class index -1 in y is out of range"),
    ("ece-nan-probs", lambda: expected_calibration_error(P_NAN, Y2), r"probs hold 1 non-finite values \(NaN or inf\)"),
    ("ece-nan-logits", lambda: expected_calibration_error(P_NAN, Y2, from_logits=True),
     r"logits hold 1 non-finite values"),
    ("ece-rows-not-summing-to-one", lambda: expected_calibration_error(P_SUM, Y2),
     r"probs must be probabilities .*pass from_logits=True for logits\), got a row summing to 1.4"),
    ("ece-negative-probs", lambda: expected_calibration_error(P_NEG, Y2), r"probs must be probabilities"),
    ("ece-probs-1d", lambda: expected_calibration_error(P[0], Y2),
     r"probs must be N x K with K >= 2, got shape \(2,\)"),
    ("ece-labels-length", lambda: expected_calibration_error(P, Y3), r"y must be class indices of shape \(2,\)"),
    ("ece-float-labels", lambda: expected_calibration_error(P, Y_FLOAT[:2]),
     r"y must be class indices of an integer dtype, got dtype torch.float32"),
    ("ece-soft-targets-wrong-k", lambda: expected_calibration_error(P, Y_SOFT5[:2]),
     r"soft targets y must have the 2 columns of probs, got shape \(2, 5\)"),
    ("ece-labels-list", lambda: expected_calibration_error(P, [0, 1]), r"y must be a torch.Tensor, got list"),
    ("ece-probs-numpy", lambda: expected_calibration_error(P.numpy(), Y2),
     r"probs must be a torch.Tensor, got ndarray"),
    ("ece-n-bins-str", lambda: expected_calibration_error(P, Y2, n_bins="10"), r"n_bins must be an integer, got '10'"),
    ("ece-from-logits-str", lambda: expected_calibration_error(P, Y2, from_logits="false"),
     r"from_logits must be true or false, got 'false'"),
    ("ece-empty", lambda: expected_calibration_error(P[:0], Y2[:0]), r"needs at least one example, got 0"),
    ("calibration-bins-zero", lambda: calibration_bins(P, Y2, n_bins=0), r"n_bins must be >= 1, got 0"),
    ("calibration-bins-float", lambda: calibration_bins(P, Y2, n_bins=2.0), r"n_bins must be an integer, got 2.0"),
    # ---- losses and targets
    ("cross-entropy-labels-out-of-range", lambda: cross_entropy(LOGITS, Y3 + 2),
     r"class index 4 is out of range for num_classes=4"),
    ("cross-entropy-label-smoothing-str", lambda: cross_entropy(LOGITS, Y3, label_smoothing="0.1"),
     r"label_smoothing must be a number, got '0.1'"),
    ("cross-entropy-label-smoothing-bool", lambda: cross_entropy(LOGITS, Y3, label_smoothing=True),
     r"label_smoothing must be a number, got True"),
    ("cross-entropy-label-smoothing-two", lambda: cross_entropy(LOGITS, Y3, label_smoothing=2.0),
     r"label_smoothing must be in \[0.0, 1.0\], got 2.0"),
    ("cross-entropy-float-labels", lambda: cross_entropy(LOGITS, Y3.float()), r"y must be class indices \(N,\) of an "
                                                                              r"integer dtype"),
    ("cross-entropy-formula", lambda: cross_entropy(LOGITS, Y3, formula="keras"), r"formula must be one of"),
    ("cross-entropy-reduction", lambda: cross_entropy(LOGITS, Y3, reduction="avg"), r"reduction must be one of"),
    ("cross-entropy-rows", lambda: cross_entropy(LOGITS, Y2), r"y has 2 rows but logits has 3"),
    ("cross-entropy-1d-logits", lambda: cross_entropy(LOGITS[0], Y3[:1]), r"logits must be N x K"),
    ("cross-entropy-module-smoothing-str", lambda: CrossEntropy(label_smoothing="0.1"),
     r"label_smoothing must be a number, got '0.1'"),
    ("hinge-margin-str", lambda: multiclass_hinge(LOGITS, Y3, margin="1"), r"margin must be a number, got '1'"),
    ("hinge-float-labels", lambda: multiclass_hinge(LOGITS, Y3.float()), r"class indices must be an integer tensor"),
    ("smooth-targets-alpha-str", lambda: smooth_targets(Y2, 3, "0.1"), r"alpha must be a number, got '0.1'"),
    ("smooth-targets-one-class", lambda: smooth_targets(Y2[:1], 1, 0.1), r"num_classes must be >= 2, got 1"),
    ("smooth-targets-out-of-range", lambda: smooth_targets(Y3 + 1, 3, 0.1), r"class index 3 is out of range"),
    ("smooth-targets-num-classes-str", lambda: smooth_targets(Y2, "3", 0.1), r"num_classes must be an integer"),
    ("soft-targets-float-labels", lambda: to_soft_targets(Y_FLOAT, 3), r"y must be class indices \(N,\)"),
    ("soft-targets-list", lambda: to_soft_targets([0, 1], 3), r"y must be a torch.Tensor, got list"),
    ("check-class-indices-k-str", lambda: check_class_indices(Y2, "2"), r"num_classes must be an integer, got '2'"),
    # ---- penalties, constraints, noise, augment
    ("l2-strength-str", lambda: L2("1e-4"), r"strength must be a number, got '1e-4'"),
    ("l2-strength-bool", lambda: L2(True), r"strength must be a number, got True"),
    ("l2-strength-negative", lambda: L2(-1.0), r"strength must be >= 0, got -1.0"),
    ("l2-convention", lambda: L2(1e-4, convention="mean"), r"convention must be one of 'sum', 'half'; got 'mean'"),
    ("l1-strength-str", lambda: L1("0.1"), r"strength must be a number, got '0.1'"),
    ("elastic-net-l1-negative", lambda: ElasticNet(l1=-1.0), r"l1 must be >= 0, got -1.0"),
    ("lp-p-str", lambda: Lp(p="2"), r"p must be a number, got '2'"),
    ("max-norm-str", lambda: MaxNorm("3"), r"max_value must be a number, got '3'"),
    ("max-norm-zero", lambda: MaxNorm(0.0), r"max_value must be > 0, got 0.0"),
    ("max-norm-bool", lambda: MaxNorm(True), r"max_value must be a number, got True"),
    ("min-max-norm-order", lambda: MinMaxNorm(2.0, 1.0), r"min_value must be <= max_value"),
    ("bias-sign", lambda: BiasSign("positive"), r"sign must be one of 'non_negative', 'non_positive'; got 'positive'"),
    ("dropout-p-str", lambda: Dropout("0.5"), r"p must be a number, got '0.5'"),
    ("dropout-p-bool", lambda: Dropout(True), r"p must be a number, got True"),
    ("dropout-p-above-one", lambda: Dropout(1.5), r"p must be in \[0, 1\], got 1.5"),
    ("dropout-seed-str", lambda: Dropout(0.5, seed="1"), r"seed must be an integer, got '1'"),
    ("dropout-classic-str", lambda: Dropout(0.5, classic="false"), r"classic must be true or false, got 'false'"),
    ("gaussian-noise-negative", lambda: GaussianNoise(-0.1), r"std must be >= 0, got -0.1"),
    ("gaussian-noise-str", lambda: GaussianNoise("0.1"), r"std must be a number, got '0.1'"),
    ("drop-path-p", lambda: DropPath(1.5), r"p must be in \[0, 1\], got 1.5"),
    ("drop-path-scale-by-keep-str", lambda: DropPath(0.1, scale_by_keep="yes"),
     r"scale_by_keep must be true or false, got 'yes'"),
    ("drop-connect-p-negative", lambda: DropConnect(-0.1), r"p must be in \[0, 1\), got -0.1"),
    ("horizontal-flip-p", lambda: HorizontalFlip(p=1.5), r"p must be in \[0, 1\], got 1.5"),
    ("horizontal-flip-p-str", lambda: HorizontalFlip(p="0.5"), r"p must be a number, got '0.5'"),
    ("random-crop-size-zero", lambda: RandomCrop(0), r"size must be >= 1, got 0"),
    ("random-crop-padding-str", lambda: RandomCrop(8, padding="4"), r"padding must be an integer, got '4'"),
    ("random-crop-padding-mode", lambda: RandomCrop(8, padding=2, padding_mode="mirror"),
     r"padding_mode must be one of .*; got 'mirror'"),
    ("mixup-alpha-zero", lambda: MixUp(0.0, num_classes=3), r"alpha must be > 0, got 0.0"),
    ("mixup-alpha-str", lambda: MixUp("0.2", num_classes=3), r"alpha must be a number, got '0.2'"),
    ("mixup-num-classes-str", lambda: MixUp(0.2, num_classes="3"), r"num_classes must be an integer, got '3'"),
    ("mixup-per-sample-str", lambda: MixUp(0.2, num_classes=3, per_sample="false"),
     r"per_sample must be true or false, got 'false'"),
    ("cutout-size-float", lambda: Cutout(2.5), r"size must be an integer, got 2.5"),
    ("random-erasing-p", lambda: RandomErasing(p=2.0), r"p must be in \[0, 1\], got 2.0"),
    ("random-erasing-scale-order", lambda: RandomErasing(scale=(0.5, 0.1)), r"scale must have low <= high"),
    # ---- search space distributions
    ("uniform-low-above-high", lambda: Uniform(1.0, 0.0), r"Uniform needs low < high, got low=1.0, high=0.0"),
    ("uniform-low-equals-high", lambda: Uniform(1.0, 1.0), r"Uniform needs low < high"),
    ("uniform-str", lambda: Uniform("1e-3", 1.0), r"Uniform low must be a number, got '1e-3'"),
    ("uniform-bool", lambda: Uniform(False, 1.0), r"Uniform low must be a number, got False"),
    ("uniform-nan", lambda: Uniform(math.nan, 1.0), r"Uniform low must be finite, got nan"),
    ("log-uniform-zero", lambda: LogUniform(0.0, 1.0), r"LogUniform low must be > 0, got 0.0"),
    ("log-uniform-negative", lambda: LogUniform(-1.0, 1.0), r"LogUniform low must be > 0, got -1.0"),
    ("log-uniform-str", lambda: LogUniform("1e-3", 1e-1), r"LogUniform low must be a number, got '1e-3'"),
    ("log-uniform-order", lambda: LogUniform(1e-1, 1e-3), r"LogUniform needs low < high"),
    ("int-order", lambda: Int(5, 2), r"Int needs low < high, got low=5, high=2"),
    ("int-float", lambda: Int(1.5, 3), r"Int low must be an integer, got 1.5"),
    ("int-str", lambda: Int(1, "3"), r"Int high must be an integer, got '3'"),
    ("int-log-zero", lambda: Int(0, 8, log=True), r"Int low must be >= 1, got 0"),
    ("int-log-str", lambda: Int(1, 8, log="true"), r"Int log must be true or false, got 'true'"),
    ("categorical-empty", lambda: Categorical(()), r"Categorical needs at least one choice"),
    ("categorical-str", lambda: Categorical("abc"), r"Categorical choices must be a list, got 'abc'"),
    ("categorical-duplicates", lambda: Categorical((1, 1)), r"Categorical choices must be distinct"),
    ("search-space-not-a-distribution", lambda: SearchSpace({"lr": (0.1, 1.0)}),
     r"space\['lr'\] must be Uniform, LogUniform, Int or Categorical, got \(0.1, 1.0\)"),
    ("search-space-name", lambda: SearchSpace({"1lr": Uniform(0.0, 1.0)}), r"search space names are dotted "
                                                                          r"identifiers .*got '1lr'"),
    ("search-space-quoted-number", lambda: SearchSpace.from_dict({"lr": {"log_uniform": ["1e-3", 1e-1]}}),
     r"space.lr: LogUniform low must be a number, got '1e-3'"),
    ("search-space-grid-points-str", lambda: SearchSpace({"lr": Uniform(0.0, 1.0)}).grid("5"),
     r"grid_points\['lr'\] must be an integer, got '5'"),
    # ---- data loaders, splits, sampling
    ("load-dataset-int", lambda: load_dataset(3), r"a dataset is a name or a path, got 3"),
    ("load-dataset-unknown-name", lambda: load_dataset("mnist3"), r"unknown dataset 'mnist3'"),
    ("load-dataset-limit-str", lambda: load_dataset("digits", limit_train="5"),
     r"limit_train must be an integer, got '5'"),
    ("load-dataset-option-for-registered", lambda: load_dataset("digits", grayscale="false"),
     r"digits: grayscale does not apply to a registered dataset"),
    ("load-npz-path-int", lambda: load_npz(3), r"path must be a file path \(a string or a pathlib.Path\), got 3"),
    ("from-torch-not-a-dataset", lambda: from_torch("abc"), r"torch: train\[0\] must be an \(x, y\) pair, got str"),
    ("from-torch-float-label", lambda: from_torch([(X[0], 0), (X[1], 1.5)]),
     r"torch: train\[1\] has label 1.5, a float; labels must be integers"),
    ("from-arrays-nan", lambda: from_arrays(NX10_NAN, NY10), r"arrays: x_train holds 1 non-finite values"),
    ("from-arrays-float-labels", lambda: from_arrays(NX10, NY10.astype(float)),
     r"arrays: y_train must hold integer labels, got dtype float64"),
    ("from-arrays-length", lambda: from_arrays(NX10, NY10[:9]), r"arrays: y_train must have shape \(10,\) to match x"),
    ("from-arrays-one-class", lambda: from_arrays(NX10, NY10 * 0), r"arrays: y_train holds a single class \(0\)"),
    ("from-arrays-seed-str", lambda: from_arrays(NX10, NY10, seed="0"), r"seed must be an integer, got '0'"),
    ("from-arrays-test-fraction-str", lambda: from_arrays(NX10, NY10, test_fraction="0.2"),
     r"test_fraction must be a number, got '0.2'"),
    ("from-arrays-num-classes-str", lambda: from_arrays(NX10, NY10, num_classes="2"),
     r"num_classes must be an integer, got '2'"),
    ("from-arrays-name-int", lambda: from_arrays(NX10, NY10, name=3), r"name must be a non-empty string, got 3"),
    ("from-arrays-layout", lambda: from_arrays(NX10, NY10, layout="table"), r"arrays: layout must be one of"),
    ("from-arrays-x-path", lambda: from_arrays("x.npy", NY10), r"arrays: x_train must be a NumPy array, a torch "
                                                              r"tensor or a list, got str"),
    ("make-splits-fraction-str", lambda: make_splits(valid_dataset(), val_fraction="0.1"),
     r"val_fraction must be a number, got '0.1'"),
    ("make-splits-seed-str", lambda: make_splits(valid_dataset(), seed="0"), r"seed must be an integer, got '0'"),
    ("make-splits-val-size-float", lambda: make_splits(valid_dataset(), val_size=2.0),
     r"val_size must be an integer, got 2.0"),
    ("make-splits-stratify-str", lambda: make_splits(valid_dataset(), val_size=2, stratify="false"),
     r"stratify must be true or false, got 'false'"),
    ("train-val-split-fraction-one", lambda: train_val_split(NY10, 1.0), r"val_fraction must be in \(0.0, 1.0\)"),
    ("train-val-split-float-labels", lambda: train_val_split(NY_FLOAT, 0.2),
     r"labels must be a 1-D integer array, got shape \(6,\) of float64"),
    ("stratified-subset-size-str", lambda: stratified_subset(NY10, "4"), r"size must be an integer, got '4'"),
    ("kfold-k-one", lambda: kfold_indices(NY10, 1), r"k must be >= 2, got 1"),
    ("kfold-k-str", lambda: kfold_indices(NY10, "3"), r"k must be an integer, got '3'"),
    ("kfold-stratified-str", lambda: kfold_indices(NY10, 2, stratified="no"),
     r"stratified must be true or false, got 'no'"),
    ("limit-train-set-str", lambda: limit_train_set(valid_dataset(), "4"), r"limit_train must be an integer, got '4'"),
    ("limit-train-set-seed-str", lambda: limit_train_set(valid_dataset(), 4, seed="1"),
     r"seed must be an integer, got '1'"),
]


def _params():
    for row_id, call, pattern in ROWS:
        yield pytest.param(call, pattern, id=row_id)


def _snapshot() -> list:
    out = []
    for obj in SHARED:
        if isinstance(obj, torch.Tensor):
            out.append(obj.clone())
        elif isinstance(obj, torch.nn.Module):
            out.append({k: v.clone() for k, v in obj.state_dict().items()})
        else:
            out.append((obj.copy(), obj.flags.writeable))
    return out


def _assert_unchanged(before: list) -> None:
    for obj, old in zip(SHARED, before):
        if isinstance(obj, torch.Tensor):
            torch.testing.assert_close(obj, old, rtol=0, atol=0, equal_nan=True)
        elif isinstance(obj, torch.nn.Module):
            torch.testing.assert_close(obj.state_dict(), old, rtol=0, atol=0)
        else:
            assert np.array_equal(obj, old[0], equal_nan=obj.dtype.kind == "f") and obj.flags.writeable == old[1]


def test_the_table_is_large_and_its_ids_are_unique():
    ids = [row[0] for row in ROWS]
    assert len(ids) == len(set(ids)) and len(ids) >= 120


@pytest.mark.parametrize("call,pattern", list(_params()))
def test_bad_input_is_one_line_regularkit_error(call, pattern):
    before = _snapshot()
    with pytest.raises(RegularkitError, match=pattern) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and message
    _assert_unchanged(before)


# --- issue 23 (item 9): API calls accepted without a word -----------------------------------------------------
_X_NP = np.linspace(0, 1, 40 * 3, dtype=np.float32).reshape(40, 3)
ISSUE23_ITEM9_ROWS = [
    ("rescale-factor-zero", lambda: Rescale(0), r"^Rescale: factor must be non-zero \(0 maps every input to 0\), "
                                                r"got 0$"),
    ("rescale-factor-negative-zero", lambda: Rescale(-0.0), r"factor must be non-zero"),
    ("mixup-num-classes-one", lambda: MixUp(0.2, num_classes=1), r"^num_classes must be >= 2, got 1$"),
    ("cnn-four-stages-on-2x2", lambda: CNN((1, 2, 2), 3, channels=(4, 8, 16, 16)),
     r"^a CNN with 4 conv stage\(s\) halves the image 4 time\(s\) and needs inputs of at least 16 x 16, got 2 x 2"),
    ("arrays-labels-with-a-gap", lambda: from_arrays(_X_NP, np.r_[np.arange(36) % 9, [50000] * 4]),
     r"^arrays: labels must be 0\.\.k-1, got 10 distinct labels from 0 to 50000 \(label 9 has no sample\); remap "
     r"them to 0\.\.9 \(np\.unique\(y, return_inverse=True\)\) or give num_classes$"),
    ("arrays-labels-not-from-zero", lambda: from_arrays(_X_NP, np.arange(40) % 3 + 1),
     r"labels must be 0\.\.k-1, got 3 distinct labels from 1 to 3 \(label 0 has no sample\)"),
    ("load-dataset-data-dir-on-digits", lambda: load_dataset("digits", data_dir="/tmp"),
     r"^digits: data_dir does not apply to a dataset bundled with regularkit \(it is where the fashion-mnist files "
     r"are\), got '/tmp'$"),
]


@pytest.mark.parametrize("call,pattern", [pytest.param(c, p, id=i) for i, c, p in ISSUE23_ITEM9_ROWS])
def test_issue23_silent_acceptances_are_one_line_errors(call, pattern):
    before = _snapshot()
    with pytest.raises(RegularkitError, match=pattern) as info:
        call()
    assert "\n" not in str(info.value)
    _assert_unchanged(before)


# --- issue 23 (items 2-5, 7, 10), from Python: each a one-line RegularkitError naming the value, nothing written ---
def _issue23_rows(tmp):
    """id -> (call, message regex); calls may write nothing under ``tmp``."""
    from regularkit.search.journal import repair_journal
    from regularkit.search.samplers import check_seed
    from regularkit.search.storage import check_storage, open_storage
    from regularkit.study import StudyConfig
    from regularkit.study.data import prepare_data
    from regularkit.study.folder import check_folder
    from regularkit.study.pipeline import run_study
    from regularkit.study.plan import check_workers
    from regularkit.study.recipes import load_recipe_file
    (tmp / "afile").write_text("x")
    (tmp / "notes").write_text("my notes, not a journal\n")
    (tmp / "results-folder" / "results.csv").mkdir(parents=True)

    def strength(field, extra=""):
        path = tmp / f"r-{field.replace('.', '_')}{len(extra)}.toml"
        path.write_text(f'[recipes.r]\n"reg.l2" = 0.1\nstrength = {{field = "{field}", uniform = [0.0, 1.0]{extra}}}\n')
        return lambda: load_recipe_file(path)

    return {
        "run_study None": (lambda: run_study(None), r"^run_study needs a StudyConfig \(build one with "
                                                    r"StudyConfig\(\.\.\.\)\), got NoneType: None$"),
        "run_study dict": (lambda: run_study({"epochs": 1}), r"build one with StudyConfig\(\*\*d\)\), got dict: "
                                                             r"\{'epochs': 1\}$"),
        "run_study path": (lambda: run_study("study.toml"), r"got str: 'study.toml'$"),
        "search seed negative": (lambda: check_seed(-1), r"^seed must be >= 0, got -1$"),
        "search seed too big": (lambda: check_seed(2**32), r"^seed must be <= 4294967295, got 4294967296$"),
        "search seed bool": (lambda: check_seed(True), r"^seed must be an integer, got True$"),
        "strength unknown field": (strength("reg.l3"), r"strength field 'reg.l3': reg has no field 'l3'"),
        "strength unknown part": (strength("regs.l2"), r"strength field 'regs.l2': a recipe has no field 'regs'"),
        "strength a table": (strength("optim"), r"strength field 'optim' is not a number"),
        "strength text field": (strength("model.activation"), r"strength field 'model.activation' is not a number"),
        "strength coupled unknown": (strength("reg.l2", ', coupled = {"reg.nope" = 1.0}'),
                                     r"strength field 'reg.nope': reg has no field 'nope'"),
        "storage not a journal": (lambda: check_storage(str(tmp / "notes")), r"is an existing file that is not an "
                                                                            r"Optuna journal"),
        "open a file that is no journal": (lambda: open_storage(str(tmp / "notes")), r"is not an Optuna journal"),
        "repair a file that is no journal": (lambda: repair_journal(tmp / "notes"),
                                             r"^storage '.*notes' is an existing file that is not an Optuna journal"),
        "storage mysql driver": (lambda: check_storage("mysql+mysqldb://u@127.0.0.1:1/d"),
                                 r"needs the database driver 'mysqldb', which is not installed"),
        "folder name too long": (lambda: check_folder(str(tmp / ("x" * 256))), r"has a name of 256 bytes"),
        "folder an output is a folder": (lambda: check_folder(str(tmp / "results-folder")),
                                         r"holds a folder 'results.csv' where the study writes a file"),
        "folder None": (lambda: check_folder(None), r"^out must name a folder, got None$"),
        "artifacts below a file": (lambda: check_folder(str(tmp / "afile" / "a"), name="artifacts"),
                                   r"^artifacts '.*afile/a' is below"),
        "workers per core": (lambda: check_workers(10**6), r"^workers 1000000 is more than 4 per core"),
        "train size above the data": (lambda: prepare_data(StudyConfig(train_size=10**12)),
                                      r"^train_size 1000000000000 is more than the 1,257 training examples of digits"),
    }


def _issue23_ids():
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        return sorted(_issue23_rows(Path(tmp)))


@pytest.mark.parametrize("case", _issue23_ids())
def test_issue23_bad_input_is_one_line_and_writes_nothing(case, tmp_path):
    import importlib.util
    if "mysql" in case and importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("the MySQL driver is installed here")
    call, pattern = _issue23_rows(tmp_path)[case]
    before = {str(p): None if p.is_dir() else p.read_bytes() for p in sorted(tmp_path.rglob("*"))}
    with pytest.raises(RegularkitError, match=pattern) as info:
        call()
    assert "\n" not in str(info.value)
    assert {str(p): None if p.is_dir() else p.read_bytes() for p in sorted(tmp_path.rglob("*"))} == before


# --- every recipe and study setting, typed strictly (issue 23: grow the table to every input) ------------------
def _typed_rows():
    """For every field of the recipe's parts and of StudyConfig: a quoted value and a boolean where a number or a
    name is wanted, a quoted "false" where a boolean is wanted.  Each must be refused naming the field."""
    import dataclasses
    import typing

    from regularkit.study import StudyConfig

    rows = []
    for cls in (ModelConfig, OptimConfig, RegConfig, AugmentConfig, EarlyStoppingConfig, StudyConfig):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            args = set(typing.get_args(hint)) or {hint}
            if dataclasses.is_dataclass(hint) or any(dataclasses.is_dataclass(a) for a in args):
                continue
            if bool in args:
                bad = ["false", 1]
            elif args & {int, float}:
                bad = ["0.1", True]
            elif str in args:
                bad = [True, 3]
            else:  # tuples of ints
                bad = ["1,2", True]
            for value in bad:
                name = f.name.rsplit(".", 1)[-1]
                rows.append((f"{cls.__name__}.{f.name}={value!r}",
                             (lambda cls=cls, f=f, value=value: cls(**{f.name: value})), name))
    return rows


TYPED_ROWS = _typed_rows()


def test_the_typed_table_covers_every_field_and_the_api_table_holds_540_rows():
    # with tests/test_bad_inputs_cli.py's 196 command lines, the bad-input suite holds over 700 rows (issue 23)
    assert len(TYPED_ROWS) >= 200
    assert len(ROWS) + len(ISSUE23_ITEM9_ROWS) + len(TYPED_ROWS) >= 540


@pytest.mark.parametrize("call,field", [pytest.param(c, n, id=i) for i, c, n in TYPED_ROWS])
def test_a_wrongly_typed_setting_is_refused_naming_its_field(call, field):
    with pytest.raises(RegularkitError, match=field.replace("_", "[_ ]?")) as info:
        call()
    assert "\n" not in str(info.value)
