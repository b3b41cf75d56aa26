"""The transfer table's result, its reporting and the demo entry point.

Split from :mod:`regularkit.transfer_demo` (data, frozen bottoms, training), which
re-exports these names: ``TransferResult``, ``transfer_table``, ``print_tables``,
``plot``, ``transfer_demo``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from regularkit._io import atomic_savefig, atomic_write_json
from regularkit.errors import check_int
from regularkit.study.environment import environment
from regularkit.study.summary import mean_std
from regularkit.train.loop import evaluate
from regularkit.transfer_demo import (  # noqa: F401
    ADVICE,
    METHODS,
    QUICK,
    TASKS,
    TransferSettings,
    _cap,
    _resize,
    _task,
    _tensors,
    load_tasks,
    make_split,
    pretrain,
    run_method,
)

# ---------------------------------------------------------------------------------------------- result

def _label(size: int | None) -> str:
    return "all" if size is None else str(size)


@dataclass
class TransferResult:
    """Every run's record plus the settings, the pretraining, the environment and the time taken."""

    settings: dict[str, Any]
    pretrain: dict[str, Any]
    records: list[dict[str, Any]]
    environment: dict[str, Any]
    seconds: float = 0.0

    def sizes(self, task: str) -> list[str]:
        return list(dict.fromkeys(r["size"] for r in self.records if r["task"] == task))

    def summary(self, task: str) -> dict[tuple[str, str], dict[str, float]]:
        """``(method, size) -> {mean, std, n_train, n_val, runs}`` of the test error over the seeds."""
        out = {}
        for method in METHODS:
            for size in self.sizes(task):
                rs = [r for r in self.records if (r["task"], r["method"], r["size"]) == (task, method, size)]
                if rs:
                    mean, std = mean_std([r["test_error"] for r in rs])
                    out[method, size] = {"mean": mean, "std": std, "n_train": rs[0]["n_train"],
                                         "n_val": rs[0]["n_val"], "n_pool": rs[0].get("n_pool", 0), "runs": len(rs)}
        return out

    def gap(self, task: str, size: str, a: str, b: str) -> tuple[float, float]:
        """Mean and std over the seeds of ``error(a) - error(b)``, paired on the seed (same data split)."""
        err = {(r["method"], r["seed"]): r["test_error"] for r in self.records
               if r["task"] == task and r["size"] == size}
        seeds = sorted({seed for _, seed in err})
        return mean_std([err[a, seed] - err[b, seed] for seed in seeds])

    def cells(self) -> list[dict[str, Any]]:
        """The 2 x 2 table: per (task, little/lots) the slide's pick against the best transfer method.

        The slide says how to transfer, so its pick is judged among the transfer methods; then
        ``vs_scratch`` says whether transferring beat training from scratch at all.  Gaps are paired
        over the seeds (:meth:`gap`); a gap no larger than its std is called a tie.
        """
        cells = []
        for (task, amount), (words, advised) in ADVICE.items():
            sizes = self.sizes(task)
            if not sizes:
                continue
            size = sizes[0] if amount == "little" else sizes[-1]
            table = {m: s for (m, sz), s in self.summary(task).items() if sz == size}
            best = min((m for m in table if m != "scratch"), key=lambda m: table[m]["mean"])
            pick = min((m for m in advised if m in table), key=lambda m: table[m]["mean"])
            g, gs = self.gap(task, size, pick, best)
            if best == pick:
                verdict = "agrees"
            elif g <= gs:
                verdict = f"tie: {pick} is {100 * g:.1f} ± {100 * gs:.1f} points behind {best}"
            else:
                verdict = f"disagrees: {best} beats {pick} by {100 * g:.1f} ± {100 * gs:.1f} points"
            d, ds = self.gap(task, size, "scratch", best)
            if abs(d) <= ds:
                better = f"{best} {100 * d:.1f}" if d > 0 else f"scratch {-100 * d:.1f}"
                vs_scratch = f"tie with scratch ({better} ± {100 * ds:.1f} points better)"
            elif d > 0:
                vs_scratch = f"transfer helps: {best} beats scratch by {100 * d:.1f} ± {100 * ds:.1f} points"
            else:
                vs_scratch = f"scratch wins by {-100 * d:.1f} ± {100 * ds:.1f} points"
            b = table[best]
            cells.append({"task": task, "amount": amount, "size": size, "n": b["n_train"] + b["n_val"],
                          "advice": words, "pick": pick, "pick_error": table[pick], "best_transfer": best,
                          "best_transfer_error": b, "scratch_error": table["scratch"], "pick_gap": [g, gs],
                          "scratch_gap": [d, ds], "verdict": verdict, "vs_scratch": vs_scratch})
        return cells

    def to_dict(self) -> dict[str, Any]:
        summaries = {t: {f"{m}@{s}": v for (m, s), v in self.summary(t).items()} for t in TASKS}
        return {"settings": self.settings, "pretrain": self.pretrain, "environment": self.environment,
                "seconds": self.seconds, "records": self.records, "summary": summaries, "cells": self.cells()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TransferResult":
        """Back from :meth:`to_dict` (or the demo's JSON); summaries and cells are recomputed."""
        return cls(settings=d["settings"], pretrain=d["pretrain"], records=d["records"],
                   environment=d["environment"], seconds=d["seconds"])


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
        from rich.console import Console
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
                        records.append({"task": task, "size": _label(size), "n_train": len(split.y_train),
                                        "n_val": len(split.y_val), "n_test": len(split.y_test),
                                        "n_pool": len(pool[1]), "seed": seed,
                                        "method": method, "test_error": error, "stages": info,
                                        "seconds": time.perf_counter() - t1})
                        say(f"[dim]{task:9s} n={_label(size):>5s} seed {seed} {method:13s} "
                            f"test error {100 * error:5.1f}%  ({time.perf_counter() - t1:.1f} s, "
                            f"{time.perf_counter() - t0:.0f} s so far)[/]")
    finally:
        torch.set_num_threads(previous)
    return TransferResult(settings={**cfg.to_dict(), "threads": threads, "data": names}, pretrain=pre, records=records,
                          environment=_environment(threads), seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------- reporting

def _pct(s: dict[str, float]) -> str:
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def print_tables(result: TransferResult, console=None) -> None:
    """The lecture's 2 x 2 table with measured errors, then the full method x size tables."""
    from rich.console import Console
    from rich.table import Table
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
    from regularkit.demos import _canvas_figure
    fig = _canvas_figure(figsize=(11, 4.2), layout="constrained")
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
