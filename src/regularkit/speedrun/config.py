"""The speed run's configuration: a frozen dataclass, checked on construction, that round-trips to TOML and JSON.

Every field is checked with strict types (a quoted number or a ``0`` for
``false`` is refused), so a bad value fails in one line before any work.
The defaults are the configuration the documented runs use; how each was
chosen (on a validation split, never the test set) is in ``docs/speedrun.md``.

Techniques and ablations: :data:`TECHNIQUES` names every regularizing piece
the run composes; ``without`` removes some of them, keeping everything else
(airbench's ablation rows).  :data:`UNREGULARIZED` is the set the plain
baseline removes (``--without unregularized``): every regularizer except batch
norm, which stays because the same network and learning rate do not train
stably without it (its own ablation row shows what removing it costs).

Length and precision follow the machine at hand by default: with neither
``epochs`` nor ``budget`` given, a run trains the epochs that fit in
:data:`DEFAULT_BUDGET` seconds (a timed probe, :mod:`~regularkit.speedrun.budget`),
``precision="auto"`` is bf16 only where the CPU multiplies bf16 natively
(:func:`regularkit.train.device.resolve_precision`), and ``threads=None`` is
what :func:`regularkit._util.threads.default_threads` gives for the network's
step and the cores other processes leave free.  ``epochs`` fixes the length
instead (the way to repeat a run exactly); giving both is an error.
"""
from __future__ import annotations

from dataclasses import dataclass

from regularkit._util.checks import (
    check_bool,
    check_choice,
    check_in_range,
    check_int,
    check_int_tuple,
    check_non_negative,
    check_positive,
    check_str,
)
from regularkit.config import from_dict, load_toml, to_dict
from regularkit.errors import RegularkitError

__all__ = ["SpeedrunConfig", "TECHNIQUES", "UNREGULARIZED", "DATASETS", "PRECISIONS", "DEFAULT_BUDGET",
           "expand_without", "from_options"]

#: name -> what removing it means (the ablation table's rows, in this order).
TECHNIQUES: dict[str, str] = {
    "whiten": "first layer a trainable conv with torch's default init, not frozen patch whitening",
    "bn": "no batch norm (convolutions get biases)",
    "smoothing": "no label smoothing (plain cross-entropy)",
    "flip": "no random horizontal flips",
    "translate": "no random translation",
    "ema": "evaluate the last weights, not their exponential moving average",
    "tta": "one forward pass per test image, no flip/translate test-time augmentation",
    "decay": "no weight decay",
}
#: What the unregularized baseline removes: every technique but batch norm (module docstring).
UNREGULARIZED: tuple[str, ...] = ("whiten", "smoothing", "flip", "translate", "ema", "tta", "decay")
DATASETS = ("fashion-mnist",)
PRECISIONS = ("auto", "fp32", "bf16")
#: Seconds per seed when neither ``epochs`` nor ``budget`` is given: the 10 minutes the speed run is about.
DEFAULT_BUDGET = 600.0


def expand_without(names) -> tuple[str, ...]:
    """Technique names in :data:`TECHNIQUES` order; ``"unregularized"`` stands for :data:`UNREGULARIZED`."""
    if isinstance(names, str) or not isinstance(names, (tuple, list)):
        raise RegularkitError(f"without must be a list of technique names, got {names!r}")
    chosen: set[str] = set()
    for name in names:
        if name == "unregularized":
            chosen.update(UNREGULARIZED)
            continue
        if not isinstance(name, str) or name not in TECHNIQUES:
            raise RegularkitError(f"without: unknown technique {name!r}; known: {', '.join(TECHNIQUES)}, "
                                  "unregularized")
        chosen.add(name)
    return tuple(t for t in TECHNIQUES if t in chosen)


@dataclass(frozen=True)
class SpeedrunConfig:
    data: str = "fashion-mnist"
    data_dir: str | None = None            # folder holding the IDX files (default: the usual places)
    seeds: int = 1                         # runs with seeds first_seed, first_seed + 1, ...
    first_seed: int = 0
    val_size: int = 5000                   # held out of the 60k training images (seeded, stratified, fixed)
    split_seed: int = 0                    # the validation split is the same for every seed
    train_size: int | None = None          # a stratified subset of the training part (tests, smoke runs)
    test_size: int | None = None           # the first N test images (tests, smoke runs)
    epochs: int | None = None              # a fixed length (35: about 9 minutes on an AVX-512 BF16 CPU, 2 cores)
    budget: float | None = None            # seconds per run: the epochs that fit (a timed probe); neither: 600
    batch_size: int = 512
    lr: float = 0.2                        # peak learning rate (SGD, Nesterov momentum)
    momentum: float = 0.9
    warmup: float = 0.2                    # fraction of the steps the learning rate rises linearly from 0
    weight_decay: float = 5e-4             # decoupled: w <- w - lr_t * wd * w on weights only
    label_smoothing: float = 0.2
    translate: int = 2                     # pixels, each direction, zero fill
    ema_decay: float = 0.99                # per step, TensorFlow's warm-up
    tta_shift: int = 1                     # test views: identity, flip, and both shifted by +-this (0: flips only)
    widths: tuple[int, ...] = (64, 128, 256)
    patch: int = 4                         # whitening patch size (stride 2)
    whiten_eps: float = 5e-4
    bn_momentum: float = 0.1
    precision: str = "auto"                # auto | fp32 | bf16 (autocast): auto is bf16 only where it is native
    channels_last: bool = True
    compile: bool = False                  # torch.compile (inductor); its compile time is part of the wall time
    threads: int | None = None             # torch threads; None: by the step's work and the cores free now
    without: tuple[str, ...] = ()
    out: str = "runs/speedrun"

    def __post_init__(self):
        check_choice("data", self.data, DATASETS)
        check_str("data_dir", self.data_dir, allow_none=True)
        check_int("seeds", self.seeds, minimum=1)
        check_int("first_seed", self.first_seed, minimum=0)
        check_int("val_size", self.val_size, minimum=1)
        check_int("split_seed", self.split_seed, minimum=0)
        for name in ("train_size", "test_size"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=2)
        if self.epochs is not None:
            check_int("epochs", self.epochs, minimum=1)
        if self.budget is not None:
            check_positive("budget", self.budget)
            if self.epochs is not None:
                raise RegularkitError(f"epochs ({self.epochs}) and budget ({self.budget:g} s) exclude each other: "
                                      f"give one (neither: the epochs that fit in {DEFAULT_BUDGET:g} s)")
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("lr", self.lr)
        check_in_range("momentum", self.momentum, 0.0, 1.0, high_inclusive=False)
        check_in_range("warmup", self.warmup, 0.0, 1.0, high_inclusive=False)
        check_non_negative("weight_decay", self.weight_decay)
        check_in_range("label_smoothing", self.label_smoothing, 0.0, 1.0, high_inclusive=False)
        check_int("translate", self.translate, minimum=0)
        check_in_range("ema_decay", self.ema_decay, 0.0, 1.0, high_inclusive=False)
        check_int("tta_shift", self.tta_shift, minimum=0)
        check_int_tuple("widths", self.widths, maximum=4096)
        check_int("patch", self.patch, minimum=2)
        if self.patch > 6:
            raise RegularkitError(f"patch must be at most 6 (a whitening patch of k x k pixels), got {self.patch}")
        check_non_negative("whiten_eps", self.whiten_eps)
        check_in_range("bn_momentum", self.bn_momentum, 0.0, 1.0, low_inclusive=False)
        check_choice("precision", self.precision, PRECISIONS)
        check_bool("channels_last", self.channels_last)
        check_bool("compile", self.compile)
        if self.threads is not None:
            check_int("threads", self.threads, minimum=1)
        # normalised: each technique once, in TECHNIQUES order ("unregularized" expanded), so equal runs compare equal
        object.__setattr__(self, "without", expand_without(self.without))
        if not isinstance(self.out, str) or not self.out.strip():
            raise RegularkitError(f"out must name a folder, got {self.out!r}")

    def uses(self, technique: str) -> bool:
        """Whether the run composes ``technique`` (one of :data:`TECHNIQUES`)."""
        check_choice("technique", technique, tuple(TECHNIQUES))
        return technique not in self.without

    def budget_seconds(self) -> float | None:
        """The wall seconds per seed the epochs are chosen for, or None when ``epochs`` fixes them."""
        if self.epochs is not None:
            return None
        return DEFAULT_BUDGET if self.budget is None else float(self.budget)

    def seed_list(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))

    def label(self) -> str:
        """How the run is named in tables: ``full``, ``unregularized`` or ``without a, b``."""
        if not self.without:
            return "full"
        if set(self.without) == set(UNREGULARIZED):
            return "unregularized"
        return "without " + ", ".join(self.without)


def from_options(options: dict, *, config: str | None = None) -> SpeedrunConfig:
    """The config of a command line: a TOML file's (``config``) or the defaults, then every given option over it.

    ``options`` maps field names to values; ``None`` means "not given".  Unknown
    fields and bad values are one-line errors naming them.  ``epochs`` given replaces a
    file's ``budget`` and ``budget`` a file's ``epochs`` (the length is one choice).
    """
    base = to_dict(SpeedrunConfig()) if config is None else load_toml(config)
    for given, other in (("epochs", "budget"), ("budget", "epochs")):
        if options.get(given) is not None:
            base.pop(other, None)
    for name, value in options.items():
        if value is not None:
            base[name] = list(value) if isinstance(value, tuple) else value
    return from_dict(SpeedrunConfig, base, where="speedrun")
