"""The ``regularkit`` command: parse, build a config, call the library.

Bad input (an unknown recipe, a missing data file, a negative weight decay)
prints one line naming the value and exits with code 2; results already
written stay where they are.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Sequence

from regularkit._util.signals import SIGINT_EXIT, SIGTERM_EXIT, Terminated, ignore_interrupts, interrupts_raise
from regularkit.errors import RegularkitError

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
    p.add_argument("--val-fraction", type=float, help="fraction of the training set held out for validation")
    p.add_argument("--out", help="results folder (default runs/study)")
    p.add_argument("--storage", help="Optuna storage URL or journal path shared by workers (default: a journal "
                                     "file in --out)")
    p.add_argument("--study-name")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train (default auto: CUDA if "
                                                                            "present)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="mixed precision (default fp32)")
    p.add_argument("--threads", type=int, help="torch threads per worker (default: cores / workers); part of every "
                                               "run key: other threads make new runs")


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
    p.add_argument("--workers", type=int, help="processes training runs side by side (default 1; at most 4 per core: "
                                               "each is a Python process with its own copy of the data)")
    p.add_argument("--artifacts", help="folder for the runs' test probabilities shared by every worker "
                                       "(default: next to the ledger)")
    p.add_argument("--fresh", action="store_true", help="move an existing study in --out aside and start anew")
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
    group.add_argument("--epochs", type=int)
    group.add_argument("--budget", type=float, metavar="SECONDS", help="wall seconds per seed: the epochs that fit, "
                                                                       "from a timed probe")
    p.add_argument("--without", type=_csv, help="techniques to remove, e.g. ema,tta, or 'unregularized' "
                                                "(whiten, bn, smoothing, flip, translate, ema, tta, decay)")
    p.add_argument("--data-dir", help="folder holding the fashion-mnist IDX files")
    p.add_argument("--val-size", type=int, help="validation images held out of training (default 5000)")
    p.add_argument("--train-size", type=int, help="a stratified subset of the training images (smoke runs)")
    p.add_argument("--test-size", type=int, help="the first N test images (smoke runs)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--widths", type=_ints, help="channels of each conv group, e.g. 64,128,256")
    p.add_argument("--threads", type=int, help="torch threads (default 2)")
    p.add_argument("--precision", choices=("fp32", "bf16"))
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--out", help="results folder (default runs/speedrun)")
    p.add_argument("--no-progress", action="store_true", help="no line per epoch")


def study_config(args: argparse.Namespace):
    from regularkit.config import from_dict, load_toml, to_dict
    from regularkit.study.config import StudyConfig
    base = to_dict(StudyConfig()) if args.config is None else to_dict(from_dict(StudyConfig, load_toml(args.config)))
    for name in base:  # every StudyConfig field has the flag of the same name (--train-size: train_size)
        value = getattr(args, name, None)
        if value is not None:
            base[name] = list(value) if isinstance(value, tuple) else value
    return from_dict(StudyConfig, base, where="study")


def cmd_study(args) -> int:
    import torch

    from regularkit.study.pipeline import run_study
    cfg = study_config(args)
    torch.set_num_threads(cfg.threads_per_worker())
    result = run_study(cfg, progress=not args.no_progress, fresh=args.fresh)
    return _unfinished(result, cfg, getattr(args, "argv", None) or ["study"])


#: Exit code of a study that ended with runs still to train (sysexits' EX_TEMPFAIL: rerun it).
INCOMPLETE_EXIT = 75


def _unfinished(result, cfg, argv: list[str]) -> int:
    """The study's last line when one of its workers died by a signal: the runs left (exit 75, the rerun
    command) or, when the other workers trained them, a note (exit 0: the table is complete)."""
    import shlex

    from regularkit.study.ledger import open_study
    from regularkit.study.worker import lost_workers, unfinished_runs
    complete = result.plan is None or len(result.records) >= len(result.plan.jobs)
    if complete and cfg.workers == 1:  # no worker to lose: nothing to say, no second read of the ledger
        return 0
    study = open_study(result.out_dir, cfg.study_name, cfg.storage)
    left = {} if complete else unfinished_runs(result.plan, study)
    if not left:  # complete, or the rest still running in another command sharing the ledger (it reports them)
        lost = lost_workers(study)
        if lost:
            print(f"regularkit: note: {len(lost)} study worker(s) died by a signal ({'; '.join(lost)}); the others "
                  "trained their runs, so the table is complete", file=sys.stderr)
        return 0
    why = "; ".join(f"{run}: {reason}" for run, reason in left.items())
    rerun = shlex.join(["regularkit", *(a for a in argv if a != "--fresh")])  # --fresh would move them aside
    print(f"regularkit: {len(left)} of {len(result.plan.jobs)} runs did not finish ({why}); train them with: "
          f"{rerun}", file=sys.stderr)
    return INCOMPLETE_EXIT


def cmd_search(args) -> int:
    import torch

    from regularkit.config import to_dict
    from regularkit.search import SearchSpace, coarse_to_fine, final_test, run_search, search_report
    from regularkit.search.samplers import check_sampler_args
    from regularkit.search.storage import check_storage
    from regularkit.study.folder import check_folder
    from regularkit.study.objective import RecipeObjective, check_space
    cfg = study_config(args)
    torch.set_num_threads(cfg.threads_per_worker())
    # validate everything before anything is written: the recipe, the space against it, the data, the
    # budget, the sampler, the storage and the folder
    objective = RecipeObjective(to_dict(cfg), recipe=args.recipe, seed=args.seed)
    space = SearchSpace.from_toml(args.space)
    check_space(space, objective)
    if args.stages is None and args.trials is None:
        raise RegularkitError("--trials is required without --stages, got none")
    if args.trials is not None and args.trials < 1:
        raise RegularkitError(f"--trials must be >= 1, got {args.trials}")
    if args.workers < 1:
        raise RegularkitError(f"--workers must be >= 1, got {args.workers}")
    for n, e in args.stages or ():
        if n < 1 or e < 1:
            raise RegularkitError(f"--stages needs TRIALS:EPOCHS of at least 1:1, got {n}:{e}")
    check_sampler_args(args.sampler, space, 5, seed=args.seed)
    objective.splits()  # loads and checks the data now, not in the first trial
    if args.storage is not None:
        check_storage(args.storage)
    out = check_folder(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or str(out / "search.journal")  # a journal file next to the report
    common = dict(sampler=args.sampler, seed=args.seed, storage=storage, study_name=cfg.study_name,
                  pruner=args.pruner, workers=args.workers)
    if args.stages:
        stages = [{"n_trials": n, "optim.epochs": e} for n, e in args.stages]
        result = coarse_to_fine(objective, space, stages, **common)
    else:
        result = run_search(objective, space, n_trials=args.trials, **common)
    search_report(result, out)
    print(f"best val error {result.best_value:.4f} with {result.best_params}")
    for w in result.warnings:
        print(f"warning: {w}")
    print(f"report in {out}/")
    if args.final_test:
        value = final_test(result, objective.test_error)
        search_report(result, out)  # the report and summary.json show the look
        print(f"test error of the chosen configuration (the test set's one look): {value:.4f}")
    return 0


def cmd_speedrun(args) -> int:
    from rich.console import Console

    from regularkit.speedrun.config import from_options
    from regularkit.speedrun.report import results_table, slug
    from regularkit.speedrun.run import run_speedrun
    names = ("seeds", "first_seed", "epochs", "budget", "without", "data_dir", "val_size", "train_size",
             "test_size", "batch_size", "lr", "widths", "threads", "precision", "channels_last", "compile", "out")
    cfg = from_options({"data": args.data, **{n: getattr(args, n) for n in names}}, config=args.config)
    record = run_speedrun(cfg, progress=not args.no_progress)
    Console().print(results_table(record))
    print(f"results in {Path(cfg.out) / slug(cfg)}.json (config: .toml, curve: -curve.png)")
    return 0


def cmd_recipes(args) -> int:
    from regularkit.study.recipes import DEFAULT_RECIPES, RECIPES
    width = max(map(len, RECIPES))
    for name, (description, overrides) in RECIPES.items():
        mark = "*" if name in DEFAULT_RECIPES else " "
        print(f"{mark} {name:<{width}}  {description}")
    print("\n* in the default study")
    return 0


def cmd_data(args) -> int:
    from regularkit.data.download import download
    # No --dest: the default data root, which is also where loading looks.
    paths = download(args.name, Path(args.dest) if args.dest else None, base_url=args.base_url)
    for p in paths:
        print(p)
    print(f"use it with: regularkit study --data {args.name} --data-dir {paths[0].parent}")
    return 0


def cmd_demo(args) -> int:
    from regularkit.demos import DEMOS
    demo = DEMOS[args.name]
    # given = set on the command line: --threads 0 is given (and refused by the demo), not dropped as falsy
    given = {name: getattr(args, name) for name in ("quick", "data_dir", "threads")
             if getattr(args, name) is not None and getattr(args, name) is not False}
    refused = sorted(set(given) - set(demo.options))
    if refused:
        flags = ", ".join("--" + name.replace("_", "-") for name in refused)
        raise RegularkitError(f"demo {args.name!r} takes no {flags}; it takes "
                              f"{', '.join('--' + o.replace('_', '-') for o in demo.options) or 'only --out and --seed'}")
    paths = demo.run(Path(args.out), seed=args.seed, **given)
    for p in paths:
        print(p)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from regularkit import __version__
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


COMMANDS = {"study": cmd_study, "search": cmd_search, "speedrun": cmd_speedrun, "recipes": cmd_recipes,
            "data": cmd_data, "demo": cmd_demo}


def _interrupted(args, code: int) -> int:
    # a second Ctrl-C is ignored by now (see regularkit._util.signals): one line, never a traceback
    out = getattr(args, "out", None) or ("runs/study" if getattr(args, "command", None) in (None, "study") else None)
    kept = f"; finished runs are kept in {out}/ and a rerun resumes" if out else ""
    if getattr(args, "command", None) == "speedrun":
        kept = f"; finished seeds are kept in {out or 'runs/speedrun'}/"
    print(f"regularkit: interrupted{' (SIGTERM)' if code == SIGTERM_EXIT else ''}{kept}", file=sys.stderr)
    return code


def _one_line_warnings(original):
    """``warnings.showwarning`` printing data warnings in the one-line form of the errors; others as before."""
    def show(message, category, filename, lineno, file=None, line=None):
        from regularkit.data.schema import DataWarning
        if issubclass(category, DataWarning):
            print(f"regularkit: warning: {message}", file=sys.stderr if file is None else file)
        else:
            original(message, category, filename, lineno, file, line)
    return show


def main(argv: Sequence[str] | None = None) -> int:
    """The ``regularkit`` command.  ``argv=None`` (the program itself): once interrupted, it stays deaf
    to Ctrl-C until it exits, so a second press during the interpreter's shutdown prints nothing.  Called
    with ``argv`` from Python, the caller's signal handlers come back on return."""
    with interrupts_raise():
        code = _main(argv)
    if argv is None and code in (SIGINT_EXIT, SIGTERM_EXIT):
        ignore_interrupts()
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = None
    try:
        parser = build_parser()
        argv = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        command = args.command or "study"
        if args.command is None:  # bare `regularkit` runs the default study
            args = parser.parse_args(["study", *argv])
        args.argv = argv  # what to print as the rerun command
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return COMMANDS[command](args)
    except RegularkitError as exc:
        print(f"regularkit: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        return _interrupted(args, SIGTERM_EXIT)
    except KeyboardInterrupt:
        return _interrupted(args, SIGINT_EXIT)
