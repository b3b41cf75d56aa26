"""The study's own configuration (what to run), as a frozen, round-tripping dataclass."""
from __future__ import annotations

from dataclasses import dataclass

from regularkit._util.checks import check_choice, check_in_range, check_int, check_positive
from regularkit.errors import RegularkitError
from regularkit.study.recipes import DEFAULT_RECIPES
from regularkit.train.config import ModelConfig, OptimConfig, Recipe

# Per-dataset defaults for the size of the training set: the embedded digits
# data is cut to 300 examples so that the baseline visibly overfits.
TRAIN_SIZE_DEFAULTS = {"digits": 300}


@dataclass(frozen=True)
class StudyConfig:
    data: str = "digits"
    data_dir: str | None = None
    model: str = "mlp"
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
    data_seed: int = 0                     # the split is the same for every seed; seeds vary training
    out: str = "runs/study"
    storage: str | None = None             # Optuna storage URL; default: a journal file in `out`
    study_name: str = "regularkit-study"

    def __post_init__(self):
        check_choice("model", self.model, ("mlp", "cnn", "resnet"))
        check_int("seeds", self.seeds, minimum=1)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("lr", self.lr)
        check_in_range("val_fraction", self.val_fraction, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        if self.train_size is not None:
            check_int("train_size", self.train_size, minimum=2)
        if not self.recipes:
            raise RegularkitError("recipes must name at least one recipe, got none")

    def effective_train_size(self) -> int | None:
        return self.train_size if self.train_size is not None else TRAIN_SIZE_DEFAULTS.get(self.data)

    def base_recipe(self) -> Recipe:
        widths = self.widths or ((256, 256) if self.model == "mlp" else (128,))
        channels = self.channels or (32, 64)
        return Recipe(
            model=ModelConfig(kind=self.model, widths=widths, channels=channels),
            optim=OptimConfig(optimizer=self.optimizer, lr=self.lr, epochs=self.epochs,
                              batch_size=self.batch_size, schedule=self.schedule),
        )
