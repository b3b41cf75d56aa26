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
from regularkit.cli.args import build_parser
from regularkit.errors import RegularkitError

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
    from regularkit.study.pipeline import run_study
    cfg = study_config(args)  # the plan decides the threads and workers (what was asked for wins) and says why
    result = run_study(cfg, progress=not args.no_progress, fresh=args.fresh)
    return _unfinished(result, result.plan.cfg if result.plan is not None else cfg,
                       getattr(args, "argv", None) or ["study"])


#: Exit code of a study that ended with runs still to train (sysexits' EX_TEMPFAIL: rerun it).
INCOMPLETE_EXIT = 75


def _unfinished(result, cfg, argv: list[str]) -> int:
    """The study's last line when one of its workers died by a signal: the runs left (exit 75, the rerun
    command) or, when the other workers trained them, a note (exit 0: the table is complete)."""
    import shlex

    from regularkit.study.run.ledger import open_study
    from regularkit.study.run.worker import lost_workers, unfinished_runs
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
    from regularkit.study.tune.objective import RecipeObjective, check_space
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
    from regularkit._util.checks import check_int
    from regularkit.config import from_dict
    from regularkit.speedrun.config import SpeedrunConfig
    from regularkit.speedrun.run import run_speedrun
    from regularkit.speedrun.tune import tuned_speedrun
    names = ("seeds", "first_seed", "epochs", "budget", "without", "data_dir", "val_size", "train_size",
             "test_size", "batch_size", "lr", "widths", "threads", "precision", "channels_last", "compile", "out")
    cfg = from_options({"data": args.data, **{n: getattr(args, n) for n in names}}, config=args.config)
    if args.tune is not None:
        check_int("--tune", args.tune, minimum=1)
        record = tuned_speedrun(cfg, args.tune, progress=not args.no_progress)
        cfg = from_dict(SpeedrunConfig, record["config"], where="speedrun")
    else:
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
