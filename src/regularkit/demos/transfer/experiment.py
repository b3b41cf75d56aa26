"""The transfer experiment: data, frozen bottoms, the methods, and the full table of runs.

See :mod:`regularkit.demos.transfer.settings` for the lecture's table, the methods and the budget.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from regularkit._util.checks import check_choice, check_int
from regularkit._util.environment import environment
from regularkit.data import load_dataset
from regularkit.data.sampling import stratified_subset, train_val_split
from regularkit.data.splits import Splits
from regularkit.demos.transfer.result import TransferResult, size_label
from regularkit.demos.transfer.settings import METHODS, Arrays, TransferSettings
from regularkit.errors import RegularkitError
from regularkit.models.cnn import CNN
from regularkit.train.callbacks import EarlyStopping
from regularkit.train.loop import evaluate, fit
from regularkit.transfer import bn_frozen, freeze, lr_groups, replace_head, two_stage_finetune

__all__ = ["load_tasks", "Split", "make_split", "StageProbe", "pretrain", "run_method", "transfer_table"]


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
    fm = load_dataset("fashion-mnist", data_dir=data_dir)  # RegularkitError when absent
    src, tgt, tgt_test = fm.y_train < 5, fm.y_train >= 5, fm.y_test >= 5
    source = _tensors(fm.x_train[src], fm.y_train[src])
    similar = (fm.x_train[tgt], fm.y_train[tgt] - 5, fm.x_test[tgt_test], fm.y_test[tgt_test] - 5)
    return source, similar, load_dataset("digits")


@dataclass(frozen=True, eq=False)
class Split(Splits):
    """One transfer training set (seeded, stratified), its validation part and the test set, plus the
    cache of frozen bottoms' outputs computed on them."""

    cache: "_FeatureCache" = field(default_factory=lambda: _FeatureCache(), repr=False)


def _split(x_tr, y_tr, x_va, y_va, x_te, y_te, k: int) -> Split:
    return Split(x_tr, y_tr, x_va, y_va, x_te, y_te, num_classes=k, input_shape=tuple(x_tr.shape[1:]))


def make_split(pool: Arrays, test: Arrays, size: int | None, seed: int, cfg: TransferSettings) -> Split:
    """``size`` examples of ``pool`` (None: all, up to ``max_train``), a validation part carved from them."""
    x, y = _cap(pool, size if size is not None else cfg.max_train, seed)
    classes = len(torch.unique(y))  # at least one validation example per class
    n_val = max(min(int(math.ceil(cfg.val_fraction * len(y))), cfg.max_val), classes)
    tr, va = train_val_split(y.numpy(), val_size=n_val, seed=seed)
    tr, va = torch.from_numpy(tr), torch.from_numpy(va)
    k = int(torch.cat([pool[1], test[1]]).max()) + 1
    return _split(x[tr], y[tr], x[va], y[va], *test, k)


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
    x, y = _cap(source, cfg.max_source, cfg.pretrain_seed)
    tr, va = (torch.from_numpy(i) for i in train_val_split(y.numpy(), 0.1, seed=cfg.pretrain_seed))
    k = int(y.max()) + 1
    model = _new_cnn(tuple(x.shape[1:]), k, cfg, cfg.pretrain_seed)
    split = _split(x[tr], y[tr], x[va], y[va], x[:0], y[:0], k)
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


def _environment(threads: int) -> dict[str, Any]:
    """The study's environment record, with the thread count this run used."""
    env = environment()
    env["machine"]["torch_threads"] = threads  # not the count restored after the run
    return {**env, "torch_threads": threads}


def transfer_table(*, seeds: Sequence[int] = (0, 1, 2), sizes: Sequence[int | None] = (100, 1000, None),
                   pretrain_epochs: int = 5, epochs: int = 4, data_dir=None, progress: bool = True,
                   threads: int = 1, source=None, similar=None, different=None,
                   console=None, **settings: Any) -> TransferResult:
    """Pretrain on the source, transfer to the similar and the different task; every method, size and seed.

    Data: Fashion-MNIST (classes 0-4 source, 5-9 similar; ``RegularkitError`` when absent) and the digits,
    or injected: ``source=(x, y)``, ``similar=`` and ``different=`` as ``(x_train, y_train, x_test, y_test)``
    or a Dataset; images of another size than the source's are resized (bilinear).  Further keywords
    are :class:`TransferSettings` fields.  ``threads``: torch's thread count during the run (restored
    after); ``progress``: print one line per run.  Same arguments, same numbers.
    """
    cfg = TransferSettings(seeds=tuple(seeds), sizes=tuple(sizes), pretrain_epochs=pretrain_epochs, epochs=epochs,
                           **settings)
    threads = check_int("threads", threads, minimum=1)
    say: Callable[[str], None] = (lambda s: None)
    if progress:
        console = console or Console()
        say = console.print
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        names = {"source": "given arrays", "similar": "given arrays", "different": "given arrays"}
        if source is None or similar is None or different is None:
            loaded = load_tasks(data_dir)
            names.update({k: v for k, v, given in (("source", "Fashion-MNIST 0-4", source),
                                                  ("similar", "Fashion-MNIST 5-9", similar),
                                                  ("different", "digits", different)) if given is None})
            source = loaded[0] if source is None else source
            similar = loaded[1] if similar is None else similar
            different = loaded[2] if different is None else different
        source = _tensors(*source) if not isinstance(source[0], torch.Tensor) else source
        tasks = {"similar": _task(similar, "similar"), "different": _task(different, "different")}
        hw = tuple(source[0].shape[-2:])
        tasks = {t: ((_resize(tr[0], hw), tr[1]), (_resize(te[0], hw), te[1])) for t, (tr, te) in tasks.items()}
        model, pre = pretrain(source, cfg)
        say(f"pretrained on {pre['n_train']} source images: val error {100 * pre['val_error']:.1f}% "
            f"({pre['epochs']} epochs, {pre['seconds']:.0f} s)")
        records = []
        for task, (pool, test) in tasks.items():
            test = _cap(test, cfg.max_test, 0)
            for size in (cfg.sizes if task == "similar" else cfg.different_sizes):
                for seed in cfg.seeds:
                    split = make_split(pool, test, size, seed, cfg)
                    for method in METHODS:
                        t1 = time.perf_counter()
                        trained, info = run_method(method, model, split, cfg, seed)
                        error = evaluate(trained, split.x_test, split.y_test)[1]
                        records.append({"task": task, "size": size_label(size), "n_train": len(split.y_train),
                                        "n_val": len(split.y_val), "n_test": len(split.y_test),
                                        "n_pool": len(pool[1]), "seed": seed,
                                        "method": method, "test_error": error, "stages": info,
                                        "seconds": time.perf_counter() - t1})
                        say(f"[dim]{task:9s} n={size_label(size):>5s} seed {seed} {method:13s} "
                            f"test error {100 * error:5.1f}%  ({time.perf_counter() - t1:.1f} s, "
                            f"{time.perf_counter() - t0:.0f} s so far)[/]")
    finally:
        torch.set_num_threads(previous)
    return TransferResult(settings={**cfg.to_dict(), "threads": threads, "data": names}, pretrain=pre, records=records,
                          environment=_environment(threads), seconds=time.perf_counter() - t0)
