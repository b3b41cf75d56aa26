"""What a speed run shows and saves: the progress line, the table, the results JSON, the curve.

Files (in ``--out``, each written atomically: a temp file, then ``os.replace``)::

    <label>.json        config, per-seed results (accuracy, seconds, curve), mean ± std, machine, versions
    <label>.toml        the config alone: ``regularkit speedrun fashion-mnist --config <label>.toml`` reruns it
    <label>-curve.png   validation accuracy after each epoch against wall seconds since the run began

``<label>`` is ``full``, ``unregularized`` or ``without-<technique>-...``, so
the runs of an ablation sit side by side in one folder.  The JSON is
rewritten after every seed, so an interrupted ``--seeds 3`` keeps the seeds
it finished.

The curve is *validation* accuracy (the EMA weights, no TTA, measured by
:func:`regularkit.train.evaluate` after each epoch): the test set is
measured once per run, at the end, and never drawn as a curve.
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Sequence

from rich.table import Table

from regularkit._util.environment import cpu_model, environment
from regularkit._util.fmt import pct, pct_pm
from regularkit._util.io import atomic_savefig, atomic_write_json, atomic_write_text, figure
from regularkit.config import to_dict, to_toml
from regularkit.metrics.summary import mean_std
from regularkit.speedrun.config import SpeedrunConfig
from regularkit.speedrun.train import RunResult
from regularkit.train.device import cpu_capability

__all__ = ["Progress", "slug", "make_record", "write_record", "results_table", "plot_curve"]


def slug(cfg: SpeedrunConfig) -> str:
    """The file name stem of a configuration: ``full``, ``unregularized``, ``without-ema-tta``."""
    label = cfg.label()
    return label if not cfg.without or label == "unregularized" else "without-" + "-".join(cfg.without)


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """One line per epoch: seed, epoch, validation accuracy, elapsed, and the ETA of the whole command."""

    def __init__(self, seeds: int, *, stream=None, label: str = "seed"):
        self.seeds = seeds
        self.label = label                    # "trial" for --tune's trials (numbered in point["seed"])
        self.done_seconds: list[float] = []   # wall seconds of each finished seed
        self.stream = stream if stream is not None else sys.stderr

    def seed_done(self, seconds: float) -> None:
        self.done_seconds.append(seconds)

    def say(self, line: str) -> None:
        """A line about the run (the plan, the budget's choice), on the progress stream."""
        print(line, file=self.stream, flush=True)

    def __call__(self, point: dict) -> None:
        epoch, epochs, seconds = point["epoch"], point["epochs"], point["seconds"]
        this_seed = seconds / epoch * epochs          # this seed's projected wall time
        left_here = this_seed - seconds
        seeds_left = self.seeds - len(self.done_seconds) - 1
        eta = left_here + seeds_left * this_seed
        val = point.get("val_accuracy")
        shown = f"val {pct(val)}%" if val is not None else "val -"
        print(f"{self.label} {point['seed']}  epoch {epoch:>2}/{epochs}  {shown}  {_clock(seconds)} elapsed  "
              f"ETA {_clock(eta)}", file=self.stream, flush=True)


def make_record(cfg: SpeedrunConfig, results: Sequence[RunResult]) -> dict:
    """Everything a run saves: config, results per seed, the summary, the machine and versions."""
    tests = [r.test_accuracy for r in results]
    vals = [r.val_accuracy for r in results if r.val_accuracy is not None]
    walls = [r.wall_seconds for r in results]
    test_mean, test_std = mean_std(tests)
    val_mean, val_std = mean_std(vals)
    env = environment()
    env["machine"]["cpu_model"] = cpu_model()
    env["machine"]["cpu_capability"] = cpu_capability()
    return {
        "label": cfg.label(),
        "config": to_dict(cfg),
        "results": [dataclasses.asdict(r) for r in results],
        "summary": {"seeds": len(results), "test_accuracy_mean": test_mean, "test_accuracy_std": test_std,
                    "val_accuracy_mean": val_mean, "val_accuracy_std": val_std,
                    "wall_seconds_mean": mean_std(walls)[0], "wall_seconds_max": max(walls, default=float("nan"))},
        "environment": env,
    }


def write_record(record: dict, out: str | Path, cfg: SpeedrunConfig) -> list[Path]:
    """Write ``<label>.json``, ``<label>.toml`` and ``<label>-curve.png`` into ``out``; returns their paths."""
    out = Path(out)
    stem = slug(cfg)
    paths = [atomic_write_json(out / f"{stem}.json", record), atomic_write_text(out / f"{stem}.toml", to_toml(cfg))]
    fig = plot_curve([record])
    paths.append(atomic_savefig(fig, out / f"{stem}-curve.png", dpi=120))
    return paths


def plot_curve(records: Sequence[dict], *, title: str | None = None):
    """Validation accuracy per epoch against wall seconds, one line per seed of each record."""
    fig = figure(6.4, 4.0)
    ax = fig.add_subplot()
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
              "tab:gray", "tab:olive", "tab:cyan"]
    lowest = 1.0
    for i, rec in enumerate(records):
        for j, run in enumerate(rec["results"]):
            pts = [(p["seconds"], p["val_accuracy"]) for p in run["curve"] if p["val_accuracy"] is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            lowest = min(lowest, min(ys[len(ys) // 3:], default=1.0))
            ax.plot(xs, [100 * y for y in ys], marker=".", color=colors[i % len(colors)], alpha=0.8,
                    label=f"{rec['label']}" if j == 0 else None)
    ax.set_xlabel("wall seconds since the run began (data loading included)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_ylim(max(0.0, 100 * lowest - 2.0), 100.0 if lowest > 0.98 else None)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "Fashion-MNIST speed run: validation accuracy against time", fontsize=10)
    return fig


def results_table(record: dict):
    """A rich table: one row per seed, then mean ± std."""
    table = Table(title=f"regularkit speedrun {record['config']['data']}: {record['label']}")
    for name in ("seed", "test acc %", "val acc %", "epochs", "wall s", "load avg"):
        table.add_column(name, justify="right")
    for r in record["results"]:
        val = pct(r["val_accuracy"]) if r["val_accuracy"] is not None else "-"
        load = "/".join(f"{v:.1f}" for v in r["load_average"])
        table.add_row(str(r["seed"]), pct(r["test_accuracy"]), val, str(r["epochs"]), f"{r['wall_seconds']:.0f}",
                      load)
    s = record["summary"]
    if s["seeds"] > 1:
        table.add_row("mean ± std", pct_pm(s["test_accuracy_mean"], s["test_accuracy_std"]),
                      pct_pm(s["val_accuracy_mean"], s["val_accuracy_std"]), "",
                      f"{s['wall_seconds_mean']:.0f} (max {s['wall_seconds_max']:.0f})", "", style="bold")
    return table
