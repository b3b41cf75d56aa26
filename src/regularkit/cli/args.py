"""The command line's grammar: every subcommand's arguments, parsed with one-line errors.

No torch here (``regularkit --help`` stays fast); :mod:`regularkit.cli` turns the parsed
arguments into configs and calls the library.
"""
from __future__ import annotations

import argparse
import sys

from regularkit import __version__

# The demo names, listed here so `regularkit --help` does not import torch; a test checks
# that they are exactly the keys of regularkit.demos.DEMOS.
DEMO_NAMES = ("bias-variance", "l1-vs-l2", "mc-dropout", "transfer")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors in the one-line form every other error has (and exit code 2).

    Abbreviated flags are refused (``--epoch`` is not ``--epochs``): a typo must not run a study.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        print(f"regularkit: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _csv(text: str) -> tuple[str, ...]:
    """``a,b,c`` as a tuple; ``""`` is the empty tuple (refused where a list is needed), an empty item is refused."""
    if not text.strip():
        return ()
    items = tuple(s.strip() for s in text.split(","))
    if "" in items:
        raise argparse.ArgumentTypeError(f"expected comma-separated values without empty items, got {text!r} "
                                         f"(item {items.index('') + 1} is empty)")
    return items


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _add_common(p) -> None:
    """Flags shared by `study` and `search`: data, model, training budget, where results go."""
    p.add_argument("--config", metavar="TOML", help="a study.toml (as saved in a study folder); flags override it")
    p.add_argument("--data", help="digits (default, embedded), fashion-mnist, a .npz file, an image folder "
                                  "(root/<class>/*.png), or a .csv / .parquet table (with --target)")
    p.add_argument("--data-dir", help="folder holding the fashion-mnist IDX files")
    p.add_argument("--image-size", type=_ints, help="image folders: resize every image to H,W (or one number)")
    p.add_argument("--stream", choices=("auto", "on", "off"), help="image folders and torch Datasets: decode each "
                   "batch when training reads it, memory bounded by a batch (default auto: when the decoded data "
                   "would not fit; same numbers either way)")
    p.add_argument("--target", help="tables: the column holding the class, or the numeric column(s) to "
                                    "predict (a,b: several outputs)")
    p.add_argument("--task", choices=("auto", "classification", "regression"),
                   help="auto (default): regression for a floating-point target, else classification")
    p.add_argument("--loss", choices=("mse", "mae", "huber"), help="regression: the training loss (default mse)")
    p.add_argument("--layout", choices=("vectors", "sequences", "images"),
                   help=".npz: how to read a 3-D x (default: N x H x W images)")
    p.add_argument("--test-fraction", type=float, help="data without a test split: the stratified share held out "
                                                       "as the test set (default 0.2)")
    p.add_argument("--test-data", help="tables: a separate test table")
    p.add_argument("--model", help="mlp (default), cnn, resnet, or your factory: my_package.module:build or "
                                   "path/to/file.py:build, where build(input_shape, num_classes) returns an nn.Module")
    p.add_argument("--widths", type=_ints, help="dense hidden widths, e.g. 512,256")
    p.add_argument("--channels", type=_ints, help="conv channels per stage, e.g. 16,32")
    p.add_argument("--recipe-file", help="TOML file with [recipes.NAME] tables")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=("sgd", "adamw"))
    p.add_argument("--schedule", choices=("constant", "step", "cosine"))
    p.add_argument("--train-size", type=int, help="use a stratified subset of this many training examples")
    p.add_argument("--val-fraction", type=float, help="fraction of the training set held out for validation "
                                                      "(default 0.2; with --train-size, validation stays in proportion "
                                                      "to it: ceil(train_size*f/(1-f)), at least 1000)")
    p.add_argument("--val-size", type=int, help="this many validation examples (overrides --val-fraction)")
    p.add_argument("--out", help="results folder (default runs/study)")
    p.add_argument("--storage", help="Optuna storage URL or journal path shared by workers (default: a journal "
                                     "file in --out)")
    p.add_argument("--study-name")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train (default auto: CUDA if "
                                                                            "present)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="mixed precision (default fp32)")
    p.add_argument("--threads", type=int, help="torch threads per worker (study default: one per GFLOP of a "
                                               "training step, at most the cores per worker: 1 for the built-in "
                                               "models on digits and Fashion-MNIST; search default: cores / "
                                               "workers); part of every run key: other threads make new runs")


def _add_study(sub) -> None:
    p = sub.add_parser("study", help="train each recipe over seeds and report train/val/test error and the gap",
                       description="Train each recipe over seeds and report what it buys. With no options: "
                                   "the embedded digits data, an MLP, and the default recipes.")
    _add_common(p)
    p.add_argument("--recipes", type=_csv, help="comma-separated recipe names (see `regularkit recipes`)")
    p.add_argument("--seeds", type=int, help="number of seeds per recipe (default 3)")
    p.add_argument("--tune", type=int, metavar="N", help="first search each recipe's strength on the validation "
                                                         "split with N trials (Optuna TPE, pruning)")
    p.add_argument("--combine", action="store_const", const=True, help="also train a recipe combining the ones "
                                                                        "that lowered validation error")
    p.add_argument("--workers", type=int, help="processes training runs side by side (default: one per core the "
                                               "threads leave and other processes do not keep busy, when the runs "
                                               "have at least 5,000 steps per worker and memory holds each worker's "
                                               "copy of the data; the 'threads:' line says which and why; at most 4 "
                                               "per core)")
    p.add_argument("--artifacts", help="folder for the runs' test probabilities shared by every worker "
                                       "(default: next to the ledger)")
    p.add_argument("--fresh", action="store_true", help="move an existing study in --out aside and start anew")
    p.add_argument("--vectorize-seeds", action=argparse.BooleanOptionalAction, help="train a recipe's seeds together "
                   "as one model where it applies (the same numbers; SAM, R-Drop, SWA, snapshots, fp16 and "
                   "regression train one seed at a time)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _stages(text: str) -> list[tuple[int, int]]:
    try:
        return [(int(a), int(b)) for a, b in (part.split(":") for part in _csv(text))]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRIALS:EPOCHS,TRIALS:EPOCHS..., got {text!r}") from None


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="search hyper-parameters of a recipe on the validation split (Optuna)",
                       description="Search any recipe field over a TOML space; the test set is used once, "
                                   "with --final-test, for the chosen configuration.")
    p.add_argument("--space", required=True, help="TOML search space ([space] table)")
    p.add_argument("--recipe", default="baseline", help="the recipe whose fields are searched")
    p.add_argument("--sampler", default="random", choices=("random", "grid", "tpe"))
    p.add_argument("--trials", type=int, help="total trials (a rerun resumes up to this number)")
    p.add_argument("--stages", type=_stages, help="coarse-to-fine: TRIALS:EPOCHS per stage, e.g. 20:5,20:20")
    p.add_argument("--pruner", choices=("hyperband", "halving"), help="stop bad trials early")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the storage")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--final-test", action="store_true", help="evaluate the best configuration on the test set, once")
    _add_common(p)
    p.set_defaults(recipes=None, seeds=None)


def _add_speedrun(sub) -> None:
    p = sub.add_parser("speedrun", help="the toolbox composed for time to accuracy (airbench's recipe on a CPU)",
                       description="Train the speed-run network (whitening stem, batch norm, label smoothing, "
                                   "flip + translate, EMA, TTA, decoupled weight decay) for each seed and report "
                                   "test accuracy and wall time. See docs/speedrun.md.")
    p.add_argument("data", choices=("fashion-mnist",))
    p.add_argument("--config", metavar="TOML", help="a saved <label>.toml; flags override it")
    p.add_argument("--seeds", type=int, help="runs with seeds first-seed, first-seed + 1, ... (default 1)")
    p.add_argument("--first-seed", type=int)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--epochs", type=int, help="a fixed number of epochs (default: as many as fit in --budget)")
    group.add_argument("--budget", type=float, metavar="SECONDS", help="wall seconds per seed (default 600): the epochs "
                       "that fit, from a timed probe, with the one-cycle schedule compressed to fit")
    p.add_argument("--without", type=_csv, help="techniques to remove, e.g. ema,tta, or 'unregularized' "
                                                "(whiten, bn, smoothing, flip, translate, ema, tta, decay)")
    p.add_argument("--data-dir", help="folder holding the fashion-mnist IDX files")
    p.add_argument("--val-size", type=int, help="validation images held out of training (default 5000)")
    p.add_argument("--train-size", type=int, help="a stratified subset of the training images (smoke runs)")
    p.add_argument("--test-size", type=int, help="the first N test images (smoke runs)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--widths", type=_ints, help="channels of each conv group, e.g. 64,128,256")
    p.add_argument("--threads", type=int, help="torch threads (default: by the step's work and the cores other "
                                               "processes leave free)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="auto (default): bf16 where the CPU has "
                   "native bf16 matmuls (AVX-512 BF16, AMX), else fp32; the plan line says which and why")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--tune", type=int, metavar="N", help="first search the run's strengths (smoothing, decay, EMA, "
                   "translation; epochs under --epochs) for N trials of seed 0 on validation, then train every seed "
                   "of the chosen configuration (saved as <out>/tuned.toml); resumes")
    p.add_argument("--out", help="results folder (default runs/speedrun)")
    p.add_argument("--no-progress", action="store_true", help="no line per epoch")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="regularkit", description="The regularization toolbox of deep learning.")
    parser.add_argument("--version", action="version", version=f"regularkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_study(sub)
    _add_search(sub)
    _add_speedrun(sub)
    sub.add_parser("recipes", help="list the named recipes")
    d = sub.add_parser("data", help="download a dataset")
    d.add_argument("action", choices=("download",))
    d.add_argument("name", choices=("fashion-mnist",))
    d.add_argument("--dest", help="folder to write to (default $REGULARKIT_DATA, else ~/.cache/regularkit/NAME)")
    d.add_argument("--base-url", help="mirror to download from (default: the official files)")
    m = sub.add_parser("demo", help="the lectures' demonstrations, measured")
    m.add_argument("name", choices=DEMO_NAMES)
    m.add_argument("--out", default="runs/demos")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--quick", action="store_true", help="transfer: tiny subsets and epochs (a smoke run)")
    m.add_argument("--data-dir", help="transfer: folder holding the fashion-mnist IDX files")
    m.add_argument("--threads", type=int, help="transfer: torch threads (default 1)")
    return parser
