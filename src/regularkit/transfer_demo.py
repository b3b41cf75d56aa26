"""`regularkit demo transfer`: the lecture's transfer-learning table, measured on a laptop CPU.

Decks 000 and 002 (after cs231n) give a 2 x 2 table of advice::

                        very similar dataset              very different dataset
    very little data    use linear classifier on top      you're in trouble: try linear classifiers
                                                          from different stages
    quite a lot of data fine-tune a few layers            fine-tune a larger number of layers

and deck 003's cookbook adds the rates ("~1/10th of the original learning
rate when fine-tuning the top-most layers and ~1/100th for other layers")
and the two-stage approach (train the new classifier first, then more of the
network).  This module fills the table with measured test errors, every
method on the same seeded data:

* source: a small CNN pretrained on Fashion-MNIST classes 0-4 (T-shirt, trouser, pullover, dress, coat);
* very similar: Fashion-MNIST classes 5-9 (sandal, shirt, sneaker, bag, ankle boot), labels 0-4;
* very different: scikit-learn's 8 x 8 digits, upsampled to 28 x 28 (``F.interpolate``, bilinear).

Methods: ``scratch`` (same architecture, random init); ``linear_top`` (everything frozen with
``freeze(..., bn="eval")``, a new head from ``replace_head``); ``linear_conv1`` / ``linear_conv2`` (a linear
classifier on the frozen output of the first / second conv stage, average-pooled to 4 x 4: the
"linear classifier from different stages"); ``finetune_top`` and ``finetune_all`` (``two_stage_finetune``:
stage 1 the new head alone, stage 2 the dense block + head (``stage2="top"``) or everything
(``stage2="all"``) with ``lr_groups``' cookbook rates: head 1, top 1/10, rest 1/100 of the pretraining lr;
BatchNorm statistics held fixed throughout, ``bn="eval"``).

Model choice: every stage (pretraining included) stops early on a validation split carved from its own
training data (val loss, best weights restored); the test images only ever score the final model.
Budget (the full demo runs in about 7 minutes on 2 CPU cores, one thread): CNN channels (16, 32), one
pretrained network (``pretrain_seed``), at least 4 epochs / 400 steps per trained stage, 3000 steps for
a linear classifier alone, and "all" of the similar task capped at 15 000 of its 30 000 images
(``max_train``; None for all).  Measured numbers: docs/results_transfer.md.

Speed: where a network's bottom is frozen (no trainable parameter, BatchNorm held, no dropout) its output
is a fixed function of the input, so it is computed once per data split and the trainable top is fitted
on it -- the same numbers as running the whole network every step, at a fraction of the cost.  Test
errors always run the whole network on the raw test images.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from regularkit.errors import RegularkitError, check_choice, check_in_range, check_int, check_positive
from regularkit.models.cnn import CNN
from regularkit.train.callbacks import EarlyStopping
from regularkit.train.loop import evaluate, fit
from regularkit.transfer import bn_frozen, freeze, lr_groups, replace_head, two_stage_finetune

__all__ = ["METHODS", "TASKS", "ADVICE", "QUICK", "TransferSettings", "TransferResult", "StageProbe",
           "transfer_table", "transfer_demo", "pretrain", "run_method", "make_split", "print_tables"]

METHODS = ("scratch", "linear_conv1", "linear_conv2", "linear_top", "finetune_top", "finetune_all")
TASKS = ("similar", "different")
#: The slide's advice per (task, data amount): its words and the methods that follow it.
ADVICE = {
    ("similar", "little"): ("use linear classifier on top layer", ("linear_top",)),
    ("similar", "lots"): ("fine-tune a few layers", ("finetune_top",)),
    ("different", "little"): ("you're in trouble: try linear classifier from different stages",
                              ("linear_conv1", "linear_conv2", "linear_top")),
    ("different", "lots"): ("fine-tune a larger number of layers", ("finetune_all",)),
}
#: transfer_table settings for a smoke run in seconds (tests, ``transfer_demo(quick=True)``).
QUICK = dict(seeds=(0, 1), sizes=(20, 50, None), different_sizes=(30, None), pretrain_epochs=1, epochs=1,
             min_steps=6, probe_steps=20, max_source=800, max_train=150, max_test=300, channels=(8, 16), widths=(32,))

Arrays = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class TransferSettings:
    """Everything that decides the numbers; saved with them."""

    seeds: tuple[int, ...] = (0, 1, 2)
    sizes: tuple[int | None, ...] = (100, 1000, None)   # similar task; None = all (up to max_train)
    different_sizes: tuple[int | None, ...] = (100, None)
    pretrain_seed: int = 0
    pretrain_epochs: int = 5
    epochs: int = 4             # epochs per stage at least; small sets get more (min_steps)
    min_steps: int = 400        # optimizer steps per stage at least (small sets: many short epochs)
    probe_steps: int = 3000     # the same for a linear classifier alone on cached features (cheap)
    batch_size: int = 128
    lr: float = 1e-3            # Adam; "the original learning rate" for the cookbook ratios
    top_ratio: float = 0.1
    rest_ratio: float = 0.01
    val_fraction: float = 0.2   # carved from each transfer training set (10% for pretraining)
    max_val: int = 2000
    channels: tuple[int, ...] = (16, 32)
    widths: tuple[int, ...] = (128,)
    probe_pool: int = 4
    max_source: int | None = None   # caps (stratified, seeded); None = everything
    max_train: int | None = 15000   # "all" of the similar task: 15 000 of the 30 000 (the 10-minute budget)
    max_test: int | None = None

    def __post_init__(self) -> None:
        if not self.seeds:
            raise RegularkitError("seeds must hold at least one seed, got ()")
        for s in self.seeds:
            check_int("seed", s, minimum=0)
        for name in ("sizes", "different_sizes"):
            values = getattr(self, name)
            if not values:
                raise RegularkitError(f"{name} must hold at least one size, got {values!r}")
            for v in values:
                if v is not None:
                    check_int(name[:-1], v, minimum=2)
        for name in ("pretrain_epochs", "epochs", "min_steps", "probe_steps", "batch_size", "max_val", "probe_pool"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("lr", "top_ratio", "rest_ratio"):
            check_positive(name, getattr(self, name))
        check_in_range("val_fraction", self.val_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------- data

def _tensors(x, y) -> Arrays:
    x = torch.as_tensor(np.array(x, dtype=np.float32, copy=True))
    y = torch.as_tensor(np.array(y, dtype=np.int64, copy=True))
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or len(x) != len(y):
        raise RegularkitError(f"expected images N x C x H x W and N labels, got {tuple(x.shape)} and {tuple(y.shape)}")
    return x, y


def _task(data, name: str) -> tuple[Arrays, Arrays]:
    """``(x_train, y_train, x_test, y_test)`` or a :class:`~regularkit.data.Dataset` -> tensors."""
    if hasattr(data, "x_train"):
        data = (data.x_train, data.y_train, data.x_test, data.y_test)
    if not isinstance(data, (tuple, list)) or len(data) != 4:
        raise RegularkitError(f"{name} must be (x_train, y_train, x_test, y_test) or a Dataset, "
                              f"got {type(data).__name__}")
    return _tensors(*data[:2]), _tensors(*data[2:])


def _cap(data: Arrays, limit: int | None, seed: int) -> Arrays:
    from regularkit.data.splits import stratified_subset
    if limit is None or limit >= len(data[1]):
        return data
    keep = torch.from_numpy(stratified_subset(data[1].numpy(), limit, seed=seed))
    return data[0][keep], data[1][keep]


def _resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == hw:
        return x
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)


def load_tasks(data_dir=None) -> tuple[Arrays, tuple, Any]:
    """Fashion-MNIST 0-4 (source), 5-9 relabelled 0-4 (similar, a 4-tuple), the digits Dataset (still 8 x 8)."""
    from regularkit.data import load_dataset
    fm = load_dataset("fashion-mnist", data_dir=data_dir)  # RegularkitError when absent
    src, tgt, tgt_test = fm.y_train < 5, fm.y_train >= 5, fm.y_test >= 5
    source = _tensors(fm.x_train[src], fm.y_train[src])
    similar = (fm.x_train[tgt], fm.y_train[tgt] - 5, fm.x_test[tgt_test], fm.y_test[tgt_test] - 5)
    return source, similar, load_dataset("digits")


@dataclass(frozen=True, eq=False)
class Split:
    """One transfer training set (seeded, stratified), its validation part, and the test set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    cache: "_FeatureCache" = field(default_factory=lambda: _FeatureCache(), repr=False)


def make_split(pool: Arrays, test: Arrays, size: int | None, seed: int, cfg: TransferSettings) -> Split:
    """``size`` examples of ``pool`` (None: all, up to ``max_train``), a validation part carved from them."""
    from regularkit.data.splits import train_val_split
    x, y = _cap(pool, size if size is not None else cfg.max_train, seed)
    classes = len(torch.unique(y))  # at least one validation example per class
    n_val = max(min(int(math.ceil(cfg.val_fraction * len(y))), cfg.max_val), classes)
    tr, va = train_val_split(y.numpy(), val_size=n_val, seed=seed)
    tr, va = torch.from_numpy(tr), torch.from_numpy(va)
    k = int(torch.cat([pool[1], test[1]]).max()) + 1
    return Split(x[tr], y[tr], x[va], y[va], *test, num_classes=k)


# ------------------------------------------------------------------------------------- frozen bottoms

class StageProbe(nn.Module):
    """A linear classifier on the (average-pooled) output of a CNN's first ``stage`` conv stages.

    ``body`` shares its modules with ``cnn`` (pass a copy to keep the original) and is frozen
    with ``bn="eval"``; only ``head`` trains.
    """

    def __init__(self, cnn: CNN, stage: int, num_classes: int, *, pool: int = 4, seed: int | None = None):
        super().__init__()
        convs = [i for i, m in enumerate(cnn.conv) if isinstance(m, nn.Conv2d)]
        if not 1 <= stage <= len(convs):
            raise RegularkitError(f"stage must be in [1, {len(convs)}] for this CNN, got {stage}")
        end = convs[stage] if stage < len(convs) else len(cnn.conv)
        self.body = freeze(nn.Sequential(cnn.input_dropout, *list(cnn.conv)[:end]), bn="eval")
        self.pool = nn.AdaptiveAvgPool2d(pool)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.head = nn.Linear(cnn.conv[convs[stage - 1]].out_channels * pool * pool, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.body(x)).flatten(1))


def _blocks(model: nn.Module) -> list[nn.Module]:
    """``model``'s forward as a chain of modules (for caching a frozen bottom)."""
    if isinstance(model, StageProbe):
        return [model.body, model.pool, nn.Flatten(), model.head]
    if isinstance(model, CNN):
        return [model.input_dropout, model.conv, nn.Flatten(), model.features, model.head]
    return [model]


_FIXED = (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity, nn.Sequential)


def _fixed(block: nn.Module) -> bool:
    """No trainable parameter, and the output a fixed function of the input in train mode too."""
    for m in block.modules():
        if any(p.requires_grad for p in m.parameters(recurse=False)):
            return False
        if not (isinstance(m, _FIXED) or (isinstance(m, nn.modules.batchnorm._NormBase) and bn_frozen(m))):
            return False
    return True


class _FeatureCache:
    """Outputs of frozen bottoms on one split's inputs, reused while the bottom's state is unchanged."""

    def __init__(self) -> None:
        self._entries: list[tuple[torch.Tensor, str, list[torch.Tensor], torch.Tensor]] = []

    def __call__(self, blocks: list[nn.Module], depth: int, x: torch.Tensor) -> torch.Tensor:
        state = [t for b in blocks[:depth] for t in b.state_dict().values()]
        layout = "\n".join(repr(b) for b in blocks[:depth])  # the function, not only its weights
        for ex, ed, es, ef in self._entries:
            if ex is x and ed == layout and len(es) == len(state) and all(
                    a.shape == b.shape and torch.equal(a, b) for a, b in zip(es, state)):
                return ef
        with torch.no_grad():
            out = torch.cat([nn.Sequential(*blocks[:depth])(x[i:i + 1024]) for i in range(0, len(x), 1024)])
        self._entries.append((x, layout, [t.detach().clone() for t in state], out))
        return out


# -------------------------------------------------------------------------------------------- training

def _budget(n: int, steps: int, cfg: TransferSettings) -> tuple[int, int, int]:
    """(batch size, max epochs, patience): at least ``epochs`` epochs and ``steps`` steps."""
    batch = min(cfg.batch_size, n)
    steps_per_epoch = math.ceil(n / batch)
    epochs = max(cfg.epochs, math.ceil(steps / steps_per_epoch))
    return batch, epochs, max(3, epochs // 4)


def _train(model: nn.Module, groups: list[dict], split: Split, cfg: TransferSettings, seed: int,
           *, epochs: int | None = None, patience: int | None = None) -> dict[str, Any]:
    """Adam on ``groups``; early stopping on the split's val loss, best weights restored."""
    blocks = _blocks(model)
    depth = 0
    while depth < len(blocks) - 1 and _fixed(blocks[depth]):
        depth += 1
    if not any(t.numel() for b in blocks[:depth] for t in b.state_dict().values()):
        depth = 0  # nothing worth caching (an Identity)
    if depth:
        xtr, xva = split.cache(blocks, depth, split.x_train), split.cache(blocks, depth, split.x_val)
        trainable = nn.Sequential(*blocks[depth:])
    else:
        xtr, xva, trainable = split.x_train, split.x_val, model
    learning = {id(p) for p in model.parameters() if p.requires_grad}
    probe = any({id(p) for p in m.parameters()} == learning for m in model.modules() if isinstance(m, nn.Linear))
    batch, max_epochs, wait = _budget(len(xtr), cfg.probe_steps if probe else cfg.min_steps, cfg)
    stopper = EarlyStopping(monitor="val_loss", patience=patience or wait, restore_best_weights=True)
    t0 = time.perf_counter()
    history = fit(trainable, (xtr, split.y_train), optimizer=torch.optim.Adam(groups), epochs=epochs or max_epochs,
                  batch_size=batch, eval_sets={"val": (xva, split.y_val)}, callbacks=[stopper], seed=seed)
    return {"epochs": len(history.epochs), "best_epoch": stopper.best_epoch, "cached_blocks": depth,
            "lrs": {g.get("name", str(i)): g["lr"] for i, g in enumerate(groups)},
            "seconds": time.perf_counter() - t0}


def _new_cnn(shape, num_classes: int, cfg: TransferSettings, seed: int) -> CNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CNN(shape, num_classes, channels=cfg.channels, widths=cfg.widths, batchnorm=True)


def pretrain(source: Arrays, cfg: TransferSettings) -> tuple[CNN, dict[str, Any]]:
    """The source network: a CNN trained on ``source`` (10% carved off for early stopping)."""
    from regularkit.data.splits import train_val_split
    x, y = _cap(source, cfg.max_source, cfg.pretrain_seed)
    tr, va = (torch.from_numpy(i) for i in train_val_split(y.numpy(), 0.1, seed=cfg.pretrain_seed))
    k = int(y.max()) + 1
    model = _new_cnn(tuple(x.shape[1:]), k, cfg, cfg.pretrain_seed)
    split = Split(x[tr], y[tr], x[va], y[va], x[:0], y[:0], num_classes=k)
    info = _train(model, [{"params": list(model.parameters()), "lr": cfg.lr, "name": "all"}], split, cfg,
                  cfg.pretrain_seed, epochs=cfg.pretrain_epochs, patience=2)
    info.update(n_train=len(tr), n_val=len(va), val_error=evaluate(model, x[va], y[va])[1])
    return model.eval(), info


def run_method(method: str, pretrained: CNN, split: Split, cfg: TransferSettings, seed: int
               ) -> tuple[nn.Module, dict[str, Any]]:
    """Train one method on ``split``; returns the model (``pretrained`` untouched) and what happened."""
    check_choice("method", method, METHODS)
    k = split.num_classes
    if method == "scratch":
        model = _new_cnn(tuple(split.x_train.shape[1:]), k, cfg, seed)
        return model, {"stage1": _train(model, [{"params": list(model.parameters()), "lr": cfg.lr, "name": "all"}],
                                        split, cfg, seed)}
    model = copy.deepcopy(pretrained)
    if method in ("linear_conv1", "linear_conv2"):
        model = StageProbe(model, int(method[-1]), k, pool=cfg.probe_pool, seed=seed)
        return model, {"stage1": _train(model, [{"params": list(model.head.parameters()), "lr": cfg.lr,
                                                 "name": "head"}], split, cfg, seed)}
    if method == "linear_top":
        freeze(model, bn="eval")
        replace_head(model, k, seed=seed)
        return model, {"stage1": _train(model, lr_groups(model, cfg.lr, top=0), split, cfg, seed)}
    if method in ("finetune_top", "finetune_all"):
        history = two_stage_finetune(model, lambda m, groups, stage: _train(m, groups, split, cfg, seed),
                                     base_lr=cfg.lr, num_classes=k, stage2=method.split("_")[1], top=1,
                                     top_ratio=cfg.top_ratio, rest_ratio=cfg.rest_ratio, bn="eval", seed=seed)
        return model, history
    raise AssertionError(method)  # unreachable: every METHODS entry is handled above


# The result, reporting and the demo entry point live in regularkit.transfer_report;
# they are reached from here lazily (PEP 562), so either module can be imported first.
_REPORT_NAMES = {'TransferResult', 'transfer_table', 'print_tables', 'plot', 'transfer_demo'}


def __getattr__(name: str):
    if name in _REPORT_NAMES:
        from regularkit import transfer_report
        return getattr(transfer_report, name)
    raise AttributeError(f"module 'regularkit.transfer_demo' has no attribute {name!r}")
