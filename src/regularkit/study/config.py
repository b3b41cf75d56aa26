"""The study's own configuration (what to run), as a frozen, round-tripping dataclass.

Every field is checked on construction with strict types (a quoted number or
boolean in a TOML file is refused, never guessed), so a bad value fails before
any file is written.  :data:`NUMBER_SETTINGS` are the fields that change the
numbers a run produces: a study folder holds results of one value of each
(recipes and seeds may change between reruns: runs are per recipe and seed, and
the table shows the ones asked for).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields

from regularkit._util.checks import (
    check_bool,
    check_choice,
    check_in_range,
    check_int,
    check_int_tuple,
    check_positive,
    check_str,
)
from regularkit.data.regression import LOSSES
from regularkit.errors import RegularkitError
from regularkit.models.factory import BUILTIN_MODELS, is_factory_spec, is_python_name
from regularkit.study.recipes import DEFAULT_RECIPES
from regularkit.train.config import ModelConfig, OptimConfig, Recipe
from regularkit.train.device import DEVICES, PRECISIONS

__all__ = ["StudyConfig", "TRAIN_SIZE_DEFAULTS", "NUMBER_SETTINGS", "VAL_FLOOR", "LAYOUTS", "MAX_WIDTH", "TASKS"]

# Per-dataset defaults for the size of the training set: the embedded digits
# data is cut to 300 examples so that the baseline visibly overfits.
TRAIN_SIZE_DEFAULTS = {"digits": 300}
#: The least validation a ``train_size`` subset keeps by default (see :meth:`StudyConfig.val_count`).
VAL_FLOOR = 1000
LAYOUTS = ("vectors", "sequences", "images")
#: A hidden width or channel count above this is a typo, not a model (parameter memory is checked too).
MAX_WIDTH = 1_000_000
#: What a study learns: ``auto`` decides from the target (see :mod:`regularkit.study.task`).
TASKS = ("auto", "classification", "regression")

#: Fields whose value changes the numbers of a run (and so may not change within one study folder).
NUMBER_SETTINGS = ("data", "data_dir", "image_size", "target", "layout", "test_fraction", "test_data", "model",
                   "widths", "channels", "recipe_file", "epochs", "batch_size", "lr", "optimizer", "schedule",
                   "train_size", "val_fraction", "val_size", "data_seed", "device", "precision", "tune", "task", "loss")


@dataclass(frozen=True)
class StudyConfig:
    data: str = "digits"                   # a registered name, or a .npz / .csv / .parquet file or an image folder
    data_dir: str | None = None            # where Fashion-MNIST's files are (no fallback when given)
    image_size: tuple[int, ...] | None = None  # image folders: resize every image to H x W
    target: str | None = None              # tables: the class column
    layout: str | None = None              # vectors | sequences | images (None: inferred from the array)
    test_fraction: float | None = None     # data without a test split: this stratified share is the test set (0.2)
    test_data: str | None = None           # tables: a separate test table
    model: str = "mlp"                     # mlp | cnn | resnet, or module:function / file.py:function
    widths: tuple[int, ...] | None = None    # dense hidden widths (default: 256,256 for the MLP, 128 otherwise)
    channels: tuple[int, ...] | None = None  # conv channels per stage (default: 32,64)
    recipes: tuple[str, ...] = DEFAULT_RECIPES
    recipe_file: str | None = None
    seeds: int = 3
    epochs: int = 100
    batch_size: int = 32
    lr: float = 0.05
    optimizer: str = "sgd"
    schedule: str = "constant"
    train_size: int | None = None         # None: the dataset's default (all, or TRAIN_SIZE_DEFAULTS)
    val_fraction: float = 0.2
    val_size: int | None = None           # None: val_fraction of the pool, capped by train_size (VAL_FLOOR)
    data_seed: int = 0                     # the split is the same for every seed; seeds vary training
    device: str = "auto"                   # auto | cpu | cuda | mps
    precision: str = "fp32"                # fp32 | bf16 | fp16
    workers: int | None = None             # processes claiming runs from the ledger here (None: by the plan's rule)
    threads: int | None = None             # torch threads per worker (None: by the step's work, study/plan.py)
    tune: int = 0                          # > 0: search each recipe's strength with this many trials first
    combine: bool = False                  # also train a recipe combining the ones that helped
    out: str = "runs/study"
    storage: str | None = None             # Optuna storage URL or journal path; default: a journal file in `out`
    artifacts: str | None = None           # where test probabilities are stored for every worker (default: by the ledger)
    study_name: str = "regularkit-study"
    task: str = "auto"                     # auto | classification | regression (auto: a float target with fractions)
    loss: str | None = None                # regression: mse (default) | mae | huber; classification: cross-entropy
    stream: str = "auto"                   # auto | on | off: samples read per batch (auto: when they would not fit)
    vectorize_seeds: bool = True           # train a recipe's seeds together where it applies (study/run/vectorize.py)

    def __post_init__(self):
        check_str("data", self.data)
        for name in ("data_dir", "target", "test_data", "recipe_file", "storage", "artifacts"):
            check_str(name, getattr(self, name), allow_none=True)
        check_str("study_name", self.study_name)
        if not isinstance(self.out, str) or not self.out.strip():
            raise RegularkitError(f"out must name a folder, got {self.out!r}")
        if self.image_size is not None:
            size = check_int_tuple("image_size", self.image_size, maximum=MAX_WIDTH)
            if len(size) not in (1, 2):
                raise RegularkitError(f"image_size must be one number or H,W, got {self.image_size!r}")
        if self.layout is not None:
            check_choice("layout", self.layout, LAYOUTS)
        if self.test_fraction is not None:
            check_in_range("test_fraction", self.test_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        if not isinstance(self.model, str) or not (self.model in BUILTIN_MODELS or is_factory_spec(self.model)
                                                   or is_python_name(self.model)):
            raise RegularkitError(f"model must be one of {', '.join(BUILTIN_MODELS)}, or MODULE:FUNCTION or "
                                  f"FILE.py:FUNCTION naming a factory build(input_shape, num_classes), got {self.model!r}")
        for name in ("widths", "channels"):
            if getattr(self, name) is not None:
                check_int_tuple(name, getattr(self, name), maximum=MAX_WIDTH)
        if not isinstance(self.recipes, tuple) or not self.recipes:
            raise RegularkitError(f"recipes must name at least one recipe, got {self.recipes!r}")
        for r in self.recipes:
            check_str("recipe name", r)
        repeated = sorted({r for r in self.recipes if self.recipes.count(r) > 1})
        if repeated:
            raise RegularkitError(f"recipes names {repeated[0]!r} more than once; each recipe runs once per seed")
        check_int("seeds", self.seeds, minimum=1)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("lr", self.lr)
        check_choice("optimizer", self.optimizer, ("sgd", "adamw"))
        check_choice("schedule", self.schedule, ("constant", "step", "cosine"))
        if self.train_size is not None:
            check_int("train_size", self.train_size, minimum=2)
        check_in_range("val_fraction", self.val_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        if self.val_size is not None:
            check_int("val_size", self.val_size, minimum=1)
        check_int("data_seed", self.data_seed, minimum=0)
        check_choice("device", self.device, DEVICES)
        check_choice("precision", self.precision, PRECISIONS)
        for name in ("workers", "threads"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_int("tune", self.tune, minimum=0)
        check_bool("combine", self.combine)
        check_bool("vectorize_seeds", self.vectorize_seeds)
        check_choice("task", self.task, TASKS)
        check_choice("stream", self.stream, ("auto", "on", "off"))
        if self.loss is not None:
            check_choice("loss", self.loss, LOSSES)
            if self.task == "classification":
                raise RegularkitError(f"loss {self.loss!r} is a regression loss; a classification study trains "
                                      "with cross-entropy (use task='regression' or leave loss out)")

    def effective_train_size(self) -> int | None:
        return self.train_size if self.train_size is not None else TRAIN_SIZE_DEFAULTS.get(self.data)

    def val_count(self, pool: int) -> int | None:
        """How many of the ``pool`` training examples validation takes; None: ``val_fraction`` of the pool.

        ``val_size`` when given.  Otherwise ``val_fraction`` of the pool, except when a ``train_size``
        subset is kept: then validation stays in proportion to the training examples actually used,
        ``ceil(train_size * f / (1 - f))``, but never below :data:`VAL_FLOOR` (nor above the fraction).
        Without the cap, ``--train-size 2000`` on Fashion-MNIST kept 12,000 validation images, evaluated
        every epoch; with it, 1,000.  The floor keeps a validation error resolved to about one point
        (its standard error at 10 % error is 0.95 points), so early stopping and ``--tune`` still see
        real differences; the cap never binds on the default digits study (252 of 1,257).
        """
        if self.val_size is not None:
            return self.val_size
        size = self.effective_train_size()
        by_fraction = int(math.ceil(self.val_fraction * pool))
        if size is None:
            return None
        cap = max(VAL_FLOOR, int(math.ceil(size * self.val_fraction / (1.0 - self.val_fraction))))
        return cap if cap < by_fraction else None

    def threads_per_worker(self) -> int:
        """``threads`` if given, else the cores shared out between the workers: ``max(1, cores // workers)``.

        A study's plan sets both ``threads`` and ``workers`` (by the work of a step and the cores:
        :func:`regularkit.study.plan.make_plan`), so its config answers with the plan's count; the
        fallback is for a config no plan has resolved (``regularkit search``).
        """
        return self.threads if self.threads is not None else max(1, (os.cpu_count() or 1) // (self.workers or 1))

    def is_factory(self) -> bool:
        """Whether the model is the user's ``build`` function rather than a built-in."""
        return self.model not in BUILTIN_MODELS

    def base_recipe(self) -> Recipe:
        widths = self.widths or ((256, 256) if self.model == "mlp" else (128,))
        channels = self.channels or (32, 64)
        model = (ModelConfig(kind="factory", factory=self.model, widths=widths, channels=channels)
                 if self.is_factory() else ModelConfig(kind=self.model, widths=widths, channels=channels))
        return Recipe(model=model, optim=OptimConfig(optimizer=self.optimizer, lr=self.lr, epochs=self.epochs,
                                                     batch_size=self.batch_size, schedule=self.schedule))

    def number_settings(self) -> dict:
        """The values of :data:`NUMBER_SETTINGS` (what must match for two runs' numbers to be comparable)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in NUMBER_SETTINGS}
