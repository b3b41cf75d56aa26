"""The transfer demo's face: the tables, the figure, and the ``regularkit demo transfer`` entry point."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from regularkit._util.checks import check_int
from regularkit._util.fmt import pct_pm
from regularkit._util.io import atomic_savefig, atomic_write_json, figure
from regularkit.demos.transfer.experiment import transfer_table
from regularkit.demos.transfer.result import TransferResult
from regularkit.demos.transfer.settings import METHODS, QUICK, TASKS

__all__ = ["print_tables", "plot", "transfer_demo"]


def _pct(s: dict[str, float]) -> str:
    return pct_pm(s["mean"], s["std"], 1)


def print_tables(result: TransferResult, console=None) -> None:
    """The lecture's 2 x 2 table with measured errors, then the full method x size tables."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=150)
    cells = {(c["task"], c["amount"]): c for c in result.cells()}
    n_seeds = len(result.settings["seeds"])
    table = Table(title="Transfer learning: the lecture's table, measured (test error %, "
                        f"mean ± std over {n_seeds} seeds)", show_lines=True,
                  caption="the slide's pick is judged among the transfer methods; gaps are paired over the seeds "
                          "(mean ± std); a gap no larger than its std is a tie")
    table.add_column("")
    for task in TASKS:
        table.add_column(f"very {task} dataset")
    for amount, words in (("little", "very little data"), ("lots", "quite a lot of data")):
        row = [words]
        for task in TASKS:
            c = cells.get((task, amount))
            row.append("-" if c is None else
                       f"n = {c['n']}. Slide: [italic]{c['advice']}[/]\n"
                       f"slide's pick {c['pick']}: {_pct(c['pick_error'])}\n"
                       f"best transfer [bold]{c['best_transfer']}[/]: {_pct(c['best_transfer_error'])}\n"
                       f"scratch: {_pct(c['scratch_error'])}\n"
                       f"→ slide: {c['verdict']}\n→ {c['vs_scratch']}")
        table.add_row(*row)
    console.print(table)
    for task in TASKS:
        summary = result.summary(task)
        sizes = result.sizes(task)
        full = Table(title=f"very {task} dataset: test error % by transfer training-set size (train + val)")
        full.add_column("method")
        for size in sizes:
            s = next(v for (m, sz), v in summary.items() if sz == size)
            n = s["n_train"] + s["n_val"]
            head = str(n) if size != "all" else f"all: {n}" + (f" of {s['n_pool']}" if n < s["n_pool"] else "")
            full.add_column(head, justify="right")
        best = {size: min(v["mean"] for (m, sz), v in summary.items() if sz == size) for size in sizes}
        for method in METHODS:
            full.add_row(method, *[("[green]" if summary[method, sz]["mean"] == best[sz] else "")
                                   + _pct(summary[method, sz]) for sz in sizes])
        console.print(full)
    console.print(f"pretraining val error {100 * result.pretrain['val_error']:.1f}%; "
                  f"total {result.seconds:.0f} s with {result.settings['threads']} thread(s)")


def plot(result: TransferResult, path) -> Path:
    """Error vs training-set size per method, one panel per task; written atomically."""
    fig = figure(11, 4.2)
    for i, task in enumerate(TASKS):
        ax = fig.add_subplot(1, 2, i + 1)
        summary = result.summary(task)
        for method in METHODS:
            pts = [(v["n_train"] + v["n_val"], 100 * v["mean"], 100 * v["std"])
                   for (m, _), v in summary.items() if m == method]
            if pts:
                n, mean, std = zip(*pts)
                ax.errorbar(n, mean, yerr=std, marker="s" if method == "finetune_all" else "o", capsize=3,
                            label=method, ls=":" if method == "finetune_all" else
                            "--" if method.startswith("linear_conv") else "-")
        ax.set(xscale="log", xlabel="transfer training examples (train + val)", ylabel="test error %",
               title=f"very {task} dataset ({result.settings.get('data', {}).get(task, '?')})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return atomic_savefig(fig, path, dpi=100)


def transfer_demo(out_dir: str | os.PathLike, seed: int = 0, quick: bool = False, data_dir=None,
                  **kw: Any) -> list[Path]:
    """Run :func:`transfer_table` (seeds ``seed, seed+1, seed+2``; ``quick``: :data:`QUICK`), print the
    tables, write ``transfer.png`` and ``transfer.json`` under ``out_dir``; returns their paths."""
    seed = check_int("seed", seed, minimum=0)
    options: dict[str, Any] = {"seeds": (seed, seed + 1, seed + 2), "pretrain_seed": seed}
    if quick:
        options.update(QUICK, seeds=tuple(seed + s for s in QUICK["seeds"]))
    options.update(kw)
    result = transfer_table(data_dir=data_dir, **options)
    print_tables(result, options.get("console"))
    out = Path(out_dir)
    return [plot(result, out / "transfer.png"), atomic_write_json(out / "transfer.json", result.to_dict())]
