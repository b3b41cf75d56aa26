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

from dataclasses import asdict, dataclass
from typing import Any

import torch

from regularkit._util.checks import check_in_range, check_int, check_positive
from regularkit.errors import RegularkitError

__all__ = ["METHODS", "TASKS", "ADVICE", "QUICK", "Arrays", "TransferSettings"]

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
