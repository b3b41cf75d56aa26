"""The speed run's results table and ablation, reproducible from one command (docs/speedrun.md).

    .venv/bin/python bench/speedrun_ablation.py                 # everything: about 12 runs of a few minutes
    .venv/bin/python bench/speedrun_ablation.py --only full     # just the 3 seeds of the full run

Runs, each through :func:`regularkit.speedrun.run_speedrun` (the library behind
``regularkit speedrun``; the equivalent command line is printed with each row):

* ``full``: seeds 0, 1, 2 (``--seeds 3``);
* ``unregularized``: ``--without unregularized --budget T`` with T the full
  run's mean wall seconds, i.e. the same time budget (it may fit more epochs:
  no EMA, no TTA);
* one row per technique removed (``--without X``), seed 0 unless
  ``--ablation-seeds`` says more, compared with the full run's same seeds;
  with ``--ablation-epochs N`` these rows train N epochs instead, beside a
  ``full`` row of N epochs that they are compared with (in ``--out``/short).

A configuration whose ``<label>.json`` in ``--out`` already holds its seeds
(same config) is not run again, so the script resumes after an interruption.
It writes ``ablation.md`` (the table) and ``curve.png`` (validation accuracy
against wall seconds, full and unregularized) into ``--out``, and copies the
figure to ``--figure`` (default ``docs/speedrun-curve.png``).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from regularkit._util.fmt import pct, pct_pm
from regularkit._util.io import atomic_savefig, atomic_write_text
from regularkit.config import to_dict, replace
from regularkit.metrics.summary import mean_std
from regularkit.speedrun import TECHNIQUES, SpeedrunConfig, run_speedrun
from regularkit.speedrun.report import plot_curve, slug


def command(cfg: SpeedrunConfig) -> str:
    parts = ["regularkit speedrun fashion-mnist"]
    if cfg.seeds > 1:
        parts.append(f"--seeds {cfg.seeds}")
    if cfg.first_seed:
        parts.append(f"--first-seed {cfg.first_seed}")
    if cfg.without:
        label = cfg.label()
        parts.append("--without " + ("unregularized" if label == "unregularized" else ",".join(cfg.without)))
    if cfg.budget is not None:
        parts.append(f"--budget {cfg.budget:.0f}")
    elif cfg.epochs != SpeedrunConfig().epochs:
        parts.append(f"--epochs {cfg.epochs}")
    return " ".join(parts)


def run_or_load(cfg: SpeedrunConfig, out: Path) -> dict:
    path = out / f"{slug(cfg)}.json"
    if path.exists():
        record = json.loads(path.read_text())
        if record["config"] == to_dict(cfg) and record["summary"]["seeds"] == cfg.seeds:
            print(f"[kept] {command(cfg)}", file=sys.stderr)
            return record
    print(f"[run] {command(cfg)}", file=sys.stderr)
    return run_speedrun(cfg)


def by_seed(record: dict) -> dict[int, dict]:
    return {r["seed"]: r for r in record["results"]}


def table(full: dict, rows: list[tuple[SpeedrunConfig, dict]], reference: dict | None = None) -> str:
    """The markdown table; Δ of a row is against ``full`` (or, for rows of ``reference``'s epochs, against
    ``reference``: the full configuration on the ablation's shorter schedule), same seeds."""
    lines = ["| run | seeds | test acc % | Δ vs full, same seeds and epochs (pp) | val acc % | epochs | wall s (mean) "
             "| command |",
             "|---|---|---|---|---|---|---|---|"]
    reference = full if reference is None else reference
    for cfg, rec in rows:
        short_row = cfg.budget is None and cfg.epochs == reference["config"]["epochs"] and rec is not full
        against = reference if short_row else full
        full_seeds = by_seed(against)
        s = rec["summary"]
        runs = rec["results"]
        seeds = ",".join(str(r["seed"]) for r in runs)
        paired = [r["test_accuracy"] - full_seeds[r["seed"]]["test_accuracy"] for r in runs
                  if r["seed"] in full_seeds]
        delta = "" if rec is against or not paired else f"{100 * mean_std(paired)[0]:+.2f}"
        test = pct_pm(s["test_accuracy_mean"], s["test_accuracy_std"]) if len(runs) > 1 else pct(s["test_accuracy_mean"])
        val = pct(s["val_accuracy_mean"]) if s["val_accuracy_mean"] == s["val_accuracy_mean"] else "-"
        epochs = ",".join(sorted({str(r["epochs"]) for r in runs}))
        lines.append(f"| {rec['label']} | {seeds} | {test} | {delta} | {val} | {epochs} | "
                     f"{s['wall_seconds_mean']:.0f} | `{command(cfg)}` |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/speedrun")
    parser.add_argument("--figure", default="docs/speedrun-curve.png")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the full run")
    parser.add_argument("--ablation-seeds", type=int, default=1)
    parser.add_argument("--ablation-epochs", type=int, default=None,
                        help="a shorter schedule for the ablation rows, with a 'full' row of the same epochs as "
                             "their reference (default: the full run's epochs, the full run as reference)")
    parser.add_argument("--only", default="", help="comma-separated: full, unregularized, or technique names")
    args = parser.parse_args(argv)
    out = Path(args.out)
    only = {s for s in args.only.split(",") if s}
    base = SpeedrunConfig(out=str(out), epochs=35, precision="bf16", threads=2)  # the documented tables' settings
    full = run_or_load(replace(base, {"seeds": args.seeds}), out)
    rows: list[tuple[SpeedrunConfig, dict]] = [(replace(base, {"seeds": args.seeds}), full)]
    records = [full]
    if not only or "unregularized" in only:
        budget = round(full["summary"]["wall_seconds_mean"])
        cfg = replace(base, {"seeds": args.seeds, "without": ["unregularized"], "budget": float(budget)})
        rec = run_or_load(cfg, out)
        rows.append((cfg, rec))
        records.append(rec)
    short = {} if args.ablation_epochs is None else {"epochs": args.ablation_epochs}
    reference = full
    if short:
        cfg = replace(base, {"seeds": args.ablation_seeds, **short, "out": str(out / "short")})
        reference = run_or_load(cfg, out / "short")
        rows.append((cfg, reference))
    for technique in TECHNIQUES:
        if only and technique not in only:
            continue
        cfg = replace(base, {"seeds": args.ablation_seeds, "without": [technique], **short,
                             **({"out": str(out / "short")} if short else {})})
        rows.append((cfg, run_or_load(cfg, out / "short" if short else out)))
    text = table(full, rows, reference)
    atomic_write_text(out / "ablation.md", text)
    fig = plot_curve(records, title="Fashion-MNIST speed run: full and unregularized, validation accuracy")
    atomic_savefig(fig, out / "curve.png", dpi=120)
    if args.figure:
        shutil.copyfile(out / "curve.png", args.figure)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
